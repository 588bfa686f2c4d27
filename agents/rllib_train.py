"""Train one shared PPO policy for every telescope with RLlib (new API stack).

Each telescope is an agent of :class:`envs.rllib_env.NetworkMultiAgentEnv`; all map to
the module ``"shared"``, so the network learns one scheduler that every telescope runs
on its own observation (parameter sharing). Masked actions get a -inf logit
(:class:`MaskedPPOTorchRLModule`), as in sb3-contrib's MaskablePPO for the single-agent
env.

Ray runs locally (``ray.init(num_cpus=...)``) unless ``address`` names a running
cluster; there, pass ``runtime_env`` so that the workers can import this project
(for example ``{"working_dir": "."}``).

    python -m agents.rllib_train --start 2027-03-10 --steps 20000 --out runs/rllib
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

try:
    import torch
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.core.columns import Columns
    from ray.rllib.utils.torch_utils import FLOAT_MIN
except ImportError as err:  # pragma: no cover - ray and torch are declared dependencies
    raise ImportError("agents.rllib_train needs RLlib and torch: pip install 'ray[rllib]' "
                      "torch (see pyproject.toml)") from err  # fmt: skip

from envs.network_env import DEFAULT_SCENARIO
from envs.rllib_env import NetworkMultiAgentEnv

MODULE_ID = "shared"
DEFAULT_PPO: dict[str, Any] = {
    "train_batch_size_per_learner": 2000,  # env steps per iteration
    "minibatch_size": 256,
    "num_epochs": 5,
    "lr": 3e-4,
    "gamma": 0.99,
    "lambda_": 0.95,
    "entropy_coeff": 0.01,
}
DEFAULT_MODEL: dict[str, Any] = {"fcnet_hiddens": [128, 128], "head_fcnet_hiddens": [64]}


class MaskedPPOTorchRLModule(DefaultPPOTorchRLModule):
    """PPO's default torch module on the ``"observations"`` part of a ``Dict``
    observation, with the logits of the actions ``"action_mask"`` forbids set to
    ``FLOAT_MIN``, so they are never sampled and carry no gradient."""

    def __init__(self, *, observation_space: spaces.Space | None = None, **kwargs) -> None:
        # The networks are built for the features alone; the module keeps the full Dict
        # space, which RLlib checks against the env's and stores in checkpoints.
        self._space_with_mask = observation_space
        inner = (observation_space["observations"]
                 if isinstance(observation_space, spaces.Dict) else observation_space)  # fmt: skip
        super().__init__(observation_space=inner, **kwargs)

    def setup(self) -> None:
        super().setup()
        self.observation_space = self._space_with_mask

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        mask, batch = _split(batch)
        return _mask_logits(super()._forward(batch, **kwargs), mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        mask, batch = _split(batch)
        return _mask_logits(super()._forward_train(batch, **kwargs), mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> Any:
        if embeddings is None:
            _, batch = _split(batch)
        return super().compute_values(batch, embeddings)


def _split(batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(action mask, batch with the features as observations); leaves ``batch`` intact."""
    obs = batch[Columns.OBS]
    return obs["action_mask"], {**batch, Columns.OBS: obs["observations"]}


def _mask_logits(out: dict[str, Any], mask: Any) -> dict[str, Any]:
    out[Columns.ACTION_DIST_INPUTS] = out[Columns.ACTION_DIST_INPUTS] + torch.clamp(
        torch.log(mask), min=FLOAT_MIN
    )
    return out


@dataclass
class RllibRun:
    """What :func:`train_rllib` wrote."""

    checkpoint: Path
    metrics_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)


