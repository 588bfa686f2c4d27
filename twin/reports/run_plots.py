"""The pictures of a run: what each telescope did, the weather it had, where it looked.

Each function draws from the run's tables (``twin.ops.records``), saves a PNG and returns
its path. Figures are built on the Agg canvas directly (no pyplot state), so nothing is
left open and no display is needed. Long runs stay readable: the timeline shows the first
few nights, the weather panel switches to one point per night.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.ops.records import TIMELINE_STATES
from twin.reports.run_metrics import read_table

STATE_COLOURS = {
    "science": "tab:green",
    "readout": "yellowgreen",
    "slew": "tab:blue",
    "weather": "slategray",
    "failure": "tab:red",
    "idle": "gainsboro",
    "aborted": "tab:orange",
    "calibration": "tab:purple",
}
LONG_RUN_NIGHTS = 14  # beyond this the weather panel shows nightly aggregates
DPI = 90


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), constrained_layout=True)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    fig.clf()
    return path


# --------------------------------------------------------------------------- timeline


def plot_timeline(
    timeline: pd.DataFrame, observations: pd.DataFrame, path: str | Path, max_nights: int = 3
) -> Path:
    """One row per telescope, coloured by state, over the first ``max_nights`` nights.

    The axis is hours UTC since 0h of the first plotted night's date, so the relay of
    night from site to site reads left to right. Alert follow-up exposures are marked.
    """
    from matplotlib.patches import Patch

    first = sorted(timeline["night"].unique())[:max_nights]
    tl = timeline[timeline["night"].isin(first)]
    rows = tl[["site", "telescope"]].drop_duplicates().sort_values(["site", "telescope"])
    fig = _figure(12, 1.2 + 0.5 * max(len(rows), 1))
    ax = fig.add_subplot()
    if tl.empty:
        ax.text(0.5, 0.5, "no timeline in this run", ha="center", transform=ax.transAxes)
        return _save(fig, path)
    day0 = np.floor(tl["mjd_start"].min())
    t_end = tl["mjd_end"].max()
    for y, (_site, telescope) in enumerate(rows.itertuples(index=False)):
        mine = tl[tl["telescope"] == telescope]
        for state, part in mine.groupby("state"):
            x0 = (part["mjd_start"].to_numpy() - day0) * 24.0
            width = (part["mjd_end"] - part["mjd_start"]).to_numpy() * 24.0
            colour = STATE_COLOURS.get(str(state), "black")
            ax.broken_barh(list(zip(x0, width, strict=True)), (y - 0.4, 0.8), facecolors=colour)
        follow = observations[
            (observations["telescope"] == telescope)
            & (observations["alert_id"] != "")
            & (observations["mjd_start"] < t_end)
        ]
        ax.plot(
            (follow["mjd_start"] - day0) * 24.0,
            np.full(len(follow), y + 0.45),
            "v",
            color="crimson",
            ms=5,
            label="alert follow-up" if y == 0 else None,
        )
    ax.set_yticks(range(len(rows)), [f"{t}\n({s})" for s, t in rows.itertuples(index=False)])
    ax.set_ylim(len(rows) - 0.4, -0.7)
    n_all = timeline["night"].nunique()
    ax.set(
        xlabel=f"hours UTC since MJD {day0:.0f}",
        title=f"Telescope time, first {len(first)} of {n_all} nights",
    )
    handles = [Patch(color=STATE_COLOURS[s], label=s) for s in TIMELINE_STATES]
    if (observations["alert_id"] != "").any():
        handles += ax.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------- weather


def open_fraction_per_night(timeline: pd.DataFrame) -> pd.DataFrame:
    """Per site and night: science hours over night hours, all telescopes of the site."""
    hours = timeline.assign(
        h=(timeline["mjd_end"] - timeline["mjd_start"]) * 24.0,
        sci=lambda d: d["h"].where(d["state"] == "science", 0.0),
    )
    out = hours.groupby(["site", "night"])[["h", "sci"]].sum()
    return (out["sci"] / out["h"]).rename("open_fraction").reset_index()


def plot_site_weather(
    weather: pd.DataFrame, timeline: pd.DataFrame, nights: pd.DataFrame, path: str | Path
) -> Path:
    """Per site: cloud cover, seeing, dome closures and each night's open-shutter fraction.

    Runs longer than ``LONG_RUN_NIGHTS`` nights show one point per night (night-time
    means, dome-closed fraction) instead of the raw weather samples.
    """
    sites = sorted(set(weather["site"]) | set(nights["site"]))
    long_run = nights["night"].nunique() > LONG_RUN_NIGHTS
    opened = open_fraction_per_night(timeline)
    starts = [weather["mjd"].min(), nights["mjd_start"].min()]
    day0 = np.floor(np.nanmin(np.asarray(starts, dtype=float)))
    fig = _figure(12, 0.6 + 2.6 * max(len(sites), 1))
    for i, site in enumerate(sites):
        ax = fig.add_subplot(len(sites), 1, i + 1)
        w = weather[weather["site"] == site].sort_values("mjd")
        n = nights[nights["site"] == site].sort_values("mjd_start")
        bars = n.merge(opened[opened["site"] == site], on=["site", "night"], how="left")
        ax.bar(
            bars["mjd_start"] + bars["hours"] / 48.0 - day0,
            bars["open_fraction"],
            width=bars["hours"] / 24.0,
            color="tab:green",
            alpha=0.35,
            label="open-shutter fraction (night)",
        )
        seeing_ax = ax.twinx()
        if long_run:
            _nightly_weather(ax, seeing_ax, w, n, day0)
        else:
            _raw_weather(ax, seeing_ax, w, day0)
        ax.set(ylim=(0, 1.02), ylabel="cloud / fraction", title=site)
        seeing_ax.set_ylabel('seeing (")', color="darkorange")
        ax.legend(fontsize=7, loc="upper left", ncol=4)
    ax.set_xlabel(f"days since MJD {day0:.0f}")
    return _save(fig, path)


def _raw_weather(ax, seeing_ax, w: pd.DataFrame, day0: float) -> None:
    x = w["mjd"].to_numpy() - day0
    closed = w["dome_closed"].to_numpy(dtype=bool)
    ax.fill_between(
        x, 0, 1, where=closed, step="post", color="red", alpha=0.12, lw=0, label="dome closed"
    )
    ax.plot(x, w["cloud_cover"], color="slategray", lw=1, label="cloud cover")
    seeing_ax.plot(x, w["seeing_fwhm_arcsec"], color="darkorange", lw=0.8)


def _nightly_weather(ax, seeing_ax, w: pd.DataFrame, n: pd.DataFrame, day0: float) -> None:
    """Night-time means of the weather samples, one point per night."""
    if w.empty or n.empty:
        return
    m = pd.merge_asof(
        w.astype({"mjd": float}),
        n[["night", "mjd_start", "mjd_end"]].astype(float),
        left_on="mjd",
        right_on="mjd_start",
        direction="backward",
    )
    m = m[m["mjd"] < m["mjd_end"]].astype({"dome_closed": float})
    per = m.groupby("night").agg(
        t=("mjd_start", "first"),
        cloud=("cloud_cover", "mean"),
        seeing=("seeing_fwhm_arcsec", "median"),
        closed=("dome_closed", "mean"),
    )
    x = per["t"].to_numpy() - day0
    ax.plot(x, per["cloud"], color="slategray", lw=1, label="cloud cover (night mean)")
    ax.plot(x, per["closed"], color="red", lw=0.8, alpha=0.7, label="dome closed (fraction)")
    seeing_ax.plot(x, per["seeing"], color="darkorange", lw=0.8)


# --------------------------------------------------------------------------- sky map


def _mollweide_x(ra_deg: np.ndarray) -> np.ndarray:
    """RA to Mollweide longitude: 0h at the centre, RA growing to the left, wrapped at 12h."""
    wrapped = np.mod(np.asarray(ra_deg, dtype=float) + 180.0, 360.0) - 180.0
    return -np.radians(wrapped)


def plot_sky_map(observations: pd.DataFrame, path: str | Path) -> Path:
    """Where the network looked: targets by site, sized by exposures, alerts highlighted.

    Mollweide, RA increasing to the left as on the sky (0h at the centre, ±12h at the edge).
    """
    fig = _figure(10, 5.6)
    ax = fig.add_subplot(projection="mollweide")
    counts = observations.groupby(["site", "ra_deg", "dec_deg"]).size().rename("n").reset_index()
    for site, part in counts.groupby("site"):
        ax.scatter(
            _mollweide_x(part["ra_deg"]),
            np.radians(part["dec_deg"]),
            s=6 + 6 * np.sqrt(part["n"]),
            alpha=0.6,
            label=str(site),
        )
    alerts = observations.loc[observations["alert_id"] != "", ["ra_deg", "dec_deg"]]
    alerts = alerts.drop_duplicates()
    if len(alerts):
        ax.scatter(
            _mollweide_x(alerts["ra_deg"]),
            np.radians(alerts["dec_deg"]),
            s=160,
            marker="*",
            facecolors="none",
            edgecolors="black",
            lw=1.2,
            label="alert follow-up",
        )
    ticks = np.arange(-150, 151, 30)
    ax.set_xticks(np.radians(ticks), [f"{(-t % 360) / 15:.0f}h" for t in ticks])
    ax.grid(True, alpha=0.4)
    ax.set_title(f"{len(observations)} exposures of {len(counts)} site-target pairs", pad=18)
    if len(counts):
        ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.12, -0.05))
    return _save(fig, path)


# --------------------------------------------------------------------------- run directory


def make_run_plots(run_dir: str | Path) -> list[Path]:
    """Every plot of a run, written into ``run_dir/plots/``; returns the files written."""
    run_dir = Path(run_dir)
    out = run_dir / "plots"
    observations = read_table(run_dir, "observations")
    timeline = read_table(run_dir, "timeline")
    nights = read_table(run_dir, "nights")
    paths = [plot_timeline(timeline, observations, out / "timeline.png")]
    if (run_dir / "weather.parquet").is_file():
        weather = pd.read_parquet(run_dir / "weather.parquet")
        paths.append(plot_site_weather(weather, timeline, nights, out / "site_weather.png"))
    paths.append(plot_sky_map(observations, out / "sky_map.png"))
    return paths
