"""What a run achieved, from its tables alone: time accounting, science, alerts, rule checks.

Everything here reads the tables of ``twin.ops.records``, so the metrics of a run can be
recomputed from its directory at any time, and tested on small hand-made tables.
``metrics.json`` holds the result. The short table printed when a run ends is
:mod:`twin.reports.run_summary`'s; the rule checks and their tally over batches are
:mod:`twin.reports.rule_checks`'s (both re-exported here, their old home).

Time accounting uses the timeline, which partitions every telescope's night windows: the
night hours of a group are the summed timeline intervals of its telescopes, and the state
fractions sum to 1. Science hours per programme come from the observation log
(``exptime_s``), since the timeline does not know programmes.

Why streamed: a year of a dense network is ~500 000 exposures and ~10^6 timeline rows;
read whole as pandas frames they took ~2 GB, more than the simulation. ``write_metrics``
reads the needed columns in batches (:func:`twin.reports.run_tables.iter_frames`) and
keeps per (telescope, site) running sums, so its memory does not grow with the run
except for two compact columns an exact answer needs: the distinct visit ids and the
seeing values (for the medians), ~12 bytes per exposure. ``compute_metrics`` is the same
computation on frames already in memory.

A site whose night never comes (polar summer) has no timeline and no exposures; it is
reported with zero night hours and a ``note``, never left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from twin.ops.records import TIMELINE_STATES
from twin.programme import constraints
from twin.reports.rule_checks import (  # noqa: F401  (re-exported: the audit's old home)
    N_EXAMPLES,
    RULES,
    HorizonFn,
    ViolationTally,
    constraint_violations,
    dome_closed_intervals,
    failure_intervals,
    violation_summary,
)
from twin.reports.run_summary import (  # noqa: F401  (re-exported: their old home)
    fmt_number,
    format_summary,
    plain,
    summary_rows,
)
from twin.reports.run_tables import (  # noqa: F401  (re-exported for notebooks and plots)
    BATCH_ROWS,
    OPTIONAL_TABLES,
    TABLES,
    iter_frames,
    read_table,
    records_frame,
    require_tables,
    system_arrow_memory,
)

MAX_PARTS = 64  # partial aggregates kept before they are summed into one
NO_NIGHT_NOTE = "no night: the sun never set below the observing limit during the run"
NOTHING_RECORDED_NOTE = "no timeline or exposure recorded"

STAT_COLUMNS = ("obs_id", "visit_id", "site", "telescope", "program", "exptime_s", "value",
                "m5", "seeing_fwhm_arcsec")  # fmt: skip
CHECK_COLUMNS = ("obs_id", "request_id", "site", "telescope", "mjd_start", "mjd_end",
                 "alt_deg", "alt_end_deg", "az_deg", "az_end_deg", "airmass", "airmass_end",
                 "sun_alt_deg", "sun_alt_end_deg", "moon_alt_deg", "moon_sep_deg",
                 "moon_illum", "seeing_fwhm_arcsec", "transparency")  # fmt: skip
OBSERVATION_COLUMNS = tuple(dict.fromkeys(STAT_COLUMNS + CHECK_COLUMNS))
TIMELINE_COLUMNS = ("telescope", "site", "state", "mjd_start", "mjd_end")
EVENT_COLUMNS = ("mjd", "kind", "site", "telescope", "ref")
INTERVAL_KINDS = ("dome_close", "dome_open", "failure", "repair")  # all the checks use
ALERT_COLUMNS = ("issued_mjd", "first_followup_mjd", "detected_mjd", "confirmed_mjd")


def request_columns() -> tuple[str, ...]:
    """The requests table's columns the audit reads: one limit per rule in force."""
    return ("request_id", *constraints.limit_fields(), "window_start_mjd", "window_end_mjd",
            "sites")  # fmt: skip


def observation_columns() -> tuple[str, ...]:
    """The observations' columns the metrics and the audit read (with every rule's)."""
    logged = (c for rule in constraints.rules() for c in rule.columns)
    return tuple(dict.fromkeys((*STAT_COLUMNS, *CHECK_COLUMNS, *logged)))


REQUEST_COLUMNS = request_columns()

Layout = Mapping[str, Sequence[str]]
"""The run's sites and their telescopes, ``{site: [telescope, ...]}`` (from the scenario)."""


# --------------------------------------------------------------------------- entry points


