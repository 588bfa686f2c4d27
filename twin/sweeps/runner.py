"""Run a sweep's points as Ray tasks (or a local process pool), resumably.

Why Ray and not a home-made runner: the same code runs on a laptop's local Ray and on an
existing cluster (``--address``), with Ray's scheduling, retries and dashboard.
``--processes N`` is the fallback for machines where Ray is unwanted: a local
:class:`~concurrent.futures.ProcessPoolExecutor`.

Each finished point writes ``points/POINT_ID.json`` (hidden temporary name, then an
atomic rename) and ``sweep.parquet`` is rebuilt from all of them; a stopped sweep run
again skips every point that has its file, so nothing finished is redone. A point's run
directory is kept under ``runs/POINT_ID/`` with ``--keep-runs``, otherwise only its
metrics are.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from twin.errors import ConfigError
from twin.sweeps.metrics import point_metrics
from twin.sweeps.points import Point

POINTS_DIR = "points"
TABLE = "sweep.parquet"
SPEC_COPY = "sweep.yaml"
SCRATCH = ".scratch"


def run_point(point: Point, out_dir: str, keep_run: bool) -> dict:
    """Run one point (a normal ``skytwin run``) and return its ``sweep.parquet`` row."""
    from twin.ops.run import run_scenario

    t0 = time.perf_counter()
    if keep_run:
        run_dir = Path(out_dir) / "runs" / point.point_id
        if run_dir.exists():  # a point killed mid-run: start it again
            shutil.rmtree(run_dir)
        run_scenario(point.scenario, run_dir, point.policy, progress=False, plots=False)
        metrics = point_metrics(run_dir)
    else:
        scratch = Path(out_dir) / SCRATCH  # nothing is written outside the sweep's directory
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="point-", dir=scratch) as tmp:
            run_dir = Path(tmp) / "run"
            run_scenario(point.scenario, run_dir, point.policy, progress=False, plots=False)
            metrics = point_metrics(run_dir)
    return {**point.axes, **metrics, "wall_s": time.perf_counter() - t0}


def finished_ids(out_dir: Path) -> set[str]:
    folder = out_dir / POINTS_DIR
    return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()


def _save_row(out_dir: Path, row: dict) -> None:
    folder = out_dir / POINTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{row['point_id']}.json.tmp"
    tmp.write_text(json.dumps(row, allow_nan=True))
    os.replace(tmp, folder / f"{row['point_id']}.json")


def write_table(out_dir: Path) -> pd.DataFrame:
    """``sweep.parquet`` from every finished point, in a stable order."""
    rows = [json.loads(p.read_text()) for p in sorted((out_dir / POINTS_DIR).glob("*.json"))]
    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("point_id", kind="stable").reset_index(drop=True)
    tmp = out_dir / f".{TABLE}.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out_dir / TABLE)
    return table


def _ray_results(todo: list[Point], out_dir: Path, keep_runs: bool, address: str | None
                 ) -> Iterator[dict]:  # fmt: skip
    try:
        import ray
    except ImportError:
        raise ConfigError("skytwin sweep", "--address", "Ray is not installed; use "
                          "--processes N for a local process pool") from None  # fmt: skip
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else {"num_cpus": os.cpu_count()}
        ray.init(**kwargs, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)  # fmt: skip
    try:
        task = ray.remote(num_cpus=1)(run_point)
        pending = [task.remote(p, str(out_dir), keep_runs) for p in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()


def _pool_results(todo: list[Point], out_dir: Path, keep_runs: bool, processes: int
                  ) -> Iterator[dict]:  # fmt: skip
    if processes <= 1:
        for p in todo:
            yield run_point(p, str(out_dir), keep_runs)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(processes) as pool:
        futures = [pool.submit(run_point, p, str(out_dir), keep_runs) for p in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for f in futures:
                f.cancel()


def run_points(points: Iterable[Point], out_dir: str | Path, *, keep_runs: bool = False,
               address: str | None = None, processes: int | None = None,
               progress: bool = True) -> pd.DataFrame:  # fmt: skip
    """Run every point not finished yet in ``out_dir``; returns the whole table.

    ``processes``: a local process pool of that size instead of Ray (1: in this process).
    Otherwise Ray: a local one (as many CPUs as the machine's) or the cluster at
    ``address`` (its nodes need skytwin installed, and with ``keep_runs`` a filesystem
    shared with this machine at ``out_dir``: each task writes its run directory where it
    runs).
    """
    from tqdm.auto import tqdm

    # Absolute: a task (a Ray worker, a pool process) may run in another directory.
    out_dir = Path(out_dir).resolve()
    # A point killed mid-run (SIGKILL, a lost node) left its run in the scratch folder;
    # no point of this sweep is running now, so whatever is there is dead.
    shutil.rmtree(out_dir / SCRATCH, ignore_errors=True)
    points = list(points)
    done = finished_ids(out_dir)
    todo = [p for p in points if p.point_id not in done]
    bar = tqdm(total=len(points), initial=len(points) - len(todo), unit="point",
               desc="sweep", disable=not progress)  # fmt: skip
    if processes is not None:
        results = _pool_results(todo, out_dir, keep_runs, processes)
    else:
        results = _ray_results(todo, out_dir, keep_runs, address)
    last_table = time.monotonic()
    try:
        for row in results:
            _save_row(out_dir, row)
            bar.update(1)
            if time.monotonic() - last_table > 10.0:  # keep sweep.parquet current
                write_table(out_dir)
                last_table = time.monotonic()
    finally:
        bar.close()
        table = write_table(out_dir) if (out_dir / POINTS_DIR).is_dir() else pd.DataFrame()
    shutil.rmtree(out_dir / SCRATCH, ignore_errors=True)  # every point has ended
    return table
