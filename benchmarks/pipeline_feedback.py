"""What the pipeline's feedback is worth: delivered science value with and without it.

Paired over weather seeds (common random numbers: the same world for both arms), one
night of ``single-site`` each: *without* — no pipeline, every frame counts; *with* —
``--pipeline quality`` and a programme threshold (``pipeline.min_quality``): a frame the
model scores below it does not count and its visit is repeated. Delivered value counts
each frame by its *true* quality (the log's ``value``), and in the *with* arm only the
frames the centre accepted. The mean paired difference has a 95 % t interval.

    .venv/bin/python benchmarks/pipeline_feedback.py            # 10 seeds, ~15 min
    .venv/bin/python benchmarks/pipeline_feedback.py --stage quality-depth --frame-size 512
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

from twin.ops.run import run_scenario
from twin.scenario import load_scenario
from twin.sweeps.report import t_interval

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "single-site.yaml"
START = "2027-03-10"


def delivered(seed: int, pipeline_on: bool, min_quality: float, frame_size: int,
              stage: str = "quality") -> dict:  # fmt: skip
    scenario = load_scenario(SCENARIO, nights=1, start=START, seed=seed)
    if pipeline_on:
        spec = scenario.pipeline.model_copy(
            update={
                "stages": (stage,),
                "frame_size_pix": frame_size,
                "min_quality": min_quality,
            }
        )
        scenario = scenario.model_copy(update={"pipeline": spec})
    with tempfile.TemporaryDirectory() as out:
        run_scenario(scenario, out, "greedy", progress=False, plots=False)
        obs = pd.read_parquet(Path(out) / "observations.parquet")
        counted = obs
        rejected = math.nan
        if pipeline_on:
            pipe = pd.read_parquet(Path(out) / "pipeline.parquet")
            accepted = set(pipe.loc[pipe["accepted"], "obs_id"])
            counted = obs[obs["obs_id"].isin(accepted)]
            rejected = int((~pipe["accepted"]).sum())
        usable = counted[counted["quality"] >= min_quality]
        return {
            "seed": seed,
            "value": float(counted["value"].sum()),
            "value_usable": float(usable["value"].sum()),
            "frames": len(obs),
            "rejected": rejected,
            "true_q_rejected": float(
                obs.loc[~obs["obs_id"].isin(counted["obs_id"]), "quality"].mean()
            )
            if len(counted) < len(obs)
            else math.nan,
            "true_q_counted": float(counted["quality"].mean()),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=301)
    parser.add_argument("--min-quality", type=float, default=0.3)
    parser.add_argument("--frame-size", type=int, default=256)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--stage", default="quality",
                        help="the quality stage that decides (quality, quality-depth, quality-sep);"
                        " results/pipeline_feedback[_STAGE].json")  # fmt: skip
    args = parser.parse_args(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    n = len(seeds)

    def arm(pipeline_on: bool) -> list[dict]:
        return list(pool.map(delivered, seeds, [pipeline_on] * n, [args.min_quality] * n,
                             [args.frame_size] * n, [args.stage] * n))  # fmt: skip

    with ProcessPoolExecutor(args.processes) as pool:
        without, with_ = arm(False), arm(True)
    pairs = list(zip(without, with_, strict=True))
    value = t_interval(np.array([w["value"] - o["value"] for o, w in pairs]))
    usable = t_interval(np.array([w["value_usable"] - o["value_usable"] for o, w in pairs]))
    rows = [
        {
            "seed": o["seed"],
            "value_without": round(o["value"], 2),
            "value_with": round(w["value"], 2),
            "difference": round(w["value"] - o["value"], 2),
            "usable_without": round(o["value_usable"], 2),
            "usable_with": round(w["value_usable"], 2),
            "usable_difference": round(w["value_usable"] - o["value_usable"], 2),
            "frames_with": w["frames"],
            "rejected": w["rejected"],
            "true_q_rejected": round(w["true_q_rejected"], 3),
            "true_q_accepted": round(w["true_q_counted"], 3),
        }
        for o, w in pairs
    ]
    summary = {
        "mean_difference": round(value[0], 3),
        "ci95": [round(value[1], 3), round(value[2], 3)],
        "mean_value_without": round(float(np.mean([o["value"] for o in without])), 3),
        "usable_mean_difference": round(usable[0], 3),
        "usable_ci95": [round(usable[1], 3), round(usable[2], 3)],
        "usable_mean_without": round(float(np.mean([o["value_usable"] for o in without])), 3),
        "min_quality": args.min_quality,
        "frame_size_pix": args.frame_size,
        "stage": args.stage,
    }
    name = "pipeline_feedback" if args.stage == "quality" else f"pipeline_feedback_{args.stage}"
    report(name, rows, {"summary": summary})
    print(summary)


if __name__ == "__main__":
    main()