def compute_metrics(
    observations: pd.DataFrame,
    events: pd.DataFrame,
    timeline: pd.DataFrame,
    nights: pd.DataFrame,
    alerts: pd.DataFrame,
    requests: pd.DataFrame,
    horizon_fn: HorizonFn | None = None,
    layout: Layout | None = None,
) -> dict:
    """All metrics of a run as a JSON-serialisable dict (plain numbers; NaN becomes None).

    Keys: ``network``, ``per_site``, ``per_telescope``, ``per_program``, ``alerts``,
    ``constraint_violations``, ``hours_night_total``. Hours are hours of telescope time
    (two telescopes open for an hour make two hours). Sites and telescopes of ``layout``
    that recorded nothing appear with zero hours and a ``note``.
    """
    totals = RunTotals(requests, events, nights, horizon_fn)
    totals.add_timeline(timeline)
    totals.add_observations(observations)
    return totals.metrics(alerts, layout)


def stream_metrics(
    run_dir: str | Path,
    horizon_fn: HorizonFn | None = None,
    layout: Layout | None = None,
    batch_rows: int = BATCH_ROWS,
) -> dict:
    """``compute_metrics`` of a run directory, reading its long tables ``batch_rows`` rows
    at a time (the result does not depend on it)."""
    require_tables(run_dir, [n for n in TABLES if n not in OPTIONAL_TABLES])
    totals = RunTotals(
        requests=read_table(run_dir, "requests", request_columns()),
        events=_interval_events(run_dir, batch_rows),
        nights=read_table(run_dir, "nights", ("site", "mjd_start", "mjd_end")),
        horizon_fn=horizon_fn,
    )
    for frame in iter_frames(run_dir, "timeline", TIMELINE_COLUMNS, batch_rows):
        totals.add_timeline(frame)
    for frame in iter_frames(run_dir, "observations", observation_columns(), batch_rows):
        totals.add_observations(frame)
    return totals.metrics(read_table(run_dir, "alerts", ALERT_COLUMNS), layout)


def _interval_events(run_dir: str | Path, batch_rows: int) -> pd.DataFrame:
    """The events the rule checks use (dome and failure intervals): a few a night."""
    kept = [
        frame[frame["kind"].isin(INTERVAL_KINDS)]
        for frame in iter_frames(run_dir, "events", EVENT_COLUMNS, batch_rows)
    ]
    return (
        pd.concat(kept, ignore_index=True) if kept else read_table(run_dir, "events", EVENT_COLUMNS)
    )


def write_metrics(run_dir: str | Path, horizon_fn: HorizonFn | None = None,
                  scenario=None) -> dict:  # fmt: skip
    """Compute the metrics of a run directory and write ``metrics.json`` there.

    Keys already in ``metrics.json`` (``run``: scenario, policy, seed, nights, wall_s,
    written by the engine) are kept. The run's scenario (``scenario``, the engine's own,
    else the run's ``scenario.yaml`` when it has one) names the sites to report (even
    those that never had a night) and, without ``horizon_fn``, gives the horizon masks.
    """
    run_dir = Path(run_dir)
    if scenario is None:
        scenario = _run_scenario(run_dir)
    layout = None
    if scenario is not None:
        layout = {s.resolved.name: [t.name for t in s.telescopes] for s in scenario.sites}
        if horizon_fn is None:
            horizon_fn = _horizon_of(scenario)
    with system_arrow_memory():
        metrics = stream_metrics(run_dir, horizon_fn, layout)
    path = run_dir / "metrics.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    out = {"run": existing.pop("run", {}), **existing, **metrics}
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def horizon_from_scenario(run_dir: str | Path) -> HorizonFn | None:
    """The horizon masks of the run's sites, from its ``scenario.yaml`` (None if absent)."""
    scenario = _run_scenario(Path(run_dir))
    return None if scenario is None else _horizon_of(scenario)


def _run_scenario(run_dir: Path):
    path = run_dir / "scenario.yaml"
    if not path.is_file():
        return None
    from twin.scenario import load_scenario  # only this path needs the scenario models

    return load_scenario(path)


def _horizon_of(scenario) -> HorizonFn:
    sites = {site.name: site for site in scenario.network}

    def horizon(site: str, az_deg: np.ndarray) -> np.ndarray:
        if site not in sites:
            return np.zeros(np.shape(az_deg))
        return sites[site].horizon_min_alt_deg(az_deg)

    return horizon


# --------------------------------------------------------------------------- running totals


class Partials:
    """Aggregates of batches (frames indexed by the same keys), summed again every
    ``MAX_PARTS`` so that their number, and the memory they take, stays bounded."""

    def __init__(self, template: pd.DataFrame) -> None:
        self.template = template  # empty, with the index names and columns of a part
        self.parts: list[pd.DataFrame] = []
        self._total: pd.DataFrame | None = None

    def add(self, part: pd.DataFrame) -> None:
        self.parts.append(part)
        self._total = None
        if len(self.parts) >= MAX_PARTS:
            self.parts = [self.total()]

    def total(self) -> pd.DataFrame:
        """The sum of the parts, kept until the next ``add`` (the metrics read it once per
        level; treat it as read-only)."""
        if not self.parts:
            return self.template
        if self._total is None:
            levels = list(self.template.index.names)
            self._total = pd.concat(self.parts).groupby(level=levels, sort=True).sum()
        return self._total


