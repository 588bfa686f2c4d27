"""``skytwin run``: a scenario, a policy and a seed in; a run directory out.

The run directory holds everything a user needs later (DESIGN.md step 11): the resolved
scenario (enough to rerun it), the tables of :mod:`twin.ops.records`, the weather truth,
``metrics.json`` and plots. Tables are flushed every simulated day, so a run stopped
part-way keeps its finished days on disk.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from twin.ops import records
from twin.ops.conditions import Policy
from twin.ops.network import NetworkTwin
from twin.ops.policies import resolve_policy
from twin.ops.recorder import Recorder
from twin.ops.world import World
from twin.scenario import Scenario, dump_scenario

STREAMED = {
    "observations": records.OBSERVATION_SCHEMA,
    "events": records.EVENT_SCHEMA,
    "timeline": records.TIMELINE_SCHEMA,
}


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict
    twin: NetworkTwin


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    policy: Policy | str | None = None,
    progress: bool = True,
    plots: bool = True,
) -> RunResult:
    """Simulate ``scenario`` under ``policy`` (default: the scenario's) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy = policy or scenario.operations.policy
    if isinstance(policy, str):
        policy = resolve_policy(policy)
    dump_scenario(scenario, out / "scenario.yaml")
    wall0 = time.perf_counter()
    world = World(scenario)
    recorder = Recorder(out, STREAMED)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=scenario.nights + 1, unit="day", desc=f"{scenario.name} [{policy.name}]")
    twin = NetworkTwin(world, policy, recorder, on_day=(lambda d: bar.update(1)) if bar else None)
    _write(out / "nights.parquet", records.NIGHT_SCHEMA, [
        (n.site, n.night, n.start_mjd, n.end_mjd, n.hours) for s in world.sites for n in s.nights
    ])  # fmt: skip
    try:
        counters = twin.run()
    finally:
        recorder.close()
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()
    sim_wall_s = time.perf_counter() - wall0
    _write(out / "alerts.parquet", records.ALERT_SCHEMA, _alert_rows(twin))
    _write(out / "requests.parquet", records.REQUEST_SCHEMA, _request_rows(twin))
    world.weather_frame().to_parquet(out / "weather.parquet", index=False)
    run_info = {
        "scenario": scenario.name, "policy": policy.name, "seed": world.seed,
        "nights": scenario.nights, "start": scenario.start, "sim_wall_s": round(sim_wall_s, 3),
        "decisions": counters.decisions, "invalid_actions": counters.invalid_actions,
        "exposures": counters.exposures, "visits": counters.visits,
    }  # fmt: skip
    (out / "metrics.json").write_text(json.dumps({"run": run_info}, indent=2))
    metrics = {"run": run_info}
    try:
        from twin.reports.run_metrics import write_metrics

        sites = {sw.site.name: sw.site for sw in world.sites}

        def horizon(site: str, az_deg):
            return sites[site].horizon_min_alt_deg(az_deg)

        metrics = write_metrics(out, horizon_fn=horizon)
    except ImportError:  # reports not installed in a minimal build
        pass
    if plots:
        from twin.reports.run_plots import make_run_plots

        make_run_plots(out)
    return RunResult(out, metrics, twin)


def _write(path: Path, schema: pa.Schema, rows: list[tuple]) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)],
        schema=schema,
    )
    pq.write_table(table, path)


def _alert_rows(twin: NetworkTwin) -> list[tuple]:
    return [
        (s.alert.alert_id, s.alert.kind, s.alert.ra_deg, s.alert.dec_deg, s.alert.t0_mjd,
         s.alert.issued_mjd, s.alert.peak_mag_r, s.received_mjd, s.first_followup_mjd,
         s.first_followup_site, s.detected_mjd, s.confirmed_mjd, s.confirmed_site,
         s.n_exposures)
        for s in twin.alerts.values()
    ]  # fmt: skip


def _request_rows(twin: NetworkTwin) -> list[tuple]:
    q = twin.queue
    rows = []
    for i, r in enumerate(q.requests):
        c = r.constraints
        rows.append((
            r.request_id, r.program, r.target_id, r.alert_id, r.ra_deg, r.dec_deg, r.priority,
            c.max_airmass, c.min_moon_sep_deg, c.max_moon_illum,
            math.inf if c.max_seeing_arcsec is None else c.max_seeing_arcsec,
            c.min_transparency, c.max_sun_alt_deg,
            [w.start_mjd for w in r.windows], [w.end_mjd for w in r.windows], list(r.sites),
            r.visits, math.nan if r.cadence_days is None else r.cadence_days,
            r.total_exptime_s, float(q.created_mjd[i]), int(q.visits_done[i]),
        ))  # fmt: skip
    return rows
