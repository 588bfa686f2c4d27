"""Throughput of the operations twin: a year of ``dense-8site`` under the greedy policy.

Reports simulated exposures and decisions per wall-clock second, and as ratios: how many
times faster than the real network the twin runs (simulated network-telescope time over
wall time), and against the reference path of the constraint engine
(:class:`~twin.ops.candidates.CandidateBuilder`, ``engine="reference"``) on the same world
in the same process: the compiled path (:mod:`twin.ops.candidates_compiled`, the default)
and the incremental one (:mod:`twin.ops.candidates_fast`) write the same tables, so the
ratios are what each buys. The first run of the process compiles or loads the kernels
(a warm-up night is run first and not counted). ``--random-nights N`` adds the random
policy (what the greedy scoring itself costs). No frames are rendered. Issue 15's target:
>= 10,000 exposures/s (the year in under 30 s).

    .venv/bin/python benchmarks/twin_throughput.py            # the year, both paths
    .venv/bin/python benchmarks/twin_throughput.py --nights 7 # a quick look
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

from twin.ops.engines import DEFAULT_ENGINE, ENGINES
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "dense-8site.yaml"


def measure(policy: str, nights: int, seed: int, engine: str = DEFAULT_ENGINE) -> dict:
    scenario = load_scenario(SCENARIO, nights=nights, seed=seed)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_scenario(scenario, out, policy, progress=True, plots=False, engine=engine)
        wall_s = time.perf_counter() - t0
    run = result.metrics["run"]
    telescopes = len(result.twin.units)
    return {
        "policy": policy,
        "engine": engine,
        "nights": nights,
        "telescopes": telescopes,
        "exposures": run["exposures"],
        "decisions": run["decisions"],
        "wall_s": round(wall_s, 2),
        "sim_wall_s": run["sim_wall_s"],
        "exposures_per_s": round(run["exposures"] / wall_s, 1),
        "decisions_per_s": round(run["decisions"] / run["sim_wall_s"], 1),
        "x_real_time": round(nights * 86400.0 * telescopes / wall_s, 0),
        "violations": result.metrics["constraint_violations"]["count"],
    }


PATHS = ("compiled", "incremental", "reference")


class _Paired:
    """Every engine path at every decision, in rotating order, each timed: they see the
    same inputs and load, so their ratios hold on a busy machine."""

    seconds: ClassVar[dict[str, float]] = dict.fromkeys(PATHS, 0.0)
    calls = 0

    def __new__(cls, *args, **kwargs):
        builders = {name: ENGINES[name](*args, **kwargs) for name in PATHS}
        calls = [(name, b.build) for name, b in builders.items()]

        def build(*a):
            cls.calls += 1
            k = cls.calls % len(calls)
            out = {}
            for name, fn in calls[k:] + calls[:k]:
                t0 = time.perf_counter()
                out[name] = fn(*a)
                cls.seconds[name] += time.perf_counter() - t0
            return out[DEFAULT_ENGINE]

        builders[DEFAULT_ENGINE].build = build
        return builders[DEFAULT_ENGINE]


def paired(nights: int, seed: int) -> dict:
    """Seconds per decision of each path, timed call by call in one greedy run."""
    ENGINES["paired"] = _Paired
    try:
        scenario = load_scenario(SCENARIO, nights=nights, seed=seed)
        with tempfile.TemporaryDirectory() as out:
            run_scenario(scenario, out, "greedy", progress=False, plots=False, engine="paired")
    finally:
        del ENGINES["paired"]
    n = _Paired.calls
    us = {name: 1e6 * _Paired.seconds[name] / n for name in PATHS}
    row = {"nights": nights, "builds": n}
    for name in PATHS:
        row[f"{name}_us_per_build"] = round(us[name], 1)
        row[f"{name}_speedup_vs_reference"] = round(us["reference"] / us[name], 3)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--reference-nights", type=int, default=None,
        help="nights of the incremental- and reference-path runs (default: --nights)",
    )  # fmt: skip
    parser.add_argument("--random-nights", type=int, default=0,
                        help="nights of a random-policy run (0: none)")  # fmt: skip
    parser.add_argument("--paired-nights", type=int, default=7,
                        help="nights timing the three paths call by call (0: none)")  # fmt: skip
    args = parser.parse_args(argv)
    measure("greedy", 1, args.seed)  # warm-up: compiles or loads the kernels
    rows = [measure("greedy", args.nights, args.seed)]
    # The paths compared on the same nights (a longer run has a longer queue: alerts
    # accumulate, so its rate is lower and is not compared with a shorter one's).
    baseline_nights = args.reference_nights or args.nights
    if baseline_nights != args.nights:
        rows.append(measure("greedy", baseline_nights, args.seed))
    rows += [measure("greedy", baseline_nights, args.seed, engine)
             for engine in ("incremental", "reference")]  # fmt: skip
    if args.random_nights:
        rows.append(measure("random", args.random_nights, args.seed))
    reference = {row["nights"]: row for row in rows if row["engine"] == "reference"}
    for row in rows:
        ref = reference.get(row["nights"])
        row["ratio_vs_reference_exposures_per_s"] = (
            round(row["exposures_per_s"] / ref["exposures_per_s"], 3) if ref else None
        )
    name = "twin_throughput" if args.nights == 365 else f"twin_throughput_{args.nights}n"
    extra = {"scenario": str(SCENARIO.name), "target_exposures_per_s": 10_000}
    if args.paired_nights:
        extra["engine_paired"] = paired(args.paired_nights, args.seed)
        print("constraint engine, call by call:", extra["engine_paired"])
    report(name, rows, extra)
    return rows


if __name__ == "__main__":
    main()
