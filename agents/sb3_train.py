"""Train a MaskablePPO scheduler (sb3-contrib) on ``skytwin/Network-v0``.

The agent sees the env's Dict observation (``MultiInputPolicy``) and chooses only among
the valid actions (the env's ``action_masks()``). Every training episode draws a new
world (weather, failures, alerts) from the env's seed; the start date stays fixed, so
the sky and the programme's visibility are those of one date. The output folder holds:

| path             | content                                                      |
|------------------|--------------------------------------------------------------|
| manifest.json    | the policy's description (:mod:`agents.policy_format`) and   |
|                  | scenario, start, steps, seed, candidates, reward weights,    |
|                  | hyperparameters, versions, the command that reproduces it    |
| policy.pt        | the policy's weights, tensors only (``skytwin run S --policy |
|                  | OUT`` loads the folder)                                      |
| model.zip        | SB3's own save, for ``--init-from`` only: it is pickled, so  |
|                  | the twin never loads it as a policy                          |
| checkpoints/     | ``ppo_<steps>_steps.zip`` every ``checkpoint_every`` steps   |
|                  | (SB3 zips too: convert one with ``agents.convert_policy``)   |
| tb/              | TensorBoard logs (when tensorboard is installed)             |

    skytwin train --algo ppo --scenario scenarios/global-3site.yaml --steps 200000 --out runs/ppo
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envs.network_env import DEFAULT_REWARD_WEIGHTS, DEFAULT_SCENARIO

DEFAULT_START = "2027-04-07"
"""Training date for scenarios whose start is 'tonight' (a training set must not change
with the day it is run). Two days after new moon: dark nights."""
DEFAULT_NET_ARCH = (64, 64)
"""Small actor and critic networks: the shipped policy.pt stays well under 1 MB."""
DEFAULT_PPO_KWARGS: dict[str, Any] = {
    "n_steps": 1024,  # per env; one night of the 3-site network is ~400 decisions
    "batch_size": 256,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "ent_coef": 0.01,
}


@dataclass
class TrainResult:
    """What :func:`train_ppo` wrote (``manifest`` is also ``manifest_path``'s content).
    ``policy_dir`` is what ``--policy`` loads; ``model_path`` SB3's zip, for
    ``--init-from``."""

    model_path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    wall_s: float
    policy_dir: Path


def fixed_start(scenario: str | Path, start: str | None = None) -> str:
    """``start`` if given, else the scenario file's start date, else :data:`DEFAULT_START`
    when the file says 'tonight' (or nothing)."""
    if start:
        return start
    raw = yaml.safe_load(Path(scenario).read_text()) or {}
    value = str(raw.get("start", "tonight"))
    return DEFAULT_START if value == "tonight" else value


def make_env(**env_kwargs: Any):
    """``gymnasium.make("skytwin/Network-v0", **env_kwargs)``, importable in worker
    processes (``import envs`` registers the id there too)."""
    import gymnasium as gym

    import envs  # noqa: F401

    return gym.make("skytwin/Network-v0", **env_kwargs)


def train_ppo(
    scenario: str | Path = DEFAULT_SCENARIO,
    steps: int = 200_000,
    seed: int = 0,
    out_dir: str | Path = "runs/ppo",
    n_envs: int = 1,
    *,
    start: str | None = None,
    nights: int = 1,
    n_candidates: int = 16,
    reward_weights: dict[str, float] | None = None,
    net_arch: tuple[int, ...] = DEFAULT_NET_ARCH,
    ppo_kwargs: dict[str, Any] | None = None,
    checkpoint_every: int | None = None,
    torch_threads: int | None = 1,
    progress: bool = True,
    verbose: int = 0,
    init_from: str | Path | None = None,
    start_spread_days: int = 0,
) -> TrainResult:
    """Train MaskablePPO for ``steps`` env steps and save it in ``out_dir``.

    Arguments:

    | name             | default            | meaning                                          |
    |------------------|--------------------|--------------------------------------------------|
    | scenario         | global-3site.yaml  | scenario file                                    |
    | steps            | 200000             | env steps (decisions) in all                     |
    | seed             | 0                  | seeds PPO, torch and the envs (env i: seed + i)  |
    | out_dir          | runs/ppo           | output folder (see the module docstring)         |
    | n_envs           | 1                  | parallel envs (>1: one process each)             |
    | start            | scenario's         | fixed date, :func:`fixed_start`                  |
    | nights           | 1                  | nights per episode                               |
    | n_candidates     | 16                 | candidates offered per decision                  |
    | reward_weights   | env's defaults     | overrides of the env's reward weights            |
    | net_arch         | (64, 64)           | hidden layers of the actor and of the critic     |
    | ppo_kwargs       | DEFAULT_PPO_KWARGS | overrides of MaskablePPO's arguments             |
    | checkpoint_every | steps // 4         | env steps between checkpoints                    |
    | torch_threads    | 1                  | torch CPU threads while training (None: as set)  |
    | progress         | True               | progress bar                                     |
    | init_from        | None               | a model.zip to continue (keeps its net and PPO; |
    |                  |                    | unpickled by SB3: only a zip you trained)        |
    | start_spread_days | 0                 | each episode starts start + U{0..spread-1} days  |
    """
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import CheckpointCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from agents.policy_format import export_model

    if steps < 1 or n_envs < 1:
        raise ValueError(f"steps and n_envs must be >= 1 (got {steps}, {n_envs})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = fixed_start(scenario, start)
    env_kwargs = {"scenario": str(scenario), "start": start, "nights": nights,
                  "n_candidates": n_candidates, "reward_weights": reward_weights,
                  "start_spread_days": start_spread_days}  # fmt: skip
    vec_env = make_vec_env(make_env, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs,
                           vec_env_cls=SubprocVecEnv if n_envs > 1 else DummyVecEnv)  # fmt: skip
    kwargs = {**DEFAULT_PPO_KWARGS, **(ppo_kwargs or {})}
    tb = str(out / "tb") if importlib.util.find_spec("tensorboard") else None
    if init_from is not None:
        model = MaskablePPO.load(init_from, env=vec_env, device="cpu", tensorboard_log=tb)
        model.set_random_seed(seed)
        kwargs = {key: getattr(model, key) for key in kwargs if hasattr(model, key)}
    else:
        model = MaskablePPO("MultiInputPolicy", vec_env, seed=seed, tensorboard_log=tb,
                            policy_kwargs={"net_arch": list(net_arch)}, verbose=verbose,
                            device="cpu", **kwargs)  # fmt: skip
    every = checkpoint_every or max(steps // 4, 1)
    callbacks = [CheckpointCallback(max(every // n_envs, 1), str(out / "checkpoints"), "ppo")]
    rich = importlib.util.find_spec("rich") is not None
    if progress and not rich:
        callbacks.append(_tqdm_callback(steps))
    # One thread: the networks are tiny, and more threads only wait on each other (10-50x
    # slower updates measured on a loaded 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads or threads)
    t0 = time.perf_counter()
    try:
        model.learn(steps, callback=callbacks, progress_bar=progress and rich, tb_log_name="ppo",
                    reset_num_timesteps=init_from is None)  # fmt: skip
    finally:
        vec_env.close()
        torch.set_num_threads(threads)
    wall_s = time.perf_counter() - t0
    model_path = out / "model.zip"
    model.save(model_path)  # pickled: for --init-from; the twin loads manifest + policy.pt
    manifest = _manifest(scenario, start, steps, seed, out, n_envs, nights, n_candidates,
                         reward_weights, net_arch, ppo_kwargs, kwargs, wall_s)  # fmt: skip
    if start_spread_days:
        manifest["start_spread_days"] = start_spread_days
        manifest["command"] += f" --start-spread-days {start_spread_days}"
    if init_from is not None:
        manifest["init_from"] = _shown(init_from)
        manifest["command"] += f" --init-from {shlex.quote(_shown(init_from))}"
    manifest_path = export_model(model, out, manifest)
    manifest = json.loads(manifest_path.read_text())
    return TrainResult(model_path, manifest_path, manifest, wall_s, out)


def _manifest(scenario, start, steps, seed, out, n_envs, nights, n_candidates, reward_weights,
              net_arch, ppo_kwargs, kwargs, wall_s) -> dict[str, Any]:  # fmt: skip
    import sb3_contrib
    import stable_baselines3
    import torch

    cmd = ["skytwin", "train", "--algo", "ppo", "--scenario", _shown(scenario), "--steps",
           str(steps), "--seed", str(seed), "--out", _shown(out), "--start", start]  # fmt: skip
    if n_envs != 1:
        cmd += ["--n-envs", str(n_envs)]
    if nights != 1:
        cmd += ["--nights", str(nights)]
    if n_candidates != 16:
        cmd += ["--n-candidates", str(n_candidates)]
    for name, weight in (reward_weights or {}).items():
        cmd += ["--reward-weight", f"{name}={weight}"]
    if tuple(net_arch) != DEFAULT_NET_ARCH:
        cmd += ["--net-arch", ",".join(map(str, net_arch))]
    for key, value in (ppo_kwargs or {}).items():
        cmd += ["--ppo", f"{key}={json.dumps(value)}"]
    return {
        "algo": "MaskablePPO",
        "env": "skytwin/Network-v0",
        "scenario": _shown(scenario),
        "start": start,
        "nights": nights,
        "steps": steps,
        "seed": seed,
        "n_envs": n_envs,
        "n_candidates": n_candidates,
        "reward_weights": {**DEFAULT_REWARD_WEIGHTS, **(reward_weights or {})},
        "net_arch": list(net_arch),
        "ppo_kwargs": kwargs,
        "wall_s": round(wall_s, 1),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "sb3_contrib": sb3_contrib.__version__,
        },
        "command": shlex.join(cmd),
    }


def _shown(path: str | Path) -> str:
    """``path`` relative to the working folder when inside it (a command others can run)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _tqdm_callback(total: int):
    """A tqdm progress bar callback (SB3's own bar needs rich as well as tqdm). SB3 is
    imported here, not at the top: the module's helpers must not pull in torch."""
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    class TqdmCallback(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, unit="step", desc="MaskablePPO")

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return TqdmCallback()
