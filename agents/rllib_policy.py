"""The shared RLlib module of :mod:`agents.rllib_train` as a policy the twin can load.

An RLlib checkpoint is a folder of pickles (the algorithm's state, the module's constructor
arguments): loading one can run code, so the twin never loads one. Instead
:func:`export_policy` writes the trained module in the same safe folder format as the
MaskablePPO policies (:mod:`agents.policy_format`: manifest.json with the network's
description, and a tensors-only policy.pt), with the ``policy.class``
:data:`~agents.policy_format.RLLIB_CLASS` and RLlib's ``model_config`` (layer sizes and
activations, plain JSON) instead of SB3's ``policy_kwargs``. :func:`build_module` rebuilds
the module from that description and loads the weights with
``torch.load(weights_only=True)``.

In the twin each telescope runs the one shared module on its own observation, built
from the Conditions by the env's own code (:func:`envs.features.observation`) and
flattened as :class:`envs.rllib_env.NetworkMultiAgentEnv` flattens it for training:
:class:`agents.learned.LearnedPolicy` replays both kinds of saved policy.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from agents import policy_format as PF
from agents.safe_files import excerpt
from agents.sb3_train import _shown
from twin.errors import ConfigError

ACTIVATIONS = ("tanh", "relu", "linear", "silu", "swish", "elu")
"""Activation names allowed in ``model_config`` (RLlib's ``DefaultModelConfig`` names)."""
MODEL_KEYS = ("fcnet_hiddens", "fcnet_activation", "head_fcnet_hiddens",
              "head_fcnet_activation", "vf_share_layers")  # fmt: skip
"""Keys allowed in ``policy.model_config``: the ones the module's shape depends on."""


def export_policy(checkpoint: str | Path, out_dir: str | Path, command: str | None = None,
                  **manifest: Any) -> Path:  # fmt: skip
    """Write the shared module of a :func:`~agents.rllib_train.train_rllib` checkpoint as
    a policy folder (manifest.json + policy.pt) in ``out_dir``; returns the folder.

    The training record (scenario, env config, PPO settings, steps reached, wall time)
    comes from the run's ``metrics.json`` beside the checkpoint; ``command`` (how to
    retrain it) and ``manifest`` are added to it."""
    import ray
    import torch

    from agents.rllib_train import load_module
    from envs.rllib_env import NetworkMultiAgentEnv

    checkpoint = Path(checkpoint)
    metrics_path = checkpoint.resolve().parent / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path} not found: export the checkpoint of a "
                                "train_rllib run (metrics.json: how it trained)")  # fmt: skip
    metrics = json.loads(metrics_path.read_text())
    config = metrics.get("config", {})
    iterations = metrics.get("iterations", [])
    if "env_config" not in config:
        raise ValueError(f"{metrics_path}: no config.env_config, so the env the module "
                         "was trained on is unknown")  # fmt: skip
    env = NetworkMultiAgentEnv(config["env_config"])
    par = env.par_env
    n_tel, n_sites, k = len(par.possible_agents), len(par.scenario.sites), par.k
    measured = bool(par.stages)
    module = load_module(checkpoint)
    agent_space = env.observation_spaces[par.possible_agents[0]]
    if module.observation_space != agent_space:
        raise ValueError(f"{checkpoint}: the module's observation space is not the env's "
                         f"({module.observation_space} != {agent_space})")  # fmt: skip
    model_config = model_config_json(module.model_config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / PF.WEIGHTS
    torch.save({n: t.detach().cpu() for n, t in module.state_dict().items()}, weights)
    section = {
        "class": PF.RLLIB_CLASS,
        "weights": PF.WEIGHTS,
        "weights_sha256": PF.file_sha256(weights),
        "n_telescopes": n_tel,
        "n_sites": n_sites,
        "n_candidates": k,
        "observation_space": PF.space_shapes(PF.observation_space(n_tel, n_sites, k, measured)),
        **({"measured": True} if measured else {}),
        "action_space": {"n": k + 1},
        "model_config": model_config,
    }
    record = {
        "format": PF.FORMAT,
        "algo": "RLlib PPO, one shared module, one agent per telescope",
        "env": "envs.rllib_env.NetworkMultiAgentEnv",
        "scenario": _shown(config["scenario"]),
        **{key: config[key] for key in ("seed", "env_config", "ppo") if key in config},
        "steps": iterations[-1]["env_steps"] if iterations else None,
        "iterations": len(iterations),
        "wall_s": round(sum(row.get("time_s") or 0.0 for row in iterations), 1),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
        },
        **({"command": command} if command else {}),
        **manifest,
        "policy": section,
    }
    if "env_config" in record:
        scenario = _shown(record["env_config"]["scenario"])
        record["env_config"] = {**record["env_config"], "scenario": scenario}
    (out / PF.MANIFEST).write_text(json.dumps(record, indent=2) + "\n")
    return out


