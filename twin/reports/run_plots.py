"""The pictures of a run: what each telescope did, the weather it had, where it looked.

Each function draws from the run's tables (``twin.ops.records``), saves a PNG and returns
its path. A table argument is a DataFrame or an iterable of DataFrames (the batches of
``twin.reports.run_tables.iter_frames``): ``make_run_plots`` streams each table, only the
columns a plot needs, and keeps only what it draws (``twin.reports.plot_data``), so a
year of a dense network plots in about the memory of a week. Long runs stay readable:
the timeline shows the first few nights, the weather panel switches to one point per
night, and a sky map of more site-target pairs than can be told apart becomes a map of
exposures per sky cell; each title says which.

Figures are built on the Agg canvas directly (no pyplot state) and taken apart once
saved, so nothing stays open and no display is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from twin.ops.records import TIMELINE_STATES
from twin.reports.plot_data import (
    FOLLOWUP_COLUMNS,
    NIGHT_COLUMNS,
    SKY_COLUMNS,
    TIMELINE_COLUMNS,
    WEATHER_COLUMNS,
    Frames,
    alert_followups,
    first_nights,
    frames_of,
    nightly_weather,
    open_fraction_per_night,
    sky_counts,
)
from twin.reports.run_tables import iter_frames, read_table, system_arrow_memory

__all__ = [
    "make_run_plots",
    "open_fraction_per_night",
    "plot_site_weather",
    "plot_sky_map",
    "plot_timeline",
    "sky_map_title",
]

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
# Beyond this many site-target pairs the markers hide one another (a month of dense-8site
# is ~6 000 on a band 20 deg wide): the sky map shows exposures per cell instead.
MAX_SKY_PAIRS = 2_000
SKY_CELL_DEG = 5.0
MANY_ALERTS = 100  # beyond this the alert stars are drawn small
DPI = 90


@contextmanager
def _figure(width_in: float, height_in: float) -> Iterator:
    """A Figure on its own Agg canvas, taken apart when the block ends.

    Figure, axes and canvas refer to one another, so dropping the last name frees none of
    them until the cyclic collector's next full pass, which can come several plots later:
    clearing the figure drops its artists, and handing it a bare canvas drops the Agg
    canvas with its pixel buffer (~8 MB for the weather panel) now.
    """
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), constrained_layout=True)
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clf()
        FigureCanvasBase(fig)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


# --------------------------------------------------------------------------- timeline


def plot_timeline(
    timeline: Frames, observations: Frames, path: str | Path, max_nights: int = 3
) -> Path:
    """One row per telescope, coloured by state, over the first ``max_nights`` nights.

    The axis is hours UTC since 0h of the first plotted night's date, so the relay of
    night from site to site reads left to right. Alert follow-up exposures of those nights
    are marked. Reads ``timeline`` once (keeping those nights) and ``observations`` once
    (keeping their follow-ups).
    """
    tl, n_all = first_nights(timeline, max_nights)
    rows = tl[["site", "telescope"]].drop_duplicates().sort_values(["site", "telescope"])
    with _figure(12, 1.2 + 0.5 * max(len(rows), 1)) as fig:
        ax = fig.add_subplot()
        if tl.empty:
            ax.text(0.5, 0.5, "no timeline in this run", ha="center", transform=ax.transAxes)
            return _save(fig, path)
        day0 = np.floor(tl["mjd_start"].min())
        follow, any_alert = alert_followups(observations, nights=tl["night"].unique())
        for y, (_site, telescope) in enumerate(rows.itertuples(index=False)):
            _timeline_row(ax, tl[tl["telescope"] == telescope], y, day0)
            mine = follow[follow["telescope"] == telescope]
            ax.plot(
                (mine["mjd_start"].to_numpy(dtype=float) - day0) * 24.0,
                np.full(len(mine), y + 0.45),
                "v",
                color="crimson",
                ms=5,
                label="alert follow-up" if y == 0 else None,
            )
        labels = [f"{t}\n({s})" for s, t in rows.itertuples(index=False)]
        ax.set_yticks(range(len(rows)), labels)
        ax.set_ylim(len(rows) - 0.4, -0.7)
        n_first = tl["night"].nunique()
        ax.set(
            xlabel=f"hours UTC since MJD {day0:.0f}",
            title=f"Telescope time, first {n_first} of {n_all} nights",
        )
        _state_legend(fig, ax, with_alerts=any_alert)
        return _save(fig, path)


def _timeline_row(ax, mine: pd.DataFrame, y: int, day0: float) -> None:
    for state, part in mine.groupby("state"):
        x0 = (part["mjd_start"].to_numpy(dtype=float) - day0) * 24.0
        width = (part["mjd_end"] - part["mjd_start"]).to_numpy(dtype=float) * 24.0
        colour = STATE_COLOURS.get(str(state), "black")
        ax.broken_barh(list(zip(x0, width, strict=True)), (y - 0.4, 0.8), facecolors=colour)


def _state_legend(fig, ax, with_alerts: bool) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=STATE_COLOURS[s], label=s) for s in TIMELINE_STATES]
    if with_alerts:
        handles += ax.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)


# --------------------------------------------------------------------------- weather


def plot_site_weather(
    weather: Frames, timeline: Frames, nights: pd.DataFrame, path: str | Path
) -> Path:
    """Per site: cloud cover, seeing, dome closures and each night's open-shutter fraction.

    Runs longer than ``LONG_RUN_NIGHTS`` nights show one point per night (night-time
    means, dome-closed fraction) instead of the raw weather samples; either way the
    weather is read once, and the timeline once for the nightly sums.
    """
    long_run = nights["night"].nunique() > LONG_RUN_NIGHTS
    if long_run:
        w_all = nightly_weather(weather, nights)
        t_col = "t"
    else:  # at most LONG_RUN_NIGHTS nights of samples: small enough to hold
        parts = list(frames_of(weather))
        w_all = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=list(WEATHER_COLUMNS))
        )
        t_col = "mjd"
    opened = open_fraction_per_night(timeline)
    sites = sorted(set(w_all["site"]) | set(nights["site"]))
    starts = [
        w_all[t_col].min() if len(w_all) else np.nan,
        nights["mjd_start"].min() if len(nights) else np.nan,
    ]
    day0 = np.floor(np.nanmin(np.asarray(starts, dtype=float)))
    with _figure(12, 0.6 + 2.6 * max(len(sites), 1)) as fig:
        for i, site in enumerate(sites):
            ax = fig.add_subplot(len(sites), 1, i + 1)
            n = nights[nights["site"] == site].sort_values("mjd_start")
            _open_bars(ax, n, opened[opened["site"] == site], day0)
            seeing_ax = ax.twinx()
            w = w_all[w_all["site"] == site].sort_values(t_col)
            if long_run:
                _nightly_weather(ax, seeing_ax, w, day0)
            else:
                _raw_weather(ax, seeing_ax, w, day0)
            ax.set(ylim=(0, 1.02), ylabel="cloud / fraction", title=site)
            ax.legend(fontsize=7, loc="upper left", ncol=4)
        ax.set_xlabel(f"days since MJD {day0:.0f}")
        return _save(fig, path)


def _open_bars(ax, n: pd.DataFrame, opened: pd.DataFrame, day0: float) -> None:
    bars = n.astype({"night": int}).merge(opened, on=["site", "night"], how="left")
    ax.bar(
        bars["mjd_start"] + bars["hours"] / 48.0 - day0,
        bars["open_fraction"],
        width=bars["hours"] / 24.0,
        color="tab:green",
        alpha=0.35,
        label="open-shutter fraction (night)",
    )


def _raw_weather(ax, seeing_ax, w: pd.DataFrame, day0: float) -> None:
    x = w["mjd"].to_numpy(dtype=float) - day0
    closed = w["dome_closed"].to_numpy(dtype=bool)
    ax.fill_between(
        x, 0, 1, where=closed, step="post", color="red", alpha=0.12, lw=0, label="dome closed"
    )
    ax.plot(x, w["cloud_cover"], color="slategray", lw=1, label="cloud cover")
    seeing_ax.plot(x, w["seeing_fwhm_arcsec"], color="darkorange", lw=0.8)
    seeing_ax.set_ylabel('seeing (")', color="darkorange")


def _nightly_weather(ax, seeing_ax, per: pd.DataFrame, day0: float) -> None:
    """One point per night: the night-time means of ``plot_data.nightly_weather``."""
    x = per["t"].to_numpy(dtype=float) - day0
    ax.plot(x, per["cloud"], color="slategray", lw=1, label="cloud cover (night mean)")
    ax.plot(x, per["closed"], color="red", lw=0.8, alpha=0.7, label="dome closed (fraction)")
    seeing_ax.plot(x, per["seeing"], color="darkorange", lw=0.8)
    seeing_ax.set_ylabel('seeing, night mean (")', color="darkorange")


# --------------------------------------------------------------------------- sky map


def _mollweide_x(ra_deg: np.ndarray) -> np.ndarray:
    """RA to Mollweide longitude: 0h at the centre, RA growing to the left, wrapped at 12h."""
    wrapped = np.mod(np.asarray(ra_deg, dtype=float) + 180.0, 360.0) - 180.0
    return -np.radians(wrapped)


def plot_sky_map(observations: Frames, path: str | Path, max_pairs: int = MAX_SKY_PAIRS) -> Path:
    """Where the network looked: targets by site, sized by exposures, alerts highlighted.

    Mollweide, RA increasing to the left as on the sky (0h at the centre, ±12h at the edge).
    With more than ``max_pairs`` site-target pairs the markers would hide one another (and
    the sites drawn first), so the map shows exposures per ``SKY_CELL_DEG`` cell, all sites
    together, and says so in its title. Reads ``observations`` once, keeping the count per
    site-target pair.
    """
    counts, alerts, n_exposures = sky_counts(observations)
    with _figure(10, 5.6) as fig:
        ax = fig.add_subplot(projection="mollweide")
        n_pairs = len(counts)
        if n_pairs > max_pairs:
            _sky_cells(fig, ax, counts)
        else:
            _sky_markers(ax, counts)
        _alert_stars(ax, alerts)
        ticks = np.arange(-150, 151, 30)
        ax.set_xticks(np.radians(ticks), [f"{(-t % 360) / 15:.0f}h" for t in ticks])
        ax.grid(True, alpha=0.4)
        ax.set_title(sky_map_title(n_exposures, n_pairs, max_pairs), pad=18)
        if n_pairs or len(alerts):
            ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.12, -0.05))
        return _save(fig, path)


def sky_map_title(n_exposures: int, n_pairs: int, max_pairs: int = MAX_SKY_PAIRS) -> str:
    """The sky map's title: what it counts, and whether it marks pairs or counts cells."""
    title = f"{n_exposures} exposures of {n_pairs} site-target pairs"
    if n_pairs <= max_pairs:
        return title
    cell = f"{SKY_CELL_DEG:g}°×{SKY_CELL_DEG:g}°"
    return title + f"\ntoo many to mark (> {max_pairs}): exposures per {cell} cell, all sites"


