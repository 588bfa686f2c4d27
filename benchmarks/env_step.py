"""Cost of the Gymnasium wrapper: decisions per second of ``skytwin/Network-v0`` against
the twin alone, and MaskablePPO training steps per second.

Rows, on the same scenario, date and drawn worlds (the env's episodes' world seeds):

- ``twin greedy``: :class:`~twin.ops.network.NetworkTwin` calling the greedy policy
  directly, no tables written (the twin's own speed);
- ``stepped greedy``: the same through :class:`~twin.ops.stepping.SteppedTwin`
  (inverted control, no env): what handing decisions outside costs;
- ``env random``: ``gymnasium.make("skytwin/Network-v0")`` stepped with random valid
  actions: inverted control plus features, mask, rewards and Gymnasium's wrappers;
- ``ppo train``: sb3-contrib MaskablePPO learning on the env (rollouts and updates);
- ``twin greedy (incremental path)``, ``twin greedy (reference path)``: the first row with
  the constraint engine's other paths (``engine=...``), the same decisions: what the
  compiled default buys. A first episode is run before the rows (numba's kernels load).

Every row counts world building and resets in its time. ``overhead_x`` is the twin's
decisions per second over the row's.

    .venv/bin/python benchmarks/env_step.py              # ~1 min
    .venv/bin/python benchmarks/env_step.py --episodes 2 --ppo-steps 2048
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

import envs  # noqa: F401 - registers the ids
from agents.baselines import GreedyPolicy
from agents.sb3_train import fixed_start, make_env, train_ppo
from twin.ops.engines import DEFAULT_ENGINE
from twin.ops.network import NetworkTwin
from twin.ops.stepping import NullRecorder, SteppedTwin
from twin.ops.world import World
from twin.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "global-3site.yaml"


def env_random(scenario: Path, start: str, episodes: int, seed: int) -> tuple[dict, list[int]]:
    env = make_env(scenario=str(scenario), start=start)
    env.reset(seed=seed)  # first build: almanac caches, as the twin rows get them warm
    rng = np.random.default_rng(seed)
    world_seeds, steps = [], 0
    t0 = time.perf_counter()
    for i in range(episodes):
        _, info = env.reset(seed=seed + 1 + i)
        world_seeds.append(info["world_seed"])
        done = False
        while not done:
            mask = env.get_wrapper_attr("action_masks")()
            _, _, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
            steps += 1
            done = terminated or truncated
    return _row("env random", steps, time.perf_counter() - t0), world_seeds


def twin_greedy(scenario, world_seeds: list[int], engine: str = DEFAULT_ENGINE) -> dict:
    decisions, t0 = 0, time.perf_counter()
    for ws in world_seeds:
        world = World(scenario, seed=ws)
        twin = NetworkTwin(world, GreedyPolicy(), NullRecorder(), engine=engine)
        twin.record_truth = False  # as SteppedTwin without a recorder
        decisions += twin.run().decisions
    name = "twin greedy" if engine == DEFAULT_ENGINE else f"twin greedy ({engine} path)"
    return _row(name, decisions, time.perf_counter() - t0)


def stepped_greedy(scenario, world_seeds: list[int]) -> dict:
    decisions, t0 = 0, time.perf_counter()
    for ws in world_seeds:
        world = World(scenario, seed=ws)
        policy = GreedyPolicy()
        policy.reset(world.policy_seed)
        stepped = SteppedTwin(world)
        while (d := stepped.next_decision()) is not None:
            stepped.act(policy.decide(d.conditions))
            decisions += 1
    return _row("stepped greedy", decisions, time.perf_counter() - t0)


def ppo_train(scenario: Path, start: str, steps: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        result = train_ppo(scenario, steps, seed, out, start=start, progress=False,
                           ppo_kwargs={"n_steps": min(1024, steps)})  # fmt: skip
    return _row("ppo train", steps, result.wall_s)


def _row(name: str, decisions: int, wall_s: float) -> dict:
    return {"row": name, "decisions": decisions, "wall_s": round(wall_s, 3),
            "decisions_per_s": round(decisions / wall_s, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--episodes", type=int, default=5, help="nights (episodes) per row")
    parser.add_argument("--ppo-steps", type=int, default=8192, help="0: skip the training row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = fixed_start(args.scenario)
    scenario = load_scenario(args.scenario, start=start, nights=1)
    env_random(args.scenario, start, 1, args.seed + 1000)  # warm-up: kernels, imports
    env_row, world_seeds = env_random(args.scenario, start, args.episodes, args.seed)
    rows = [twin_greedy(scenario, world_seeds), stepped_greedy(scenario, world_seeds), env_row]
    if args.ppo_steps:
        rows.append(ppo_train(args.scenario, start, args.ppo_steps, args.seed))
    rows.append(twin_greedy(scenario, world_seeds, "incremental"))
    rows.append(twin_greedy(scenario, world_seeds, "reference"))
    base = rows[0]["decisions_per_s"]
    for row in rows:
        row["overhead_x"] = round(base / row["decisions_per_s"], 2)
    report("env_step", rows, {"scenario": args.scenario.name, "start": start,
                              "episodes": args.episodes, "world_seeds": world_seeds})  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