def model_config_json(config: Any) -> dict[str, Any]:
    """The network-defining part of a module's ``model_config`` as plain JSON, over
    RLlib's defaults (``DefaultModelConfig``): every key of :data:`MODEL_KEYS` is written,
    activations included, so a Ray release with other defaults rebuilds the same network."""
    from dataclasses import asdict

    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    if not isinstance(config, dict):
        config = dict(vars(config))
    config = {**asdict(DefaultModelConfig()), **config}
    return {key: (list(config[key]) if isinstance(config[key], list | tuple) else config[key])
            for key in MODEL_KEYS}  # fmt: skip


def check_model_config(config: Any, source: str) -> dict[str, Any]:
    """A validated ``policy.model_config`` (ConfigError naming the field otherwise)."""
    if not isinstance(config, dict):
        raise ConfigError(source, "policy.model_config", "must be a JSON object")
    for key, value in config.items():
        field = f"policy.model_config.{key if key.isidentifier() else excerpt(key)}"
        if key not in MODEL_KEYS:
            raise ConfigError(source, field, f"unknown; allowed: {', '.join(MODEL_KEYS)}")
        if key.endswith("hiddens"):
            if not isinstance(value, list) or not all(
                type(n) is int and 1 <= n <= 65_536 for n in value
            ):
                raise ConfigError(source, field, "must be a list of layer sizes (whole "
                                  "numbers from 1 to 65536)")  # fmt: skip
        elif key.endswith("activation"):
            if value not in ACTIVATIONS:
                raise ConfigError(source, field, f"got {excerpt(str(value))}; allowed: "
                                  f"{', '.join(ACTIVATIONS)}")  # fmt: skip
        elif not isinstance(value, bool):
            raise ConfigError(source, field, f"must be true or false, got {excerpt(str(value))}")
    return config


class RllibPredictor:
    """The rebuilt module behind :meth:`predict`, MaskablePPO's ``policy.predict``
    signature, so :class:`~agents.learned.LearnedPolicy` runs it as it runs SB3's."""

    def __init__(self, module, features_space) -> None:
        self.module = module
        self.device = next(module.parameters()).device  # where the inputs must go
        self.features_space = features_space

    def predict(self, obs: dict[str, np.ndarray], action_masks: np.ndarray,
                deterministic: bool = True) -> tuple[int, None]:  # fmt: skip
        """The action for one env observation: the masked logits' argmax
        (``deterministic``) or a draw from them."""
        import torch
        from ray.rllib.core.columns import Columns

        from envs.rllib_env import agent_observation

        flat = agent_observation(self.features_space, {**obs, "action_mask": action_masks})
        batch = {Columns.OBS: {key: torch.as_tensor(value, device=self.device)[None]
                               for key, value in flat.items()}}  # fmt: skip
        with torch.no_grad():
            logits = self.module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]
        if deterministic:
            return int(torch.argmax(logits)), None
        return int(torch.distributions.Categorical(logits=logits).sample()), None


def build_module(manifest: Path, section: dict[str, Any], device: str = "cpu") -> RllibPredictor:
    """The exported module rebuilt from a :func:`~agents.policy_format.read_manifest`
    result, weights read tensors-only and loaded strictly."""
    import torch
    from gymnasium import spaces

    from agents.rllib_train import MaskedPPOTorchRLModule, quiet_ray
    from envs.rllib_env import agent_spaces

    source = str(manifest.parent / section["weights"])
    state = PF.load_weights(Path(source), section["weights_sha256"], device)
    k = section["n_candidates"]
    inner = PF.observation_space(section["n_telescopes"], section["n_sites"], k,
                                 section.get("measured", False))  # fmt: skip
    features, agent_space = agent_spaces(inner, k + 1)
    quiet_ray()  # RLlib warns about its own internal RLModuleConfig on every construction
    module = MaskedPPOTorchRLModule(observation_space=agent_space,
                                    action_space=spaces.Discrete(k + 1), inference_only=False,
                                    model_config=dict(section["model_config"]))  # fmt: skip
    PF.load_strict(module, state, source)
    module.eval()
    return RllibPredictor(module.to(torch.device(device)), features)


def _versions(ray, torch) -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "ray": ray.__version__}  # fmt: skip
