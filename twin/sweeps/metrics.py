"""A point's metrics: the run's own (``metrics.json``) plus the network's duty cycle.

Duty cycle, as GONG and BiSON quote it, is the fraction of the 24 h in which the network
is collecting data. Here: the union over all telescopes of the shutter-open intervals of
science exposures (``observations``), divided by the run's length (its nights × 24 h
from the start of the first night window at any site; intervals clipped to that span).
``observing_cycle`` counts a telescope's slews and readouts between exposures too (the
union of the timeline's science, readout and slew spans): the fraction of the 24 h some
telescope is at work, the closer analogue of a solar network's duty cycle, whose
cameras have no readout gaps worth counting. Beside them ``dark_coverage``, the union
of the sites' night windows over the same span: the ceiling the weather, the dome rules
and the scheduler leave the others below.
``coverage_hNN`` splits the duty cycle by UTC hour of the day (the fraction of that hour,
over the run's days, with a shutter open somewhere): the "coverage over the day" plot.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

HOURS = 24
WORKING_STATES = ("science", "readout", "slew")
COVERAGE_COLUMNS = tuple(f"coverage_h{h:02d}" for h in range(HOURS))


def union_intervals(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Disjoint, sorted (n, 2) intervals covering the union of [start, end)."""
    order = np.argsort(start, kind="stable")
    out: list[list[float]] = []
    for a, b in zip(np.asarray(start)[order], np.asarray(end)[order], strict=True):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        elif b > a:
            out.append([float(a), float(b)])
    return np.asarray(out, dtype=float).reshape(-1, 2)


def covered_by_hour(intervals: np.ndarray, t0_mjd: float, days: float) -> np.ndarray:
    """(24,) fraction of each UTC hour of ``[t0_mjd, t0_mjd + days)`` covered by
    ``intervals``."""
    first = math.floor(t0_mjd * HOURS) / HOURS
    edges = first + np.arange(math.ceil(days * HOURS) + 2) / HOURS
    lo, hi = np.maximum(edges[:-1], t0_mjd), np.minimum(edges[1:], t0_mjd + days)
    span = np.clip(hi - lo, 0.0, None)
    covered = np.zeros(span.size)
    for a, b in intervals:
        covered += np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)
    hour = np.rint((edges[:-1] % 1.0) * HOURS).astype(int) % HOURS
    total = np.bincount(hour, weights=span, minlength=HOURS)
    return np.bincount(hour, weights=covered, minlength=HOURS) / np.maximum(total, 1e-12)


def point_metrics(run_dir: str | Path) -> dict[str, float]:
    """The sweep row of one finished run directory."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    obs = pd.read_parquet(run_dir / "observations.parquet", columns=["mjd_start", "mjd_end"])
    nights = pd.read_parquet(run_dir / "nights.parquet", columns=["mjd_start", "mjd_end"])
    days = int(metrics["run"]["nights"])
    t0 = float(nights["mjd_start"].min()) if len(nights) else math.nan
    span_d = float(days)

    def clipped(frame: pd.DataFrame) -> np.ndarray:
        a = np.clip(frame["mjd_start"].to_numpy(), t0, t0 + span_d)
        b = np.clip(frame["mjd_end"].to_numpy(), t0, t0 + span_d)
        return union_intervals(a, b)

    timeline = pd.read_parquet(run_dir / "timeline.parquet",
                               columns=["state", "mjd_start", "mjd_end"])  # fmt: skip
    working = timeline[timeline["state"].isin(WORKING_STATES)]
    shutter, dark, busy = clipped(obs), clipped(nights), clipped(working)
    net, alerts = metrics["network"], metrics["alerts"]
    latency = alerts.get("latency_median_min")
    row = {
        "science_value": float(net["science_value"]),
        "open_shutter_fraction": float(net["open_shutter_fraction"]),
        "duty_cycle": float(np.diff(shutter, axis=1).sum() / span_d),
        "observing_cycle": float(np.diff(busy, axis=1).sum() / span_d),
        "dark_coverage": float(np.diff(dark, axis=1).sum() / span_d),
        "alert_latency_median_min": math.nan if latency is None else float(latency),
        "alerts_followed": float(alerts.get("n_followed", 0)),
        "alerts": float(alerts.get("n_alerts", 0)),
        "exposures": float(net["exposures"]),
        "constraint_violations": float(metrics["constraint_violations"]["count"]),
    }
    hours = covered_by_hour(shutter, t0, days) if math.isfinite(t0) else np.zeros(HOURS)
    row.update(zip(COVERAGE_COLUMNS, map(float, hours), strict=True))
    return row
