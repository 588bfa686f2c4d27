"""Frozen copy of ``twin.reports.run_metrics`` before metrics were streamed (2026-12, c89a600).

Why keep it: the streamed metrics must equal what the whole-table version computed, and
the only trustworthy reference is that version itself. One change: ``read_table`` also
reads a table stored as a directory of day parts (``pd.read_parquet`` reads both), since
runs are now written that way. Do not edit; delete it with the equality tests if the
metrics are ever redefined on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from twin.errors import ConfigError
from twin.ops.records import (
    ALERT_SCHEMA,
    EVENT_SCHEMA,
    NIGHT_SCHEMA,
    OBSERVATION_SCHEMA,
    REQUEST_SCHEMA,
    TIMELINE_SCHEMA,
    TIMELINE_STATES,
)
from twin.reports.table import format_table

HorizonFn = Callable[[str, np.ndarray], np.ndarray]
"""``horizon_fn(site_name, az_deg) -> lowest usable altitude (deg)`` at those azimuths."""

TABLES: dict[str, pa.Schema] = {
    "observations": OBSERVATION_SCHEMA,
    "events": EVENT_SCHEMA,
    "timeline": TIMELINE_SCHEMA,
    "nights": NIGHT_SCHEMA,
    "alerts": ALERT_SCHEMA,
    "requests": REQUEST_SCHEMA,
}
OPTIONAL_TABLES = ("alerts", "requests")  # a run without alerts or a queue may omit them

RULES = (
    "airmass",
    "sun_alt",
    "moon_sep",
    "moon_illum",
    "seeing",
    "transparency",
    "window",
    "site",
    "horizon",
    "dome_closed",
    "failure",
    "night",
)
"""Every rule ``constraint_violations`` checks, in the order it reports them."""

LIMIT_RULES = {  # rule: (logged values, request limit, kind of limit)
    "airmass": (("airmass", "airmass_end"), "max_airmass", "max"),
    "sun_alt": (("sun_alt_deg", "sun_alt_end_deg"), "max_sun_alt_deg", "max"),
    "moon_sep": (("moon_sep_deg",), "min_moon_sep_deg", "min"),
    "moon_illum": (("moon_illum",), "max_moon_illum", "max"),
    "seeing": (("seeing_fwhm_arcsec",), "max_seeing_arcsec", "max"),
    "transparency": (("transparency",), "min_transparency", "min"),
}
VIOLATION_COLUMNS = ("obs_id", "rule", "value", "limit", "detail")
LIMIT_TOL = 1e-9  # limits are compared as written; this absorbs float rounding only
TIME_TOL_DAYS = 1e-8  # ~1 ms: an exposure ending exactly as the dome closes is not inside
N_EXAMPLES = 5


# --------------------------------------------------------------------------- reading


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


def records_frame(schema: pa.Schema, rows: list[dict]) -> pd.DataFrame:
    """A table with the schema's columns and types from row dicts (notebooks, tests).

    Fields a row leaves out take the type's empty value: NaN, 0, "", False or [].
    """
    blank = {
        pa.types.is_floating: np.nan,
        pa.types.is_integer: 0,
        pa.types.is_string: "",
        pa.types.is_boolean: False,
        pa.types.is_list: [],
    }

    def default(field: pa.Field) -> object:
        return next(v for test, v in blank.items() if test(field.type))

    unknown = {k for row in rows for k in row} - set(schema.names)
    if unknown:
        raise ConfigError("records_frame", sorted(unknown)[0], "not a column of the schema")
    columns = {f.name: [row.get(f.name, default(f)) for row in rows] for f in schema}
    return pa.table(columns, schema=schema).to_pandas()


def horizon_from_scenario(run_dir: str | Path) -> HorizonFn | None:
    """The horizon masks of the run's sites, from its ``scenario.yaml`` (None if absent)."""
    path = Path(run_dir) / "scenario.yaml"
    if not path.is_file():
        return None
    from twin.scenario import load_scenario  # only this path needs the scenario models

    sites = {site.name: site for site in load_scenario(path).network}

    def horizon(site: str, az_deg: np.ndarray) -> np.ndarray:
        if site not in sites:
            return np.zeros(np.shape(az_deg))
        return sites[site].horizon_min_alt_deg(az_deg)

    return horizon


# --------------------------------------------------------------------------- metrics


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