class Collected:
    """Per key, the numpy arrays of one column gathered over batches (``unique``: only the
    distinct values, for counting them). Arrays are joined every ``MAX_PARTS``."""

    def __init__(self, unique: bool) -> None:
        self.unique = unique
        self.arrays: dict[tuple, list[np.ndarray]] = {}

    def add(self, key: tuple, values: np.ndarray) -> None:
        arrays = self.arrays.setdefault(key, [])
        arrays.append(np.unique(values) if self.unique else values)
        if len(arrays) >= MAX_PARTS:
            arrays[:] = [self._join(arrays)]

    def joined(self, keys: list[tuple]) -> np.ndarray:
        return self._join([a for k in keys for a in self.arrays.get(k, [])])

    def _join(self, arrays: list[np.ndarray]) -> np.ndarray:
        joined = np.concatenate(arrays) if arrays else np.array([], dtype=float)
        return np.unique(joined) if self.unique else joined


def _template(index: list[str], columns: list[str]) -> pd.DataFrame:
    """An empty aggregate: what ``Partials.total`` gives before any batch."""
    keys = pd.MultiIndex.from_arrays([[]] * len(index), names=index)
    return pd.DataFrame({c: pd.Series(dtype=float) for c in columns}, index=keys)


class RunTotals:
    """The metrics of a run fed batch by batch: timeline frames, then observation frames.

    Sums and counts are kept per (telescope, site) and added up per telescope, per site
    and over the network at the end. The small tables (requests, the dome and failure
    events, nights) are held whole: the rule checks of each exposure need all of them.
    """

    def __init__(self, requests: pd.DataFrame, events: pd.DataFrame, nights: pd.DataFrame,
                 horizon_fn: HorizonFn | None = None) -> None:  # fmt: skip
        self.requests, self.events, self.nights = requests, events, nights
        self.horizon_fn = horizon_fn
        self.hours = Partials(_template(["telescope", "site", "state"], ["hours"]))
        self.counts = Partials(
            _template(["telescope", "site"], ["exposures", "value", "m5_sum", "m5_n"])
        )
        self.programs = Partials(_template(["program"], ["exposures", "exptime_s", "value"]))
        self.exptime_s = 0.0
        self.visits = Collected(unique=True)
        self.seeing = Collected(unique=False)
        self.site_of_timeline: dict[str, str] = {}
        self.site_of_observations: dict[str, str] = {}
        self.violations = ViolationTally()

    def add_timeline(self, timeline: pd.DataFrame) -> None:
        tl = timeline.assign(hours=(timeline["mjd_end"] - timeline["mjd_start"]) * 24.0)
        self.hours.add(tl.groupby(["telescope", "site", "state"])[["hours"]].sum())
        _first_sites(tl, self.site_of_timeline)

    def add_observations(self, observations: pd.DataFrame) -> None:
        obs = observations.reset_index(drop=True)
        groups = obs.groupby(["telescope", "site"])
        self.counts.add(
            groups.agg(
                exposures=("obs_id", "size"),
                value=("value", "sum"),
                m5_sum=("m5", "sum"),
                m5_n=("m5", "count"),
            )
        )
        visit = obs["visit_id"].to_numpy()
        seeing = obs["seeing_fwhm_arcsec"].to_numpy(float)
        for key, idx in groups.indices.items():
            self.visits.add(key, visit[idx])
            self.seeing.add(key, seeing[idx])
        self.programs.add(_by_program(obs))
        self.exptime_s += float(obs["exptime_s"].sum())
        _first_sites(obs, self.site_of_observations)
        if len(obs):
            self.violations.add(
                constraint_violations(obs, self.requests, self.events, self.nights, self.horizon_fn)
            )

    def metrics(self, alerts: pd.DataFrame, layout: Layout | None = None) -> dict:
        """The finished metrics (see ``compute_metrics``)."""
        network = self._group_stats(None).get("", None) or _stats(*_NO_EXPOSURES, {})
        per_site = self._group_stats(1)
        per_telescope = self._group_stats(0)
        site_of = {**self.site_of_observations, **self.site_of_timeline}
        for name, stats in per_telescope.items():
            per_telescope[name] = {"site": site_of.get(name, ""), **stats}
        if layout:
            self._add_silent(per_site, per_telescope, layout)
        metrics = {
            "network": network,
            "per_site": per_site,
            "per_telescope": per_telescope,
            "per_program": _program_dict(self.programs.total(), self.exptime_s),
            "alerts": alert_stats(alerts),
            "constraint_violations": self.violations.summary(),
            "hours_night_total": network["night_hours"],
        }
        return plain(metrics)

    def _group_stats(self, level: int | None) -> dict[str, dict]:
        """Per telescope (level 0), site (1) or the whole network (None, one group "")."""

        def name(key: tuple) -> str:
            return "" if level is None else str(key[level])

        hours: dict[str, dict[str, float]] = {}
        for (tel, site, state), h in self.hours.total()["hours"].items():
            by_state = hours.setdefault(name((tel, site)), {})
            by_state[str(state)] = by_state.get(str(state), 0.0) + float(h)
        counts = self.counts.total()
        pairs: dict[str, list[tuple]] = {}
        for key in counts.index:
            pairs.setdefault(name(key), []).append(key)
        out = {}
        for group in sorted(set(hours) | set(pairs)):
            keys = pairs.get(group, [])
            c = counts.loc[keys].sum() if keys else pd.Series(0.0, index=counts.columns)
            seeing = self.seeing.joined(keys)
            seeing_median = pd.Series(seeing).median() if len(seeing) else None
            n_visits = len(self.visits.joined(keys))
            out[group] = _stats(int(c["exposures"]), n_visits, float(c["value"]),
                                c["m5_sum"] / c["m5_n"] if c["m5_n"] else np.nan,
                                seeing_median, hours.get(group, {}))  # fmt: skip
        return out

    def _add_silent(self, per_site: dict, per_telescope: dict, layout: Layout) -> None:
        """Sites (and their telescopes) of the layout that recorded nothing, with a note."""
        had_night = set(self.nights["site"].astype(str)) if len(self.nights) else set()
        for site, telescopes in layout.items():
            note = NOTHING_RECORDED_NOTE if site in had_night else NO_NIGHT_NOTE
            if site not in per_site:
                per_site[site] = {**_stats(*_NO_EXPOSURES, {}), "note": note}
            for tel in telescopes:
                if tel not in per_telescope:
                    per_telescope[tel] = {"site": site, **_stats(*_NO_EXPOSURES, {}),
                                          "note": note}  # fmt: skip
        for table in (per_site, per_telescope):
            ordered = sorted(table.items())
            table.clear()
            table.update(ordered)


