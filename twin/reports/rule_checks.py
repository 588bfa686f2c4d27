"""Rule checks: every (exposure, rule) a run's log shows broken.

The rules are those a request, the dome, the equipment and the night impose (``RULES``);
each check is vectorised over exposures and judges an exposure from its own row and the
run's small tables (requests, events, nights), never from other exposures. That is what
lets :mod:`twin.reports.run_metrics` check a long run batch by batch: the violations of
the whole log are the union of the batches' violations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from twin.programme import constraints

HorizonFn = Callable[[str, np.ndarray], np.ndarray]
"""``horizon_fn(site_name, az_deg) -> lowest usable altitude (deg)`` at those azimuths."""

SITE_RULES = ("window", "site", "horizon", "dome_closed", "failure", "night")
"""The rules that are not a request's limit (those are :mod:`twin.programme.constraints`)."""


def rules() -> tuple[str, ...]:
    """Every rule ``constraint_violations`` checks, in the order it reports them: the
    request's limits (as declared), then the window, site, horizon, dome, failure and
    night rules."""
    return (*(r.name for r in constraints.rules()), *SITE_RULES)


RULES = rules()
"""The rules of :data:`twin.programme.constraints.RULES` and :data:`SITE_RULES`."""

VIOLATION_COLUMNS = ("obs_id", "rule", "value", "limit", "detail")
LIMIT_TOL = 1e-9  # limits are compared as written; this absorbs float rounding only
TIME_TOL_DAYS = 1e-8  # ~1 ms: an exposure ending exactly as the dome closes is not inside


