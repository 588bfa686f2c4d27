"""A run's metrics as people and JSON read them: plain values, the summary table.

Why apart from :mod:`twin.reports.run_metrics`: computing the figures and printing them
change for different reasons (a new metric, a new column in the terminal table);
``skytwin run`` and ``skytwin compare`` print with these.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from twin.reports.table import format_table


def plain(value: object) -> object:
    """A JSON-serialisable copy: numpy scalars to Python, NaN and inf to None."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return value if isinstance(value, str) else str(value)


def summary_rows(metrics: dict) -> list[dict]:
    """Per site, then the network: exposures, night hours, open-shutter %, hours lost,
    science value; a ``note`` column when a site had no night (or recorded nothing)."""
    rows = [_summary_row(site, stats) for site, stats in metrics["per_site"].items()]
    rows.append(_summary_row("network", metrics["network"]))
    if any("note" in stats for stats in metrics["per_site"].values()):
        notes = [stats.get("note", "") for stats in metrics["per_site"].values()] + [""]
        rows = [{**row, "note": note} for row, note in zip(rows, notes, strict=True)]
    return rows


def _summary_row(name: str, stats: dict) -> dict:
    open_fraction = stats.get("open_shutter_fraction")
    return {
        "site": name,
        "exposures": stats["exposures"],
        "night h": stats["night_hours"],
        "open %": None if open_fraction is None else 100.0 * open_fraction,
        "weather h": stats["hours"].get("weather", 0.0),
        "failure h": stats["hours"].get("failure", 0.0),
        "value": stats["science_value"],
    }


def format_summary(metrics: dict) -> str:
    """``summary_rows`` as a terminal table."""
    return format_table([{k: fmt_number(v) for k, v in r.items()} for r in summary_rows(metrics)])


def fmt_number(value: object) -> str:
    """A number as a person reads it in a table: integers whole, no exponent below 10^9."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e9):
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.3g}"


def discovery_lines(metrics: dict) -> list[str]:
    """The transient-discovery lines of a run whose pipeline finds candidates (else []):
    candidates by class, the network's discoveries, their confirmations by a second site,
    false network alerts, asteroids, and the median latencies from shutter close."""
    pipe = metrics.get("run", {}).get("pipeline") or {}
    d = pipe.get("discovery")
    if not d:
        return []
    classes = ", ".join(f"{n} {k}" for k, n in d["by_class"].items()) or "none"
    return [
        f"candidates: {d['candidates']} ({classes}); detections by {pipe.get('detection')}",
        f"discoveries: {d['discoveries']} network alerts, {d['confirmed']} confirmed by a "
        f"second site, {d['false_network_alerts']} false "
        f"({fmt_number(d['false_network_alerts_per_night'])} per night); "
        f"{d['asteroids_recognised']} asteroids recognised; "
        f"{d['broker_alerts_detected']} broker alerts detected from pixels "
        f"({d['broker_alerts_confirmed']} confirmed); {d['frames_without_difference']} frames "
        "could not be differenced",
        f"latency (median, from shutter close): candidate at the centre "
        f"{fmt_number(d['latency_to_centre_median_s'])} s, network alert "
        f"{fmt_number(d['latency_to_alert_median_s'])} s, confirmation by a second site "
        f"{fmt_number(d['latency_to_confirmation_median_s'])} s",
    ]


def fusion_lines(metrics: dict) -> list[str]:
    """The centre's fusion line of a run whose pipeline fuses groups (else []): products,
    fields, the median depth gain over each group's best input and the median delay from
    the group's last shutter close to its product (the last input at the centre)."""
    pipe = metrics.get("run", {}).get("pipeline") or {}
    f = pipe.get("fusion")
    if not f:
        return []
    return [
        f"fusion ({f['method']}): {f['products']} fused products of {f['fields']} fields "
        f"({f['field_bands']} field-bands, {f['skipped']} groups skipped), median "
        f"{fmt_number(f['inputs_median'])} inputs; 5-sigma depth gain over the best input "
        f"median {fmt_number(f['depth_gain_median_mag'])} mag; delay from the last shutter "
        f"close median {fmt_number(f['delay_median_s'])} s, max "
        f"{fmt_number(f['delay_max_s'])} s (fusion.parquet, fused/)",
    ]