def _sky_markers(ax, counts: pd.DataFrame) -> None:
    for site, part in counts.groupby("site"):
        ax.scatter(
            _mollweide_x(part["ra_deg"]),
            np.radians(part["dec_deg"].to_numpy(dtype=float)),
            s=6 + 6 * np.sqrt(part["n"].to_numpy(dtype=float)),
            alpha=0.6,
            label=str(site),
        )


def _sky_cells(fig, ax, counts: pd.DataFrame) -> None:
    """Exposures per cell of RA and Dec (cells shrink in area towards the poles)."""
    from matplotlib.colors import LogNorm

    ra_edges = np.arange(-180.0, 180.0 + SKY_CELL_DEG / 2, SKY_CELL_DEG)
    dec_edges = np.arange(-90.0, 90.0 + SKY_CELL_DEG / 2, SKY_CELL_DEG)
    wrapped = np.mod(counts["ra_deg"].to_numpy(dtype=float) + 180.0, 360.0) - 180.0
    cells, _, _ = np.histogram2d(
        wrapped,
        counts["dec_deg"].to_numpy(dtype=float),
        bins=[ra_edges, dec_edges],
        weights=counts["n"].to_numpy(dtype=float),
    )
    mesh = ax.pcolormesh(
        -np.radians(ra_edges),
        np.radians(dec_edges),
        np.ma.masked_equal(cells.T, 0.0),
        norm=LogNorm(vmin=1.0, vmax=max(cells.max(), 1.0)),
        cmap="viridis",
    )
    fig.colorbar(mesh, ax=ax, location="left", shrink=0.5, pad=0.06, label="exposures per cell")


