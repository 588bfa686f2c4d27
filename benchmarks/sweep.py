"""Sweep throughput: N one-night points of ``global-3site`` with Ray, with a process pool,
and as a bare loop of runs, in the same process.

The bare loop is what a planner's shell loop over ``skytwin run`` does minus the
interpreter start-up: the same ``run_scenario`` per point, one after the other. Ray's and
the pool's overhead per point is their wall time x workers / points over the bare loop's
time per point, minus 1 (0 % = perfect use of the workers).

    .venv/bin/python benchmarks/sweep.py               # 200 points, ~15 min on 2 cores
    .venv/bin/python benchmarks/sweep.py --points 40   # a quicker look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

from twin.sweeps import runner
from twin.sweeps.points import expand
from twin.sweeps.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[1]


def points(n: int):
    spec = SweepSpec(name="bench", base="global-3site.yaml", starts=("2027-03-20",),
                     seeds={"first": 1, "count": n}, policies=("greedy",))  # fmt: skip
    return expand(spec, ROOT / "scenarios" / "global-3site.yaml", "benchmarks/sweep.py")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    todo = points(args.points)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bare = timed(lambda: [runner.run_point(p, str(tmp / "bare"), False) for p in todo])
        pool = timed(lambda: runner.run_points(todo, tmp / "pool", processes=args.workers,
                                               progress=False))  # fmt: skip
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        try:
            on_ray = timed(lambda: runner.run_points(todo, tmp / "ray", progress=False))
        finally:
            ray.shutdown()
    per_point = bare / args.points
    rows = []
    for name, wall in (("bare loop (1 process)", bare), ("process pool", pool), ("ray", on_ray)):
        workers = 1 if name.startswith("bare") else args.workers
        rows.append({
            "runner": name, "workers": workers, "wall_s": wall,
            "points_per_s": args.points / wall,
            "overhead_per_point_pct": 100.0 * (wall * workers / args.points / per_point - 1.0),
            "speedup_vs_bare": bare / wall,
        })  # fmt: skip
    report("sweep", rows, {"points": args.points, "scenario": "global-3site, 1 night",
                           "cpu_count": os.cpu_count()})  # fmt: skip


if __name__ == "__main__":
    main()