def alert_stats(alerts: pd.DataFrame) -> dict:
    """How fast alerts were followed (issued → first follow-up exposure) and confirmed."""
    followed = alerts[alerts["first_followup_mjd"].notna()]
    latency_min = (followed["first_followup_mjd"] - followed["issued_mjd"]).to_numpy() * 1440.0
    confirmed = alerts[alerts["confirmed_mjd"].notna()]
    delay_min = (confirmed["confirmed_mjd"] - confirmed["detected_mjd"]).dropna() * 1440.0
    n = len(alerts)
    return {
        "n_alerts": n,
        "n_followed": len(followed),
        "fraction_followed": len(followed) / n if n else None,
        "latency_median_min": float(np.median(latency_min)) if len(latency_min) else None,
        "latency_p90_min": float(np.percentile(latency_min, 90)) if len(latency_min) else None,
        "n_detected": int(alerts["detected_mjd"].notna().sum()),
        "n_confirmed": len(confirmed),
        "confirmation_delay_median_min": float(delay_min.median()) if len(delay_min) else None,
    }


def violation_summary(violations: pd.DataFrame) -> dict:
    """Count per rule and the first few violating rows, for ``metrics.json``."""
    return {
        "count": len(violations),
        "by_rule": {str(k): int(v) for k, v in violations["rule"].value_counts().items()},
        "examples": violations.head(N_EXAMPLES).to_dict(orient="records"),
    }


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


# --------------------------------------------------------------------------- rule checks


def constraint_violations(
    observations: pd.DataFrame,
    requests: pd.DataFrame,
    events: pd.DataFrame,
    nights: pd.DataFrame,
    horizon_fn: HorizonFn | None = None,
) -> pd.DataFrame:
    """Every (exposure, rule) the log shows broken; empty for a run that kept every rule.

    Columns: ``obs_id``, ``rule`` (one of ``RULES``), ``value`` (what the exposure had),
    ``limit`` (what was allowed), ``detail`` (text, for the rules a number does not tell).
    Geometric limits hold at both ends of an exposure, seeing and transparency at its start
    (as ``REQUEST_SCHEMA`` states); the horizon is checked at each end's azimuth, and is
    altitude 0 without ``horizon_fn``.
    Exposures whose request is not in ``requests`` are checked only against the
    request-free rules (horizon, dome, failure, night). Vectorised: ~1 s per 10^6 rows.
    """
    if observations.empty:
        return _violations([])
    obs = observations.reset_index(drop=True)
    parts = _limit_violations(obs, requests)
    parts += [
        _window_violations(obs, requests),
        _site_violations(obs, requests),
        _horizon_violations(obs, horizon_fn),
        _interval_violations(obs, dome_closed_intervals(events), "site", "dome_closed"),
        _interval_violations(obs, failure_intervals(events), "telescope", "failure"),
        _night_violations(obs, nights),
    ]
    out = _violations(parts)
    order = out["rule"].map({r: i for i, r in enumerate(RULES)})
    return out.assign(_o=order).sort_values(["obs_id", "_o"], kind="stable").drop(columns="_o")


def _violations(parts: list[pd.DataFrame]) -> pd.DataFrame:
    dtypes = dict(zip(VIOLATION_COLUMNS, ("int64", object, float, float, object), strict=True))
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    parts = [p for p in parts if len(p)]
    return pd.concat([empty, *parts], ignore_index=True) if parts else empty


def _flag(obs_id, rule: str, value, limit, mask, detail=None) -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    return pd.DataFrame(
        {
            "obs_id": np.asarray(obs_id)[mask],
            "rule": [rule] * n,
            "value": np.broadcast_to(np.asarray(value, dtype=float), mask.shape)[mask],
            "limit": np.broadcast_to(np.asarray(limit, dtype=float), mask.shape)[mask],
            "detail": [""] * n if detail is None else list(np.asarray(detail, dtype=object)[mask]),
        }
    )


def _limit_violations(obs: pd.DataFrame, requests: pd.DataFrame) -> list[pd.DataFrame]:
    """The request's numeric limits, judged at the worse end of the exposure."""
    limits = [limit for _, limit, _ in LIMIT_RULES.values()]
    req = requests[["request_id", *limits]].drop_duplicates("request_id")
    m = obs.merge(req, on="request_id", how="left")  # keeps the order of obs
    moon_up = m["moon_alt_deg"].to_numpy(float) >= 0.0
    parts = []
    for rule, (columns, limit_col, sense) in LIMIT_RULES.items():
        values = [m[c].to_numpy(float) for c in columns]
        limit = m[limit_col].to_numpy(float)
        if sense == "max":
            value = np.fmax.reduce(values)
            bad = value > limit + LIMIT_TOL
        else:
            value = np.fmin.reduce(values)
            bad = value < limit - LIMIT_TOL
        if rule in ("moon_sep", "moon_illum"):  # the moon matters only above the horizon
            bad &= moon_up
        parts.append(_flag(m["obs_id"], rule, value, limit, bad))
    return parts


