"""How tight the oracle's bound is: the slew-aware bound beside the first one, per instance.

For each seed of one night of ``global-3site`` (2027-04-07, the README's learning table)
it reports:

- the bound without slews (``slews=False``, the first formulation) and with them (each
  visit charged its least changeover, :mod:`agents.oracle.transitions`);
- the MILP's best integer plan (its own, optimistic, valuation) and HiGHS's status;
- greedy's and the CMA-ES scorer's values in the twin, and the best of them as the best
  feasible schedule found: the bound's gap to it, per instance;
- greedy's own night valued the MILP's way (each visit by the variable it maps to): the
  ratio to what the twin credited is the optimism of the per-slot quality bound alone.

    .venv/bin/python benchmarks/oracle_bound.py                # seeds 101-105, 30 s each
    .venv/bin/python benchmarks/oracle_bound.py --seeds 101..102 --time-limit 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

from agents.evaluate import parse_seeds
from agents.oracle import build_model, oracle_bound, visit_variables
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.ops.world import World
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "global-3site.yaml"
SCORER = ROOT / "agents" / "trained" / "es-global-3site"
START = "2027-04-07"


def night_value(scenario, policy) -> tuple[float, pd.DataFrame]:
    with tempfile.TemporaryDirectory() as out:
        run_scenario(scenario, out, resolve_policy(policy), progress=False, plots=False)
        log = pd.read_parquet(Path(out) / "observations.parquet")
    return float(log["value"].sum()), log


def milp_value_of(scenario, log: pd.DataFrame) -> float:
    """The MILP's value of a twin night's visits (each by the variable it maps to)."""
    model = build_model(World(scenario), 0, 5.0, 1.0, True)
    variables = visit_variables(model, log)["variable"].to_numpy()
    return float(model.variables.get("value")[variables].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="101..105")
    parser.add_argument("--time-limit", type=float, default=30.0, help="s per bound")
    args = parser.parse_args()
    rows = []
    for seed in parse_seeds(args.seeds):
        scenario = load_scenario(SCENARIO, nights=1, seed=seed, start=START)
        first = oracle_bound(World(scenario), time_limit_s=args.time_limit, slews=False)
        aware = oracle_bound(World(scenario), time_limit_s=args.time_limit, slews=True)
        greedy, log = night_value(scenario, "greedy")
        scorer, _ = night_value(scenario, str(SCORER))
        best = max(greedy, scorer)
        rows.append({
            "seed": seed,
            "bound_first": round(first.upper_bound, 1),
            "bound_slew_aware": round(aware.upper_bound, 1),
            "tightening": round(1.0 - aware.upper_bound / first.upper_bound, 4),
            "milp_plan": round(aware.milp_objective, 1),
            "milp_status": aware.status,
            "build_s": round(aware.build_s, 1),
            "greedy": round(greedy, 1),
            "scorer": round(scorer, 1),
            "greedy_fraction_first": round(greedy / first.upper_bound, 4),
            "greedy_fraction_slew_aware": round(greedy / aware.upper_bound, 4),
            "gap_to_best_feasible": round(1.0 - best / aware.upper_bound, 4),
            "greedy_milp_valued_over_credited": round(milp_value_of(scenario, log) / greedy, 4),
        })  # fmt: skip
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in
            ("seed", "milp_status")}  # fmt: skip
    report("oracle_bound", rows, {"scenario": SCENARIO.name, "start": START,
                                  "time_limit_s": args.time_limit, "mean": mean})  # fmt: skip
    print("mean: " + ", ".join(f"{k} {v:.4g}" for k, v in mean.items()))


if __name__ == "__main__":
    main()