_NO_EXPOSURES = (0, 0, 0.0, np.nan, None)  # exposures, visits, value, mean m5, median seeing


def _first_sites(frame: pd.DataFrame, site_of: dict[str, str]) -> None:
    """Record the first site each new telescope appears at, in row order."""
    for tel, site in (
        frame[["telescope", "site"]].drop_duplicates("telescope").itertuples(index=False)
    ):
        site_of.setdefault(tel, site)


def _stats(exposures: int, visits: int, science_value: float, mean_m5: float,
           median_seeing: float | None, hours_by_state: dict[str, float]) -> dict:  # fmt: skip
    states = list(TIMELINE_STATES) + sorted(set(hours_by_state) - set(TIMELINE_STATES))
    hours = {s: float(hours_by_state.get(s, 0.0)) for s in states}
    night_hours = sum(hours.values())
    fraction = {s: (h / night_hours if night_hours > 0 else None) for s, h in hours.items()}
    return {
        "exposures": exposures,
        "visits": visits,
        "science_value": science_value,
        "open_shutter_fraction": fraction["science"],
        "night_hours": night_hours,
        "hours": hours,
        "fraction": fraction,
        "mean_m5": float(mean_m5) if exposures else None,
        "median_seeing_arcsec": float(median_seeing) if exposures else None,
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


def program_stats(observations: pd.DataFrame) -> dict[str, dict]:
    """Per programme: exposures, science hours (shutter open), share of all science time."""
    return _program_dict(_by_program(observations), float(observations["exptime_s"].sum()))


def _by_program(observations: pd.DataFrame) -> pd.DataFrame:
    return observations.groupby("program").agg(
        exposures=("obs_id", "size"), exptime_s=("exptime_s", "sum"), value=("value", "sum")
    )


def _program_dict(by_program: pd.DataFrame, total_s: float) -> dict[str, dict]:
    return {
        str(name): {
            "exposures": int(row.exposures),
            "science_hours": row.exptime_s / 3600.0,
            "science_share": row.exptime_s / total_s if total_s > 0 else None,
            "science_value": float(row.value),
        }
        for name, row in by_program.iterrows()
    }
