"""Frozen copy of ``twin.reports.run_metrics`` before metrics were streamed (2026-12, c89a600).

Why keep it: the streamed metrics must equal what the whole-table version computed, and
the only trustworthy reference is that version itself. One change: ``read_table`` also
reads a table stored as a directory of day parts (``pd.read_parquet`` reads both), since
runs are now written that way. What the streaming did not touch is imported rather than
copied — the constraint audit (moved unchanged to ``twin.reports.rule_checks``),
``alert_stats``, ``plain`` and ``horizon_from_scenario`` (whole-table functions) — so the
copy that remains is the whole-table aggregation the streamed one must equal. Do not edit;
delete it with the equality tests if the metrics are ever redefined on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from twin.errors import ConfigError
from twin.ops.records import REQUEST_SCHEMA, TIMELINE_STATES  # noqa: F401  (REQUEST_SCHEMA: for the tests)
from twin.reports.rule_checks import HorizonFn, constraint_violations
from twin.reports.run_metrics import alert_stats, horizon_from_scenario, plain  # noqa: F401
from twin.reports.run_tables import OPTIONAL_TABLES, TABLES

N_EXAMPLES = 5


def read_table(run_dir: str | Path, name: str) -> pd.DataFrame:
    """One table of a run directory; an optional table that is missing reads as empty."""
    path = Path(run_dir) / f"{name}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    if name in OPTIONAL_TABLES:
        return TABLES[name].empty_table().to_pandas()
    raise ConfigError(
        str(run_dir), f"{name}.parquet", "missing: is this the output directory of `skytwin run`?"
    )


def compute_metrics(
    observations: pd.DataFrame,
    events: pd.DataFrame,
    timeline: pd.DataFrame,
    nights: pd.DataFrame,
    alerts: pd.DataFrame,
    requests: pd.DataFrame,
    horizon_fn: HorizonFn | None = None,
) -> dict:
    """All metrics of a run as a JSON-serialisable dict (plain numbers; NaN becomes None).

    Keys: ``network``, ``per_site``, ``per_telescope``, ``per_program``, ``alerts``,
    ``constraint_violations``, ``hours_night_total``. Hours are hours of telescope time
    (two telescopes open for an hour make two hours).
    """
    tl = timeline.assign(hours=(timeline["mjd_end"] - timeline["mjd_start"]) * 24.0)
    network = _group_stats(observations.assign(_all=""), tl.assign(_all=""), "_all").get("", {})
    if not network:
        network = _stats(observations.iloc[:0], pd.Series(dtype=float))
    per_telescope = _group_stats(observations, tl, "telescope")
    pairs = pd.concat([tl[["telescope", "site"]], observations[["telescope", "site"]]])
    site_of = dict(pairs.drop_duplicates("telescope").itertuples(index=False))
    for name, stats in per_telescope.items():
        per_telescope[name] = {"site": site_of.get(name, ""), **stats}
    violations = constraint_violations(observations, requests, events, nights, horizon_fn)
    metrics = {
        "network": network,
        "per_site": _group_stats(observations, tl, "site"),
        "per_telescope": per_telescope,
        "per_program": program_stats(observations),
        "alerts": alert_stats(alerts),
        "constraint_violations": violation_summary(violations),
        "hours_night_total": network["night_hours"],
    }
    return plain(metrics)


def _group_stats(obs: pd.DataFrame, tl: pd.DataFrame, key: str) -> dict[str, dict]:
    """Per value of ``key``: exposure counts and the time accounting of the timeline."""
    hours = tl.pivot_table(index=key, columns="state", values="hours", aggfunc="sum")
    names = sorted(set(hours.index) | set(obs[key].unique()))
    groups = obs.groupby(key).indices
    out = {}
    for name in names:
        part = obs.iloc[groups[name]] if name in groups else obs.iloc[:0]
        row = hours.loc[name] if name in hours.index else pd.Series(dtype=float)
        out[str(name)] = _stats(part, row.dropna())
    return out


def _stats(obs: pd.DataFrame, hours_by_state: pd.Series) -> dict:
    states = list(TIMELINE_STATES) + sorted(set(hours_by_state.index) - set(TIMELINE_STATES))
    hours = {s: float(hours_by_state.get(s, 0.0)) for s in states}
    night_hours = sum(hours.values())
    fraction = {s: (h / night_hours if night_hours > 0 else None) for s, h in hours.items()}
    return {
        "exposures": len(obs),
        "visits": int(obs["visit_id"].nunique()),
        "science_value": float(obs["value"].sum()),
        "open_shutter_fraction": fraction["science"],
        "night_hours": night_hours,
        "hours": hours,
        "fraction": fraction,
        "mean_m5": float(obs["m5"].mean()) if len(obs) else None,
        "median_seeing_arcsec": float(obs["seeing_fwhm_arcsec"].median()) if len(obs) else None,
    }


def program_stats(observations: pd.DataFrame) -> dict[str, dict]:
    """Per programme: exposures, science hours (shutter open), share of all science time."""
    grouped = observations.groupby("program").agg(
        exposures=("obs_id", "size"), exptime_s=("exptime_s", "sum"), value=("value", "sum")
    )
    total_s = float(observations["exptime_s"].sum())
    return {
        str(name): {
            "exposures": int(row.exposures),
            "science_hours": row.exptime_s / 3600.0,
            "science_share": row.exptime_s / total_s if total_s > 0 else None,
            "science_value": float(row.value),
        }
        for name, row in grouped.iterrows()
    }


def violation_summary(violations: pd.DataFrame) -> dict:
    """Count per rule and the first few violating rows, for ``metrics.json``."""
    return {
        "count": len(violations),
        "by_rule": {str(k): int(v) for k, v in violations["rule"].value_counts().items()},
        "examples": violations.head(N_EXAMPLES).to_dict(orient="records"),
    }