def build_config(env_config: dict[str, Any], seed: int = 0, num_env_runners: int = 0,
                 ppo_kwargs: dict[str, Any] | None = None,
                 model_config: dict[str, Any] | None = None):  # fmt: skip
    """The ``PPOConfig``: one shared masked module for every telescope."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    module = RLModuleSpec(module_class=MaskedPPOTorchRLModule,
                          model_config={**DEFAULT_MODEL, **(model_config or {})})  # fmt: skip
    return (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment(NetworkMultiAgentEnv, env_config=env_config)
        .multi_agent(policies={MODULE_ID}, policy_mapping_fn=_to_shared)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={MODULE_ID: module}))
        .env_runners(num_env_runners=num_env_runners)
        .training(**{**DEFAULT_PPO, **(ppo_kwargs or {})})
        .debugging(seed=seed, log_level="ERROR")
    )


def _to_shared(agent_id: str, *args, **kwargs) -> str:
    return MODULE_ID


def train_rllib(scenario: str | Path = DEFAULT_SCENARIO, steps: int = 20_000, seed: int = 0,
                out_dir: str | Path = "runs/rllib", num_env_runners: int = 0,
                address: str | None = None, *, start: str | None = None, nights: int = 1,
                env_kwargs: dict[str, Any] | None = None,
                ppo_kwargs: dict[str, Any] | None = None,
                model_config: dict[str, Any] | None = None, checkpoint_every: int = 0,
                runtime_env: dict[str, Any] | None = None, progress: bool = True,
                init_from: str | Path | None = None) -> RllibRun:  # fmt: skip
    """Train the shared PPO policy for ``steps`` env steps; write the checkpoint and metrics.

    ``env_kwargs`` go to :class:`~envs.multi_env.NetworkParallelEnv` (``n_candidates``,
    ``reward_weights``, ``max_cycles``...), ``ppo_kwargs`` to ``PPOConfig.training``
    (over :data:`DEFAULT_PPO`), ``model_config`` to the module (over
    :data:`DEFAULT_MODEL`). ``checkpoint_every`` > 0 also saves every that many
    iterations under ``out_dir/checkpoint_NNNN``. Writes ``out_dir/checkpoint`` (the
    final ``algo.save``) and ``out_dir/metrics.json`` (the arguments and one record per
    iteration); shows a progress bar unless ``progress`` is False.

    ``init_from``: a checkpoint folder of an earlier run (``out_dir/checkpoint`` or
    ``checkpoint_NNNN``) to resume: weights, optimiser and step counters are restored, so
    ``steps`` counts from the start of the first run. RLlib checkpoints are pickles: resume
    only from checkpoints you wrote yourself (shipped policies use :func:`export_policy`).
    """
    import ray
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(scenario, str | Path):  # env runners may run in another directory
        scenario = str(Path(scenario).resolve())
    env_config = {"scenario": scenario, "nights": nights, "start": start, **(env_kwargs or {})}
    NetworkMultiAgentEnv(env_config)  # fail here, not in a Ray worker, on a bad scenario
    quiet_ray()
    started = not ray.is_initialized()
    if started and address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
                 logging_level=logging.ERROR)  # fmt: skip
    elif started:
        ray.init(num_cpus=max(2, num_env_runners + 1), include_dashboard=False,
                 runtime_env=runtime_env, log_to_driver=False,
                 logging_level=logging.ERROR)  # fmt: skip
    algo = build_config(env_config, seed, num_env_runners, ppo_kwargs, model_config).build_algo()
    history: list[dict[str, Any]] = []
    if init_from is not None:
        algo.restore_from_path(str(Path(init_from).resolve()))
        earlier = Path(init_from).resolve().parent / "metrics.json"
        if earlier.is_file():
            history = [row for row in json.loads(earlier.read_text()).get("iterations", [])
                       if row["iteration"] <= algo.iteration]  # fmt: skip
    record = {"scenario": str(scenario), "steps": steps, "seed": seed,
              "num_env_runners": num_env_runners, "env_config": _jsonable(env_config),
              "ppo": {**DEFAULT_PPO, **(ppo_kwargs or {})},
              "model": {**DEFAULT_MODEL, **(model_config or {})},
              "init_from": None if init_from is None else str(init_from)}  # fmt: skip
    metrics_path = out / "metrics.json"
    try:
        with tqdm(total=steps, unit="step", desc="rllib ppo", disable=not progress) as bar:
            done = history[-1]["env_steps"] if history else int(algo.metrics.peek(
                "num_env_steps_sampled_lifetime", default=0))  # fmt: skip
            bar.update(min(done, steps))
            metrics_path.write_text(json.dumps({"config": record, "iterations": history},
                                               indent=1))  # fmt: skip
            while done < steps:
                row = _summary(algo.train())
                history.append(row)
                bar.update(min(row["env_steps"], steps) - done)
                done = row["env_steps"]
                bar.set_postfix(ret=row["episode_return_mean"], it=row["iteration"])
                if checkpoint_every and row["iteration"] % checkpoint_every == 0:
                    algo.save(str((out / f"checkpoint_{row['iteration']:04d}").resolve()))
                metrics_path.write_text(json.dumps({"config": record, "iterations": history},
                                                   indent=1))  # fmt: skip
        checkpoint = (out / "checkpoint").resolve()
        algo.save(str(checkpoint))
    finally:
        algo.stop()
        if started:
            ray.shutdown()
    return RllibRun(checkpoint, metrics_path, history)


def load_module(checkpoint: str | Path) -> MaskedPPOTorchRLModule:
    """The trained shared module of a :func:`train_rllib` checkpoint (no Ray needed)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(checkpoint).resolve() / "learner_group" / "learner" / "rl_module" / MODULE_ID
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: pass the directory train_rllib saved "
                                "(out_dir/checkpoint)")  # fmt: skip
    return RLModule.from_checkpoint(path)