def constraint_violations(
    observations: pd.DataFrame,
    requests: pd.DataFrame,
    events: pd.DataFrame,
    nights: pd.DataFrame,
    horizon_fn: HorizonFn | None = None,
) -> pd.DataFrame:
    """Every (exposure, rule) the log shows broken; empty for a run that kept every rule.

    Columns: ``obs_id``, ``rule`` (one of ``rules()``), ``value`` (what the exposure had),
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
    if out.empty:  # a run that kept every rule: nothing to order
        return out
    order = out["rule"].map({r: i for i, r in enumerate(rules())})
    return out.assign(_o=order).sort_values(["obs_id", "_o"], kind="stable").drop(columns="_o")


def _violations(parts: list[pd.DataFrame | None]) -> pd.DataFrame:
    dtypes = dict(zip(VIOLATION_COLUMNS, ("int64", object, float, float, object), strict=True))
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    parts = [p for p in parts if p is not None and len(p)]
    return pd.concat([empty, *parts], ignore_index=True) if parts else empty


def _flag(obs_id, rule: str, value, limit, mask, detail=None) -> pd.DataFrame | None:
    """The flagged rows as violations; None when ``mask`` flags none (most checks of most
    batches: building an empty frame per rule was most of the audit's cost)."""
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if n == 0:
        return None
    return pd.DataFrame(
        {
            "obs_id": np.asarray(obs_id)[mask],
            "rule": [rule] * n,
            "value": np.broadcast_to(np.asarray(value, dtype=float), mask.shape)[mask],
            "limit": np.broadcast_to(np.asarray(limit, dtype=float), mask.shape)[mask],
            "detail": [""] * n if detail is None else list(np.asarray(detail, dtype=object)[mask]),
        }
    )


def _limit_violations(obs: pd.DataFrame, requests: pd.DataFrame) -> list[pd.DataFrame | None]:
    """The request's limits (:mod:`twin.programme.constraints`), each judged at the worse
    of the ends it holds at; a rule waived while the moon is down only while it is up."""
    rules = constraints.rules()
    limits = [rule.field for rule in rules]
    req = requests[["request_id", *limits]].drop_duplicates("request_id")
    m = obs.merge(req, on="request_id", how="left")  # keeps the order of obs
    moon_up = m["moon_alt_deg"].to_numpy(float) >= 0.0
    parts = []
    for rule in rules:
        values = [m[c].to_numpy(float) for c in rule.columns]
        limit = m[rule.field].to_numpy(float)
        if rule.sense == "max":
            value = np.fmax.reduce(values)
            bad = value > limit + LIMIT_TOL
        else:
            value = np.fmin.reduce(values)
            bad = value < limit - LIMIT_TOL
        if rule.moon_up_only:
            bad &= moon_up
        parts.append(_flag(m["obs_id"], rule.name, value, limit, bad))
    return parts


def _window_violations(obs: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame | None:
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


def _site_violations(obs: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame | None:
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


def _horizon_violations(obs: pd.DataFrame, horizon_fn: HorizonFn | None) -> pd.DataFrame | None:
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
) -> pd.DataFrame | None:
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


def _night_violations(obs: pd.DataFrame, nights: pd.DataFrame) -> pd.DataFrame | None:
    """Not wholly inside a night window of its site (no check without a nights table)."""
    if nights.empty:
        return _violations([])
    n = nights[["site", "mjd_start", "mjd_end"]].astype({"mjd_start": float, "mjd_end": float})
    n = n.rename(columns={"mjd_start": "night_start", "mjd_end": "night_end"})
    m, end, inside = _inside_latest(obs, n, "site", "night_start", "night_end")
    t0, t1 = m["t0"].to_numpy(float), m["t1"].to_numpy(float)
    return _flag(m["obs_id"], "night", np.where(t0 < end, t1, t0), end, ~inside)


# -- over batches: what metrics.json reports ------------------------------------------
N_EXAMPLES = 5
"""Violations ``metrics.json`` lists (the first ones, by ``obs_id`` and rule)."""


class ViolationTally:
    """Count per rule and the first ``N_EXAMPLES`` violations (by ``obs_id``, then rule
    order) over batches of ``constraint_violations``."""

    def __init__(self) -> None:
        self.count = 0
        self.by_rule: dict[str, int] = {}
        self.first_seen: dict[str, tuple[int, int]] = {}  # rule: its first (obs_id, rank)
        self.examples: pd.DataFrame | None = None

    def add(self, violations: pd.DataFrame) -> None:
        if violations.empty:
            return
        self.count += len(violations)
        for rule, n in violations["rule"].value_counts(sort=False).items():
            self.by_rule[str(rule)] = self.by_rule.get(str(rule), 0) + int(n)
        ranked = _by_obs_and_rule(violations)
        first = ranked.drop_duplicates("rule")
        for rule, obs_id, rank in zip(first["rule"], first["obs_id"], first["_o"], strict=True):
            seen = (int(obs_id), int(rank))
            self.first_seen[rule] = min(self.first_seen.get(rule, seen), seen)
        head = ranked.drop(columns="_o").head(N_EXAMPLES)
        both = head if self.examples is None else pd.concat([self.examples, head])
        self.examples = _by_obs_and_rule(both).drop(columns="_o").head(N_EXAMPLES)

    def summary(self) -> dict:
        """For ``metrics.json``: rules by count (ties: the rule met first comes first)."""
        rules = sorted(self.by_rule, key=lambda rule: self.first_seen[rule])
        rules.sort(key=lambda rule: -self.by_rule[rule])  # stable, like value_counts
        examples = [] if self.examples is None else self.examples.to_dict(orient="records")
        return {
            "count": self.count,
            "by_rule": {str(rule): int(self.by_rule[rule]) for rule in rules},
            "examples": examples,
        }


# --------------------------------------------------------------------------- small tables


def _by_obs_and_rule(violations: pd.DataFrame) -> pd.DataFrame:
    """Sorted as ``constraint_violations`` reports them, with the rule's rank in ``_o``."""
    rank = violations["rule"].map({r: i for i, r in enumerate(rules())})
    return violations.assign(_o=rank).sort_values(["obs_id", "_o"], kind="stable")


def violation_summary(violations: pd.DataFrame) -> dict:
    """Count per rule and the first few violating rows, for ``metrics.json``."""
    tally = ViolationTally()
    tally.add(violations)
    return tally.summary()