def _window_violations(obs: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """Outside every window of its request: start in [start, end) and end <= end of one."""
    cols = ["window_start_mjd", "window_end_mjd"]
    win = requests[["request_id", *cols]].explode(cols).dropna(subset=cols)
    if win.empty:
        return _violations([])
    win = win.astype({c: float for c in cols}).sort_values(["request_id", "window_start_mjd"])
    # The window reaching furthest among those already open at a time decides: an exposure
    # fits some window iff it fits that one (this also covers overlapping windows).
    win["reach"] = win.groupby("request_id")["window_end_mjd"].cummax()
    first_start = win.groupby("request_id")["window_start_mjd"].min()
    o = obs.loc[obs["request_id"].isin(first_start.index)]
    m, reach, inside = _inside_latest(o, win, "request_id", "window_start_mjd", "reach")
    t0, t1 = m["t0"].to_numpy(float), m["t1"].to_numpy(float)
    limit = np.where(np.isnan(reach), m["request_id"].map(first_start).to_numpy(float), reach)
    return _flag(m["obs_id"], "window", np.where(t0 < reach, t1, t0), limit, ~inside)


def _site_violations(obs: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """At a site its request does not allow (an empty ``sites`` list allows every site)."""
    pairs = requests[["request_id", "sites"]].explode("sites").dropna(subset=["sites"])
    pairs = pairs.rename(columns={"sites": "site"}).astype({"site": str}).drop_duplicates()
    if pairs.empty:
        return _violations([])
    o = obs.loc[obs["request_id"].isin(set(pairs["request_id"])), ["obs_id", "request_id", "site"]]
    m = o.merge(pairs, on=["request_id", "site"], how="left", indicator=True)
    bad = m[m["_merge"] == "left_only"]
    allowed = pairs.groupby("request_id")["site"].agg(lambda s: ", ".join(sorted(s)))
    detail = [
        f"site {s} not allowed by {r} (allowed: {allowed[r]})"
        for s, r in zip(bad["site"], bad["request_id"], strict=True)
    ]
    return _flag(bad["obs_id"], "site", np.nan, np.nan, np.ones(len(bad), bool), detail)


def _horizon_violations(obs: pd.DataFrame, horizon_fn: HorizonFn | None) -> pd.DataFrame:
    alt0, alt1 = obs["alt_deg"].to_numpy(float), obs["alt_end_deg"].to_numpy(float)
    lim0, lim1 = np.zeros(len(obs)), np.zeros(len(obs))
    if horizon_fn is not None:
        az0, az1 = obs["az_deg"].to_numpy(float), obs["az_end_deg"].to_numpy(float)
        for site, idx in obs.groupby("site").indices.items():
            lim0[idx] = horizon_fn(str(site), az0[idx])
            lim1[idx] = horizon_fn(str(site), az1[idx])
    margin0, margin1 = alt0 - lim0, alt1 - lim1
    end_worse = margin1 < margin0  # NaN at the end: judge the start
    value, limit = np.where(end_worse, alt1, alt0), np.where(end_worse, lim1, lim0)
    return _flag(obs["obs_id"], "horizon", value, limit, np.fmin(margin0, margin1) < -LIMIT_TOL)


def _interval_violations(
    obs: pd.DataFrame, intervals: dict[str, tuple[np.ndarray, np.ndarray]], key: str, rule: str
) -> pd.DataFrame:
    """Exposures overlapping an interval of their key; value: seconds inside it, limit 0."""
    t0, t1 = obs["mjd_start"].to_numpy(float), obs["mjd_end"].to_numpy(float)
    hit = np.zeros(len(obs), bool)
    overlap_s = np.zeros(len(obs))
    detail = np.full(len(obs), "", dtype=object)
    for name, idx in obs.groupby(key).indices.items():
        starts, ends = intervals.get(str(name), ((), ()))
        if len(starts) == 0:  # none for this key (or an empty entry: nothing to overlap)
            continue
        # Intervals are disjoint and sorted: if any overlaps [t0, t1), the last one
        # starting before t1 does.
        k = np.searchsorted(starts, t1[idx] - TIME_TOL_DAYS, side="left") - 1
        kk = np.clip(k, 0, None)
        hit_here = (k >= 0) & (ends[kk] > t0[idx] + TIME_TOL_DAYS)
        hit[idx] = hit_here
        overlap_s[idx] = (np.minimum(t1[idx], ends[kk]) - np.maximum(t0[idx], starts[kk])) * 86400
        for i, j in zip(idx[hit_here], kk[hit_here], strict=True):
            detail[i] = f"{rule} {name} from MJD {starts[j]:.5f} to {ends[j]:.5f}"
    return _flag(obs["obs_id"], rule, overlap_s, 0.0, hit, detail)


def dome_closed_intervals(events: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per site, the sorted disjoint [close, open) intervals (open = inf if never reopened)."""
    return _down_intervals(events, "dome_close", "dome_open", "site", by_ref=False)


def failure_intervals(events: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per telescope, when at least one component was down (failure → its repair)."""
    ev = events[events["telescope"] != ""]
    return _down_intervals(ev, "failure", "repair", "telescope", by_ref=True)


def _down_intervals(
    events: pd.DataFrame, down_kind: str, up_kind: str, key: str, by_ref: bool
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    # A loop over events, not observations: there are few of them (a few per night).
    ev = events[events["kind"].isin([down_kind, up_kind])].sort_values("mjd", kind="stable")
    out = {}
    for name, group in ev.groupby(key):
        refs = list(group["ref"]) if by_ref else [""] * len(group)
        # A key whose first event (per ref) is a recovery was already down when the log
        # began (a log written before the twin clamped pre-run failures to the start).
        first: dict[str, str] = {}
        for kind, ref in zip(group["kind"], refs, strict=True):
            first.setdefault(ref, kind)
        down = {ref for ref, kind in first.items() if kind == up_kind}
        starts, ends, since = [], [], -np.inf
        for t, kind, ref in zip(group["mjd"], group["kind"], refs, strict=True):
            if kind == down_kind:
                since = t if not down else since
                down.add(ref)
            elif down:
                if ref in down:
                    down.discard(ref)
                else:  # a repair naming no known failure: everything is back up
                    down.clear()
                if not down:
                    starts.append(since)
                    ends.append(t)
        if down:
            starts.append(since)
            ends.append(np.inf)
        out[str(name)] = (np.asarray(starts, float), np.asarray(ends, float))
    return out


def _inside_latest(obs: pd.DataFrame, intervals: pd.DataFrame, by: str, start: str, end: str
                   ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:  # fmt: skip
    """Match each exposure to the latest interval (same ``by``) starting at or before it;
    returns the matched rows (with ``t0``, ``t1``), that interval's ``end`` (NaN: none)
    and whether the exposure lies inside it. Selecting rows first matters: assigning a
    longer Series to an empty frame would take the Series' index."""
    o = obs[["obs_id", by]].assign(
        t0=obs["mjd_start"], t1=obs["mjd_end"], _t=obs["mjd_start"] + TIME_TOL_DAYS
    )
    m = pd.merge_asof(
        o.sort_values("_t"), intervals[[by, start, end]].sort_values(start),
        left_on="_t", right_on=start, by=by, direction="backward",
    )  # fmt: skip
    stop = m[end].to_numpy(float)
    t0, t1 = m["t0"].to_numpy(float), m["t1"].to_numpy(float)
    return m, stop, (t0 < stop) & (t1 <= stop + TIME_TOL_DAYS)


def _night_violations(obs: pd.DataFrame, nights: pd.DataFrame) -> pd.DataFrame:
    """Not wholly inside a night window of its site (no check without a nights table)."""
    if nights.empty:
        return _violations([])
    n = nights[["site", "mjd_start", "mjd_end"]].astype({"mjd_start": float, "mjd_end": float})
    n = n.rename(columns={"mjd_start": "night_start", "mjd_end": "night_end"})
    m, end, inside = _inside_latest(obs, n, "site", "night_start", "night_end")
    t0, t1 = m["t0"].to_numpy(float), m["t1"].to_numpy(float)
    return _flag(m["obs_id"], "night", np.where(t0 < end, t1, t0), end, ~inside)


# --------------------------------------------------------------------------- run directory


def write_metrics(run_dir: str | Path, horizon_fn: HorizonFn | None = None) -> dict:
    """Compute the metrics of a run directory and write ``metrics.json`` there.

    Keys already in ``metrics.json`` (``run``: scenario, policy, seed, nights, wall_s,
    written by the engine) are kept. Without ``horizon_fn`` the horizon masks come from
    the run's ``scenario.yaml`` when it has one.
    """
    run_dir = Path(run_dir)
    tables = {name: read_table(run_dir, name) for name in TABLES}
    if horizon_fn is None:
        horizon_fn = horizon_from_scenario(run_dir)
    metrics = compute_metrics(**tables, horizon_fn=horizon_fn)
    path = run_dir / "metrics.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    out = {"run": existing.pop("run", {}), **existing, **metrics}
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def summary_rows(metrics: dict) -> list[dict]:
    """Per site, then the network: exposures, open-shutter %, hours lost, science value."""
    rows = [_summary_row(site, stats) for site, stats in metrics["per_site"].items()]
    return [*rows, _summary_row("network", metrics["network"])]


def _summary_row(name: str, stats: dict) -> dict:
    open_fraction = stats.get("open_shutter_fraction")
    return {
        "site": name,
        "exposures": stats["exposures"],
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
