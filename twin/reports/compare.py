"""Runs side by side: the key numbers of several run directories' ``metrics.json``.

For the questions planners and RL researchers ask of two to five runs (this policy or that
one, this seed or that layout): one row per run from ``compare_runs``, printed transposed
by ``format_compare`` so each metric is a line and each run a column.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from twin.errors import ConfigError
from twin.reports.run_summary import fmt_number
from twin.reports.table import format_table

COMPARE_FIELDS = (
    "run",
    "policy",
    "seed",
    "nights",
    "exposures",
    "science_value",
    "open_shutter_pct",
    "weather_h",
    "failure_h",
    "slew_h",
    "readout_h",
    "alert_latency_median_min",
    "alert_latency_p90_min",
    "fraction_followed",
    "violations",
)
"""The keys of each row of ``compare_runs``, in display order."""


def read_metrics(run_dir: str | Path) -> dict:
    """The ``metrics.json`` of a run directory, or a ConfigError saying how to get one."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise ConfigError(
            str(run_dir),
            "metrics.json",
            f"no such file ({path}); pass the output directory of `skytwin run`, or write it "
            "with twin.reports.run_metrics.write_metrics(run_dir)",
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(str(path), "metrics.json", f"not valid JSON: {err}") from None


def compare_runs(run_dirs: Iterable[str | Path]) -> list[dict]:
    """One row of key metrics per run directory (keys: ``COMPARE_FIELDS``; None: unknown)."""
    dirs = [Path(d) for d in run_dirs]
    names = [d.name or str(d) for d in dirs]
    if len(set(names)) < len(names):  # same folder name in different places
        names = [str(d) for d in dirs]
    return [_row(name, read_metrics(d)) for name, d in zip(names, dirs, strict=True)]


def _row(name: str, metrics: dict) -> dict:
    run = metrics.get("run", {})
    network = metrics.get("network", {})
    hours = network.get("hours", {})
    alerts = metrics.get("alerts", {})
    open_fraction = network.get("open_shutter_fraction")
    return {
        "run": name,
        "policy": run.get("policy"),
        "seed": run.get("seed"),
        "nights": run.get("nights"),
        "exposures": network.get("exposures"),
        "science_value": network.get("science_value"),
        "open_shutter_pct": None if open_fraction is None else 100.0 * open_fraction,
        "weather_h": hours.get("weather"),
        "failure_h": hours.get("failure"),
        "slew_h": hours.get("slew"),
        "readout_h": hours.get("readout"),
        "alert_latency_median_min": alerts.get("latency_median_min"),
        "alert_latency_p90_min": alerts.get("latency_p90_min"),
        "fraction_followed": alerts.get("fraction_followed"),
        "violations": metrics.get("constraint_violations", {}).get("count"),
    }


def format_compare(rows: list[dict]) -> str:
    """The rows transposed: one line per metric, one column per run ("-": not known)."""
    if not rows:
        return "(no runs)"
    runs = [str(r["run"]) for r in rows]
    fields = [f for f in rows[0] if f != "run"]
    table = [
        {"metric": f, **{run: fmt_number(r.get(f)) for run, r in zip(runs, rows, strict=True)}}
        for f in fields
    ]
    return format_table(table, ["metric", *runs])
