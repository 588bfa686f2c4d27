"""What the run plots draw, gathered from a run's tables in bounded memory.

A year of a dense network is ~500 000 exposures and several times as many timeline
intervals; read whole as pandas objects they took the end of ``skytwin run`` from ~0.7 to
~1.6 GB. Every plot shows either a bounded slice of a run (the first nights, the raw
weather of a short run) or an aggregate (per site and night, per site and target), so each
function here takes its table as batches (``twin.reports.run_tables.iter_frames``) and
keeps only the slice or the running sums. What each keeps grows with the run's nights,
sites and targets, never with its exposures.

Every function takes a table as a DataFrame or as an iterable of DataFrames with the
same columns, so a notebook can pass a frame it already holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

Frames = pd.DataFrame | Iterable[pd.DataFrame]

# Columns each aggregation reads, so callers read no more than that from disk.
TIMELINE_COLUMNS = ("telescope", "site", "night", "state", "mjd_start", "mjd_end")
FOLLOWUP_COLUMNS = ("telescope", "night", "alert_id", "mjd_start")
SKY_COLUMNS = ("site", "ra_deg", "dec_deg", "alert_id")
WEATHER_COLUMNS = ("mjd", "site", "cloud_cover", "seeing_fwhm_arcsec", "dome_closed")
NIGHT_COLUMNS = ("site", "night", "mjd_start", "mjd_end", "hours")


def frames_of(table: Frames) -> Iterator[pd.DataFrame]:
    """The batches of ``table``: itself if it is one DataFrame (iterating a DataFrame
    would give its column names)."""
    if isinstance(table, pd.DataFrame):
        yield table
    else:
        yield from table


def _add_sums(total: pd.DataFrame | None, part: pd.DataFrame) -> pd.DataFrame:
    """Running per-group sums: ``part``'s groups added into ``total`` (same index)."""
    if total is None:
        return part
    return total.add(part, fill_value=0.0)


# --------------------------------------------------------------------------- timeline


def first_nights(timeline: Frames, max_nights: int) -> tuple[pd.DataFrame, int]:
    """The timeline rows of the run's first ``max_nights`` nights, and the run's number
    of nights.

    Rows are kept only while their night is among the earliest seen so far, so the slice
    stays a few nights long whatever the order of the batches.
    """
    kept: pd.DataFrame | None = None
    seen: set[int] = set()
    for frame in frames_of(timeline):
        seen.update(int(n) for n in frame["night"].unique())
        first = sorted(seen)[:max_nights]
        parts = [frame[frame["night"].isin(first)]]
        if kept is not None:
            parts.insert(0, kept[kept["night"].isin(first)])
        kept = pd.concat(parts, ignore_index=True)
    if kept is None:
        return pd.DataFrame(columns=list(TIMELINE_COLUMNS)), 0
    return kept, len(seen)


def alert_followups(observations: Frames, nights: Iterable[int]) -> tuple[pd.DataFrame, bool]:
    """Alert follow-up exposures of the given ``nights`` (``telescope``, ``mjd_start``),
    and whether the run has any follow-up at all."""
    nights = list(nights)
    kept, any_alert = [], False
    for frame in frames_of(observations):
        follow = frame[frame["alert_id"] != ""]
        any_alert = any_alert or len(follow) > 0
        kept.append(follow.loc[follow["night"].isin(nights), ["telescope", "mjd_start"]])
    if not kept:
        return pd.DataFrame(columns=["telescope", "mjd_start"]), False
    return pd.concat(kept, ignore_index=True), any_alert


def open_fraction_per_night(timeline: Frames) -> pd.DataFrame:
    """Per site and night: science hours over night hours, all telescopes of the site."""
    total = None
    for frame in frames_of(timeline):
        hours = (frame["mjd_end"] - frame["mjd_start"]).to_numpy(dtype=float) * 24.0
        part = pd.DataFrame(
            {
                "site": frame["site"].to_numpy(),
                "night": frame["night"].to_numpy(),
                "h": hours,
                "sci": np.where(frame["state"].to_numpy() == "science", hours, 0.0),
            }
        )
        total = _add_sums(total, part.groupby(["site", "night"])[["h", "sci"]].sum())
    if total is None:
        return pd.DataFrame(columns=["site", "night", "open_fraction"])
    out = (total["sci"] / total["h"]).rename("open_fraction").reset_index()
    return out.astype({"night": int})


# --------------------------------------------------------------------------- weather


def nightly_weather(weather: Frames, nights: pd.DataFrame) -> pd.DataFrame:
    """Per site and night, from the weather samples inside the night: mean cloud cover,
    mean seeing and the fraction of samples with the dome closed.

    Means rather than a median seeing: sums add up batch by batch, a median would need
    every sample of a night at once. Columns: site, night, t (night start MJD), cloud,
    seeing, closed.
    """
    spans = nights[["site", "night", "mjd_start", "mjd_end"]].astype(
        {"night": int, "mjd_start": float, "mjd_end": float}
    )
    spans = spans.sort_values("mjd_start")
    total = None
    for frame in frames_of(weather):
        if frame.empty or spans.empty:
            continue
        w = frame.astype({"mjd": float, "dome_closed": float}).sort_values("mjd")
        m = pd.merge_asof(
            w, spans, left_on="mjd", right_on="mjd_start", by="site", direction="backward"
        )
        m = m[m["mjd"] < m["mjd_end"]].assign(n=1.0)
        cols = ["cloud_cover", "seeing_fwhm_arcsec", "dome_closed", "n"]
        total = _add_sums(total, m.groupby(["site", "night"])[cols].sum())
    columns = ["site", "night", "t", "cloud", "seeing", "closed"]
    if total is None:
        return pd.DataFrame(columns=columns)
    per = pd.DataFrame(
        {
            "cloud": total["cloud_cover"] / total["n"],
            "seeing": total["seeing_fwhm_arcsec"] / total["n"],
            "closed": total["dome_closed"] / total["n"],
        }
    ).reset_index()
    per = per.astype({"night": int}).merge(spans, on=["site", "night"])
    return per.rename(columns={"mjd_start": "t"})[columns].sort_values(["site", "t"])


# --------------------------------------------------------------------------- sky map


def sky_counts(observations: Frames) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Exposures per site and target position (site, ra_deg, dec_deg, n), the distinct
    positions of alert follow-ups (ra_deg, dec_deg), and the number of exposures."""
    total, alerts, n_exposures = None, [], 0
    for frame in frames_of(observations):
        n_exposures += len(frame)
        part = frame.groupby(["site", "ra_deg", "dec_deg"]).size().rename("n").to_frame()
        total = _add_sums(total, part)
        alerts.append(frame.loc[frame["alert_id"] != "", ["ra_deg", "dec_deg"]].drop_duplicates())
    if total is None:
        counts = pd.DataFrame(columns=["site", "ra_deg", "dec_deg", "n"])
    else:
        counts = total.reset_index().astype({"n": int})
    alert_pos = pd.concat(alerts, ignore_index=True).drop_duplicates() if alerts else None
    if alert_pos is None:
        alert_pos = pd.DataFrame(columns=["ra_deg", "dec_deg"])
    return counts, alert_pos, n_exposures