def evaluate_rllib(checkpoint: str | Path, scenario: str | Path = DEFAULT_SCENARIO,
                   episodes: int = 1, seed: int = 0, *, start: str | None = None,
                   nights: int = 1, env_kwargs: dict[str, Any] | None = None
                   ) -> dict[str, Any]:  # fmt: skip
    """Run the trained policy greedily (argmax of the masked logits) for ``episodes``
    episodes seeded ``seed, seed + 1, ...``; returns the per-episode results and means."""
    module = load_module(checkpoint)
    module.eval()
    env = NetworkMultiAgentEnv({"scenario": scenario, "nights": nights, "start": start,
                                **(env_kwargs or {})})  # fmt: skip
    results = [_episode(env, module, seed + i) for i in range(episodes)]
    means = {k: float(np.mean([r[k] for r in results]))
             for k in ("return", "exposures", "visits", "alerts_followed", "steps")}  # fmt: skip
    return {"episodes": results, "mean": means}


def _episode(env: NetworkMultiAgentEnv, module: MaskedPPOTorchRLModule, seed: int) -> dict:
    obs, infos = env.reset(seed=seed)
    returns = dict.fromkeys(env.possible_agents, 0.0)
    steps, last = 0, {}
    while True:
        actions = _greedy(module, obs) if obs else {}
        obs, rewards, terminateds, truncateds, infos = env.step(actions)
        steps += 1
        for agent, reward in rewards.items():
            returns[agent] += reward
        last.update(infos)
        if terminateds["__all__"] or truncateds["__all__"]:
            break
    info = next(iter(last.values()))
    return {"seed": seed, "return": float(sum(returns.values())), "returns": returns,
            "steps": steps, "exposures": info["exposures"], "visits": info["visits"],
            "alerts_followed": info["alerts_followed"],
            "invalid_actions": sum(i["invalid_actions"] for i in last.values()),
            "conflicts": sum(i["conflicts"] for i in last.values())}  # fmt: skip


def _greedy(module: MaskedPPOTorchRLModule, obs: dict[str, dict]) -> dict[str, int]:
    agents = list(obs)
    batch = {key: torch.as_tensor(np.stack([obs[a][key] for a in agents]))
             for key in ("action_mask", "observations")}  # fmt: skip
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: batch})[Columns.ACTION_DIST_INPUTS]
    return dict(zip(agents, logits.argmax(dim=-1).tolist(), strict=True))


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers worth keeping from an RLlib result dict (None where absent)."""
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get(MODULE_ID, {})
    env_steps = result.get("num_env_steps_sampled_lifetime",
                           runners.get("num_env_steps_sampled_lifetime", 0))  # fmt: skip
    agent_steps = runners.get("num_agent_steps_sampled_lifetime", {})

    def num(value: Any) -> float | None:
        return None if value is None or not math.isfinite(float(value)) else float(value)

    return {
        "iteration": int(result.get("training_iteration", 0)),
        "env_steps": int(env_steps),
        "agent_steps": {k: int(v) for k, v in agent_steps.items()},
        "episodes": int(runners.get("num_episodes_lifetime", 0)),
        "episode_return_mean": num(runners.get("episode_return_mean")),
        "episode_len_mean": num(runners.get("episode_len_mean")),
        "policy_loss": num(learner.get("policy_loss")),
        "vf_loss": num(learner.get("vf_loss")),
        "entropy": num(learner.get("entropy")),
        "mean_kl": num(learner.get("mean_kl_loss")),
        "time_s": num(result.get("time_this_iter_s")),
    }


def quiet_ray() -> None:
    """Ray and RLlib log deprecation notes and worker chatter at INFO/WARNING."""
    for name in ("ray", "ray.rllib", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool | dict | list | type(None))
                else str(v)) for k, v in config.items()}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    parser.add_argument("--start", required=True, help="first night, YYYY-MM-DD")
    parser.add_argument("--nights", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps to train for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/rllib")
    parser.add_argument("--env-runners", type=int, default=0)
    parser.add_argument("--address", default=None, help="a running Ray cluster")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    run = train_rllib(args.scenario, args.steps, args.seed, args.out, args.env_runners,
                      args.address, start=args.start, nights=args.nights)  # fmt: skip
    print(f"checkpoint {run.checkpoint}, metrics {run.metrics_path} "
          f"({len(run.history)} iterations, {time.perf_counter() - t0:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
