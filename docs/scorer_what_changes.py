"""What the shipped candidate scorer does differently from greedy, per programme.

Runs greedy and the scorer on the same three worlds (global-3site, seeds 101-103, one
night from 2027-04-07) and prints, per programme and policy, the exposures, their summed
science value and their mean quality, airmass, |hour angle| and slew. The README's
"What changes" figures come from this table.

    .venv/bin/python docs/scorer_what_changes.py [SCORER]     # ~15 s
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

from agents.scorer import load_scorer
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCORER = ROOT / "agents" / "trained" / "es-global-3site"


def main(scorer: str | Path = SCORER) -> pd.DataFrame:
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (101, 102, 103):
            for name in ("greedy", "scorer"):
                policy = load_scorer(scorer) if name == "scorer" else "greedy"
                sc = load_scenario(ROOT / "scenarios" / "global-3site.yaml", nights=1,
                                   seed=seed, start="2027-04-07")  # fmt: skip
                out = Path(tmp) / f"{name}-{seed}"
                run_scenario(sc, out, policy, progress=False, plots=False)
                obs = pd.read_parquet(out / "observations.parquet")
                frames.append(obs.assign(policy=name, abs_ha_h=obs["hour_angle_h"].abs()))
    obs = pd.concat(frames)
    return obs.groupby(["program", "policy"]).agg(
        exposures=("value", "size"), value=("value", "sum"), quality=("quality", "mean"),
        airmass=("airmass", "mean"), abs_ha_h=("abs_ha_h", "mean"), slew_s=("slew_s", "mean"),
    ).round(3)  # fmt: skip


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
