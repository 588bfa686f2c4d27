"""``skytwin run``: a scenario, a policy and a seed in; a run directory out.

The run directory holds everything a user needs later (DESIGN.md step 11): the resolved
scenario (enough to rerun it), the tables of :mod:`twin.ops.records`, the weather truth,
``metrics.json`` and plots. Streamed tables are written one part per simulated day, so a
run stopped part-way, or killed, keeps its finished days on disk and can be resumed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from twin.errors import ConfigError
from twin.ops import records
from twin.ops.conditions import Policy
from twin.ops.engines import DEFAULT_ENGINE
from twin.ops.network import NetworkTwin
from twin.ops.policies import resolve_policy
from twin.ops.recorder import Recorder, part_days, remove_parts_from
from twin.ops.stopping import RunStopped, critical, stop_on_signals, stopped_by
from twin.ops.world import World
from twin.programme import constraints
from twin.scenario import Scenario, dump_scenario, same_scenario_yaml

STREAMED = {
    "observations": records.OBSERVATION_SCHEMA,
    "events": records.EVENT_SCHEMA,
    "timeline": records.TIMELINE_SCHEMA,
}
PROGRESS_FILE = "progress.json"
"""Written atomically after every finished day: ``days_finished`` of ``days_total``, the
policy, and ``complete`` once the end-of-run tables and metrics are written."""
RUN_FILES = (*(f"{name}.parquet" for name in STREAMED), "pipeline.parquet",
             "candidates.parquet", "fusion.parquet", "fused", "fusion-after.parquet", "fused-after",
             "references", "alerts.parquet",
             "requests.parquet", "nights.parquet", "weather.parquet", "metrics.json",
             "scenario.yaml", PROGRESS_FILE)  # fmt: skip


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict
    twin: NetworkTwin


class RunInterrupted(RunStopped):
    """A run stopped by SIGINT/SIGTERM; its finished days are on disk and it can resume."""

    def __init__(self, signum: int, out_dir: Path, days_finished: int, days_total: int):
        Exception.__init__(self, signum, out_dir, days_finished, days_total)
        self.signum = int(signum)
        self.out_dir, self.days_finished, self.days_total = out_dir, days_finished, days_total

    def message(self) -> str:
        kept = f"days 0-{self.days_finished - 1}" if self.days_finished else "no finished day"
        return (f"stopped ({self}): kept {kept} of {self.days_total} (observations, events, "
                f"timeline) in {self.out_dir}/; continue with: skytwin run --resume "
                f"{self.out_dir}")  # fmt: skip


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    policy: Policy | str | None = None,
    progress: bool = True,
    plots: bool = True,
    resume: bool = False,
    stages: list | None = None,
    engine: str = DEFAULT_ENGINE,
) -> RunResult:
    """Simulate ``scenario`` under ``policy`` (default: the scenario's) into ``out_dir``.

    The streamed tables are written one part per simulated day (:mod:`twin.ops.recorder`)
    and ``progress.json`` is updated after each, so a run killed at any moment keeps every
    finished day. ``resume=True`` continues a stopped run in ``out_dir``: the twin replays
    the finished days from the start (checked against the kept parts) and writes from the
    first unfinished day on, giving the tables of a run never interrupted. Replay, not a
    checkpoint of the state, because the state lives in SimPy's suspended generators,
    which cannot be saved; a replay is exact by construction. Raises
    :class:`RunInterrupted` on SIGINT/SIGTERM (main thread), after discarding the
    unfinished day.

    ``stages``: pipeline stages to run on every frame (:mod:`twin.pipeline`); default the
    scenario's ``pipeline.stages``, found through the ``skytwin.stages`` entry points.
    With any, each exposure's frame is rendered as it ends and ``pipeline.parquet`` is
    written beside the other tables.

    ``engine``: the constraint engine, a key of :data:`twin.ops.engines.ENGINES`:
    ``"compiled"`` (the default), ``"incremental"`` or ``"reference"``
    (:class:`~twin.ops.candidates.CandidateBuilder`); all give the same run.
    """
    out = Path(out_dir)
    source = "--policy" if policy else "operations.policy"
    policy = policy or scenario.operations.policy
    spec = policy if isinstance(policy, str) else getattr(policy, "name", "custom")
    if isinstance(policy, str):  # a bad policy is refused before anything is written
        policy = resolve_policy(policy, source=source)
    if stages is None and scenario.pipeline.enabled:
        from twin.pipeline.registry import resolve_stages

        stages = resolve_stages(scenario.pipeline.stages, source="pipeline.stages")
    if stages:  # a stage refuses a pipeline spec it cannot run before anything is written
        from twin.pipeline.stage import configure_stages

        configure_stages(list(stages), scenario.pipeline)
    tables = _tables(stages)
    kept = _prepare_out_dir(out, scenario, spec, resume, tables)
    wall0 = time.perf_counter()
    world = World(scenario)
    days_total = scenario.nights + 1

    def day_written(days_finished: int) -> None:
        _write_progress(out, spec, policy.name, days_finished, days_total, False)

    recorder = None
    with stop_on_signals():
        try:
            if not resume:
                dump_scenario(scenario, out / "scenario.yaml")
                day_written(0)
            recorder = Recorder(out, tables, skip_days=kept, on_day_written=day_written)
            twin = _simulate(world, policy, recorder, progress, kept, stages, engine)
            metrics = _finish(out, world, twin, time.perf_counter() - wall0, plots,
                              resumed_after=kept if resume else None)  # fmt: skip
            _write_progress(out, spec, policy.name, days_total, days_total, True)
        except Exception as exc:
            stop = stopped_by(exc)  # also when compiled code wrapped it (stopping.py)
            if stop is None:
                raise
            if recorder is not None:
                recorder.discard()
            done = read_progress(out).get("days_finished", 0)
            raise RunInterrupted(stop.signum, out, done, days_total) from None
    return RunResult(out, metrics, twin)


def _tables(stages: list | None) -> dict[str, pa.Schema]:
    """The streamed tables: with a pipeline ``pipeline``, and ``candidates`` when a stage
    finds transient candidates."""
    if not stages:
        return STREAMED
    from twin.pipeline.stage import produces_candidates

    tables = {**STREAMED, "pipeline": records.PIPELINE_SCHEMA}
    if any(produces_candidates(s) for s in stages):
        tables["candidates"] = records.CANDIDATE_SCHEMA
    return tables


def _simulate(world: World, policy: Policy, recorder: Recorder, progress: bool, kept: int,
              stages: list | None, engine: str = DEFAULT_ENGINE) -> NetworkTwin:  # fmt: skip
    scenario = world.scenario
    bar = None
    if progress:
        from tqdm.auto import tqdm

        desc = f"{scenario.name} [{policy.name}]" + (f" (replaying {kept} d)" if kept else "")
        bar = tqdm(total=scenario.nights + 1, unit="day", desc=desc)
    twin = NetworkTwin(world, policy, recorder, on_day=(lambda d: bar.update(1)) if bar else None,
                       engine=engine)  # fmt: skip
    if stages:
        from twin.pipeline.loop import SitePipeline

        twin.pipeline = SitePipeline(twin, list(stages), scenario.pipeline, recorder.out_dir)
    _write(recorder.out_dir / "nights.parquet", records.NIGHT_SCHEMA, [
        (n.site, n.night, n.start_mjd, n.end_mjd, n.hours) for s in world.sites for n in s.nights
    ])  # fmt: skip
    try:
        twin.run()
    finally:
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()
    return twin


def _finish(out: Path, world: World, twin: NetworkTwin, sim_wall_s: float, plots: bool,
            resumed_after: int | None) -> dict:  # fmt: skip
    """The end-of-run tables, metrics.json and plots (only for a run that finished)."""
    scenario, counters = world.scenario, twin.counters
    if twin.pipeline is None:  # the table of runs before the pipeline, unchanged
        _write(out / "alerts.parquet", records.ALERT_SCHEMA, _alert_rows(twin))
    else:
        _write(out / "alerts.parquet", records.ALERT_PIPELINE_SCHEMA, _alert_rows(twin, True))
    _write(out / "requests.parquet", records.request_schema(), _request_rows(twin))
    _atomic(out / "weather.parquet", lambda p: _write_weather(p, world))
    run_info = {
        "scenario": scenario.name, "policy": twin.policy.name, "seed": world.seed,
        "nights": scenario.nights, "start": scenario.start, "sim_wall_s": round(sim_wall_s, 3),
        "decisions": counters.decisions, "invalid_actions": counters.invalid_actions,
        "exposures": counters.exposures, "visits": counters.visits,
    }  # fmt: skip
    if resumed_after is not None:
        run_info["resumed_after_days"] = resumed_after
    if twin.pipeline is not None:
        run_info["pipeline"] = twin.pipeline.summary()
    _atomic(out / "metrics.json", lambda p: p.write_text(json.dumps({"run": run_info}, indent=2)))
    metrics = {"run": run_info}
    try:
        from twin.reports.run_metrics import write_metrics

        sites = {sw.site.name: sw.site for sw in world.sites}

        def horizon(site: str, az_deg):
            return sites[site].horizon_min_alt_deg(az_deg)

        metrics = write_metrics(out, horizon_fn=horizon, scenario=world.scenario)
    except ImportError:  # reports not installed in a minimal build
        pass
    if plots:
        from twin.reports.run_plots import make_run_plots

        make_run_plots(out)
    return metrics


def _prepare_out_dir(out: Path, scenario: Scenario, policy_spec: str, resume: bool,
                     tables: dict) -> int:  # fmt: skip
    """Check ``out`` can hold this run; return the days already finished (resume)."""
    try:
        return _check_out_dir(out, scenario, policy_spec, resume, tables)
    except OSError as err:  # too long, permissions, a file in the way...
        raise ConfigError(
            str(out),
            "--resume" if resume else "--out",
            f"cannot use this directory: {err.strerror or err}",
        ) from None


def _check_out_dir(out: Path, scenario: Scenario, policy_spec: str, resume: bool,
                   tables: dict) -> int:  # fmt: skip
    where = str(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(where, "--out", "exists and is not a directory; give a directory")
    if resume:
        state = read_progress(out)
        if not state:
            raise ConfigError(where, "--resume", f"no {PROGRESS_FILE}: not a run directory of "
                              "`skytwin run` (or made before runs could resume)")  # fmt: skip
        if state.get("complete"):
            raise ConfigError(where, "--resume", "the run is already complete (metrics.json)")
        stored = (out / "scenario.yaml").read_text() if (out / "scenario.yaml").is_file() else ""
        if not same_scenario_yaml(stored, scenario):
            raise ConfigError(where, "--resume", "the scenario differs from the stopped run's "
                              "scenario.yaml; resume with the run's own scenario")  # fmt: skip
        if state.get("policy") != policy_spec:
            raise ConfigError(where, "--resume", f"the stopped run used policy "
                              f"{state.get('policy')!r}, not {policy_spec!r}")  # fmt: skip
        kept = int(state.get("days_finished", 0))
        for name in tables:
            days = part_days(out / f"{name}.parquet")
            if days[:kept] != list(range(kept)):
                raise ConfigError(str(out / f"{name}.parquet"), "parts",
                                  f"days 0..{kept - 1} should be kept, found {days[:kept]}; "
                                  "cannot resume")  # fmt: skip
            remove_parts_from(out / f"{name}.parquet", kept)
        return kept
    present = [name for name in RUN_FILES if (out / name).exists()]
    if present:
        raise ConfigError(where, "--out", f"already holds a run ({', '.join(present[:3])}...); "
                          "continue a stopped one with --resume, or choose another --out "
                          "(or delete it)")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    probe = out / ".write-test"
    probe.write_bytes(b"")
    probe.unlink()
    return 0


def clear_run_dir(out: Path) -> None:
    """Delete a previous run's files from ``out`` (``--overwrite``); nothing else in it."""
    import shutil

    for name in (*RUN_FILES, "plots"):
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def read_progress(out: Path) -> dict:
    """The run directory's ``progress.json`` ({} if there is none or it is unreadable)."""
    try:
        return json.loads((out / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_progress(out: Path, policy_spec: str, policy_name: str, days_finished: int,
                    days_total: int, complete: bool) -> None:  # fmt: skip
    state = {"days_finished": days_finished, "days_total": days_total, "policy": policy_spec,
             "policy_name": policy_name, "complete": complete}  # fmt: skip
    with critical():
        _atomic(out / PROGRESS_FILE, lambda p: p.write_text(json.dumps(state, indent=2)))


def _write_weather(path: Path, world: World) -> None:
    """The weather truth, one row group per site (bounded memory on long runs)."""
    writer = None
    try:
        for frame in world.weather_frames():
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _atomic(path: Path, write) -> None:
    """``write(tmp)`` then rename over ``path``: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write(path: Path, schema: pa.Schema, rows: list[tuple]) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)],
        schema=schema,
    )
    _atomic(path, lambda p: pq.write_table(table, p))


def _alert_rows(twin: NetworkTwin, pipeline: bool = False) -> list[tuple]:
    """``alerts.parquet`` rows; with ``pipeline`` the detections' source and method too."""
    return [
        (s.alert.alert_id, s.alert.kind, s.alert.ra_deg, s.alert.dec_deg, s.alert.t0_mjd,
         s.alert.issued_mjd, s.alert.peak_mag_r, s.received_mjd, s.first_followup_mjd,
         s.first_followup_site, s.detected_mjd, s.confirmed_mjd, s.confirmed_site,
         s.n_exposures,
         *((s.source, s.detection_method, s.detected_site, s.detected_shutter_mjd,
            s.confirmed_shutter_mjd) if pipeline else ()))
        for s in twin.alerts.values()
    ]  # fmt: skip


def _request_rows(twin: NetworkTwin) -> list[tuple]:
    q = twin.queue
    rows = []
    rules = constraints.rules()
    for i, r in enumerate(q.requests):
        rows.append((
            r.request_id, r.program, r.target_id, r.alert_id, r.ra_deg, r.dec_deg, r.priority,
            *(rule.limit_of(r.constraints) for rule in rules),
            [w.start_mjd for w in r.windows], [w.end_mjd for w in r.windows], list(r.sites),
            r.visits, math.nan if r.cadence_days is None else r.cadence_days,
            r.total_exptime_s, float(q.created_mjd[i]), int(q.visits_done[i]),
        ))  # fmt: skip
    return rows