def _alert_stars(ax, alerts: pd.DataFrame) -> None:
    """Alert targets as open stars; small red ones when there are many (a year of
    dense-8site follows ~1 300), so they neither hide the map nor vanish on dark cells."""
    if not len(alerts):
        return
    few = len(alerts) <= MANY_ALERTS
    ax.scatter(
        _mollweide_x(alerts["ra_deg"]),
        np.radians(alerts["dec_deg"].to_numpy(dtype=float)),
        s=160 if few else 16,
        marker="*",
        facecolors="none",
        edgecolors="black" if few else "crimson",
        lw=1.2 if few else 0.6,
        label=f"alert follow-up ({len(alerts)} targets)",
    )


# --------------------------------------------------------------------------- run directory


def make_run_plots(run_dir: str | Path) -> list[Path]:
    """Every plot of a run, written into ``run_dir/plots/``; returns the files written.

    Each plot streams the tables it needs, only the columns it needs; the nights table
    (one row per site and night) is the only one read whole.
    """
    with system_arrow_memory():
        return _make_run_plots(Path(run_dir))


def _make_run_plots(run_dir: Path) -> list[Path]:
    out = run_dir / "plots"
    nights = read_table(run_dir, "nights", NIGHT_COLUMNS)

    def timeline(columns=TIMELINE_COLUMNS):
        return iter_frames(run_dir, "timeline", columns)

    def observations(columns):
        return iter_frames(run_dir, "observations", columns)

    paths = [plot_timeline(timeline(), observations(FOLLOWUP_COLUMNS), out / "timeline.png")]
    if (run_dir / "weather.parquet").is_file():
        weather = iter_frames(run_dir, "weather", WEATHER_COLUMNS)
        paths.append(plot_site_weather(weather, timeline(), nights, out / "site_weather.png"))
    paths.append(plot_sky_map(observations(SKY_COLUMNS), out / "sky_map.png"))
    return paths
