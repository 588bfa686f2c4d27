"""The saved form of a trained MaskablePPO policy: plain JSON plus a tensors-only file.

Stable-Baselines3 saves a model as ``model.zip``, whose ``data`` and ``*.pth`` members are
pickles: loading one can run any code its author put in it. A policy the twin loads
(``skytwin run --policy``, a scenario's ``operations.policy``) is instead a folder:

| file          | content                                                           |
|---------------|-------------------------------------------------------------------|
| manifest.json | ``format`` (:data:`FORMAT`), the ``policy`` section below, and    |
|               | how it was trained (scenario, steps, seed, the ``command``...)     |
| policy.pt     | the policy network's ``state_dict``, read with                     |
|               | ``torch.load(..., weights_only=True)`` (tensors only, no code)     |

The ``policy`` section holds everything needed to rebuild the network:

| key               | meaning                                                        |
|-------------------|----------------------------------------------------------------|
| class             | :data:`POLICY_CLASS`, or :data:`RLLIB_CLASS` for an RLlib      |
|                   | module (``model_config`` instead of ``policy_kwargs``)         |
| weights           | the weights file's name in the folder (``policy.pt``)          |
| weights_sha256    | its SHA-256: weights and manifest belong together              |
| n_telescopes      | the network it schedules (the observation's sizes follow)      |
| n_sites           |                                                                |
| n_candidates      | candidates offered per decision (actions: ``n_candidates + 1``)|
| observation_space | shape of each observation key, checked against the env's       |
| measured          | optional, true: trained with a pipeline (the ``measured`` key) |
| action_space      | ``{"n": n_candidates + 1}``                                    |
| policy_kwargs     | the network: ``net_arch`` etc., plain JSON (:data:`KWARGS`)    |

The loader rebuilds the observation space from the counts with the env's feature lists
(:mod:`envs.features`), builds SB3's policy from it and ``policy_kwargs``, and loads the
weights strictly (every tensor, each of the right shape).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from agents.safe_files import CONVERT_HINT, SB3_ZIP, excerpt, file_kind, read_json
from envs import features as F
from twin.errors import ConfigError

FORMAT = "skytwin-policy-v1"
"""``format`` field of a saved policy's manifest.json."""
MANIFEST = "manifest.json"
WEIGHTS = "policy.pt"
POLICY_CLASS = "sb3_contrib.common.maskable.policies.MaskableMultiInputActorCriticPolicy"
RLLIB_CLASS = "agents.rllib_train.MaskedPPOTorchRLModule"
"""``policy.class`` of an RLlib module exported by :mod:`agents.rllib_policy`."""
ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU",
               "gelu": "GELU", "silu": "SiLU"}  # fmt: skip
"""``activation_fn`` names allowed in ``policy_kwargs``, and their torch.nn classes."""
KWARGS = ("net_arch", "activation_fn", "ortho_init", "share_features_extractor",
          "normalize_images")  # fmt: skip
"""Keys allowed in ``policy_kwargs``: the ones expressible in JSON."""


def observation_space(n_telescopes: int, n_sites: int, n_candidates: int,
                      measured: bool = False):  # fmt: skip
    """The ``skytwin/Network-v0`` observation space of a network of this size (the env's
    own definition, so a manifest is checked against what the env gives); ``measured``:
    with the pipeline's per-telescope measurements."""
    from envs.network_env import observation_space as env_space

    return env_space(n_telescopes, n_sites, n_candidates, measured)


def space_shapes(space) -> dict[str, list[int]]:
    """Each key's shape, as JSON."""
    return {key: list(sub.shape) for key, sub in space.spaces.items()}


def network_size(space) -> tuple[int, int, int]:
    """(telescopes, sites, candidates) of a Network-v0 observation space."""
    n_tel = int(space["telescope"].shape[0]) - 2
    n_sites = int(space["network"].shape[0]) // len(F.NETWORK_FEATURES)
    return n_tel, n_sites, int(space["candidates"].shape[0])


# -- saving ----------------------------------------------------------------------------


def export_model(model, out_dir: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """Save a MaskablePPO ``model``'s policy in ``out_dir`` (manifest.json + policy.pt),
    with ``manifest`` (how it was trained) kept in manifest.json. Returns the manifest's
    path. Refuses a model whose observation space is not the env's, or whose
    ``policy_kwargs`` JSON cannot express."""
    n_tel, n_sites, k = network_size(model.observation_space)
    measured = "measured" in model.observation_space.spaces
    expected = space_shapes(observation_space(n_tel, n_sites, k, measured))
    if space_shapes(model.observation_space) != expected:
        raise ValueError(f"the model's observation space {space_shapes(model.observation_space)}"
                         f" is not skytwin/Network-v0's {expected}")  # fmt: skip
    return save_policy(model.policy, out_dir, n_tel, n_sites, k,
                       kwargs_to_json(model.policy_kwargs), manifest, measured)  # fmt: skip


def save_policy(policy, out_dir: str | Path, n_telescopes: int, n_sites: int,
                n_candidates: int, policy_kwargs: dict[str, Any],
                manifest: dict[str, Any] | None = None,
                measured: bool = False) -> Path:  # fmt: skip
    """Write ``policy``'s weights (policy.pt) and manifest.json in ``out_dir``, with the
    ``manifest`` fields (how it was trained) kept beside the ``policy`` section.
    ``measured``: trained with a pipeline, its observation has the ``measured`` key."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS
    torch.save({k: v.detach().cpu() for k, v in policy.state_dict().items()}, weights)
    space = observation_space(n_telescopes, n_sites, n_candidates, measured)
    section = {
        "class": POLICY_CLASS,
        "weights": WEIGHTS,
        "weights_sha256": file_sha256(weights),
        "n_telescopes": n_telescopes,
        "n_sites": n_sites,
        "n_candidates": n_candidates,
        "observation_space": space_shapes(space),
        **({"measured": True} if measured else {}),
        "action_space": {"n": n_candidates + 1},
        "policy_kwargs": policy_kwargs,
    }
    info = {k: v for k, v in (manifest or {}).items() if k not in ("format", "policy")}
    record = {"format": FORMAT, **info, "policy": section}
    path = out / MANIFEST
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def kwargs_to_json(policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` as JSON (an activation class by its name)."""
    import torch.nn as nn

    names = {getattr(nn, cls): name for name, cls in ACTIVATIONS.items()}
    out: dict[str, Any] = {}
    for key, value in (policy_kwargs or {}).items():
        if key not in KWARGS:
            raise ValueError(f"policy_kwargs {key!r} cannot be saved as JSON; allowed: "
                             f"{', '.join(KWARGS)}")  # fmt: skip
        if key == "activation_fn":
            if value not in names:
                raise ValueError(f"activation_fn {value!r}: allowed {', '.join(ACTIVATIONS)}")
            value = names[value]
        out[key] = value
    return json.loads(json.dumps(out))  # tuples to lists; fails on anything not JSON


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- loading ---------------------------------------------------------------------------


def read_manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(manifest path, its validated ``policy`` section) of a saved policy: its folder or
    its manifest.json. Anything else raises ConfigError(path, "policy", ...)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(str(path), "policy", "no such file or folder; train a policy with "
                          "`skytwin train`")  # fmt: skip
    manifest = path / MANIFEST if path.is_dir() else path
    source = str(manifest)
    if not manifest.is_file():
        zipped = manifest.parent / "model.zip"
        hint = (f"it holds {SB3_ZIP}; {CONVERT_HINT.replace('FILE', str(zipped))}"
                if zipped.is_file() else "train one with `skytwin train`")  # fmt: skip
        raise ConfigError(str(path), "policy", f"no {MANIFEST} in the folder, so no saved "
                          f"policy; {hint}")  # fmt: skip
    record = read_json(manifest, "policy manifest")
    if record.get("format") != FORMAT:
        zipped = manifest.parent / "model.zip"
        hint = (f"; the folder holds {SB3_ZIP}; {CONVERT_HINT.replace('FILE', str(zipped))}"
                if zipped.is_file() else "")  # fmt: skip
        got = excerpt(str(record.get("format"))) if "format" in record else "none"
        raise ConfigError(source, "format", f"must be {FORMAT!r}, got {got}{hint}")
    section = record.get("policy")
    if not isinstance(section, dict):
        raise ConfigError(source, "policy", "missing: the section that describes the network")
    _check_section(section, source)
    return manifest, section


def _check_section(section: dict[str, Any], source: str) -> None:
    from agents.rllib_policy import check_model_config

    if section.get("class") not in (POLICY_CLASS, RLLIB_CLASS):
        raise ConfigError(source, "policy.class", f"must be {POLICY_CLASS!r} or "
                          f"{RLLIB_CLASS!r}, got {excerpt(str(section.get('class')))}")  # fmt: skip
    name = section.get("weights")
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".pt"):
        raise ConfigError(source, "policy.weights", "must be the name of a .pt file in the "
                          f"manifest's folder, got {excerpt(str(name))}")  # fmt: skip
    digest = section.get("weights_sha256")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(source, "policy.weights_sha256", "must be the weights file's "
                          f"SHA-256 (64 hex digits), got {excerpt(str(digest))}")  # fmt: skip
    for key in ("n_telescopes", "n_sites", "n_candidates"):
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
            raise ConfigError(source, f"policy.{key}", f"must be a whole number from 1 to "
                              f"10000, got {excerpt(str(value))}")  # fmt: skip
    if not isinstance(section.get("measured", False), bool):
        raise ConfigError(source, "policy.measured", "must be true or false, got "
                          f"{excerpt(str(section.get('measured')))}")  # fmt: skip
    space = observation_space(section["n_telescopes"], section["n_sites"],
                              section["n_candidates"], section.get("measured", False))  # fmt: skip
    if section.get("observation_space") != space_shapes(space):
        raise ConfigError(source, "policy.observation_space", "differs from skytwin/Network-v0"
                          f"'s for this network ({space_shapes(space)}): the env's features "
                          "changed since training; retrain with `skytwin train`")  # fmt: skip
    if section.get("action_space") != {"n": section["n_candidates"] + 1}:
        raise ConfigError(source, "policy.action_space",
                          f"must be {{'n': {section['n_candidates'] + 1}}}")  # fmt: skip
    if section["class"] == RLLIB_CLASS:
        check_model_config(section.get("model_config"), source)
        return
    kwargs = section.get("policy_kwargs", {})
    if not isinstance(kwargs, dict):
        raise ConfigError(source, "policy.policy_kwargs", "must be a JSON object")
    kwargs_from_json(kwargs, source)


def kwargs_from_json(kwargs: dict[str, Any], source: str) -> dict[str, Any]:
    """Validated SB3 ``policy_kwargs`` from their JSON form."""
    import torch.nn as nn

    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        field = f"policy.policy_kwargs.{key if key.isidentifier() else excerpt(key)}"
        if key not in KWARGS:
            raise ConfigError(source, field, f"unknown; allowed: {', '.join(KWARGS)}")
        if key == "net_arch":
            out[key] = _net_arch(value, source, field)
        elif key == "activation_fn":
            if not isinstance(value, str) or value not in ACTIVATIONS:
                raise ConfigError(source, field, f"got {excerpt(str(value))}; allowed: "
                                  f"{', '.join(ACTIVATIONS)}")  # fmt: skip
            out[key] = getattr(nn, ACTIVATIONS[value])
        elif not isinstance(value, bool):
            raise ConfigError(source, field, f"must be true or false, got {excerpt(str(value))}")
        else:
            out[key] = value
    return out


def _net_arch(value: Any, source: str, field: str) -> list[int] | dict[str, list[int]]:
    def layers(v: Any) -> list[int]:
        if not isinstance(v, list) or not all(type(n) is int and 1 <= n <= 65_536 for n in v):
            raise ConfigError(source, field, "must be a list of layer sizes (whole numbers "
                              "from 1 to 65536) or {'pi': [...], 'vf': [...]}")  # fmt: skip
        return v

    if isinstance(value, dict):
        if set(value) != {"pi", "vf"}:
            raise ConfigError(source, field, "a mapping must have exactly 'pi' and 'vf'")
        return {k: layers(v) for k, v in value.items()}
    return layers(value)


def build_policy(manifest: Path, section: dict[str, Any], device: str = "cpu"):
    """SB3's policy network (or an exported RLlib module, :mod:`agents.rllib_policy`)
    rebuilt from a :func:`read_manifest` result, with its weights
    read by ``torch.load(weights_only=True)``: nothing from the files is executed."""
    import torch
    from gymnasium import spaces
    from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy

    from agents.rllib_policy import build_module

    if section["class"] == RLLIB_CLASS:
        return build_module(manifest, section, device)
    source = str(manifest.parent / section["weights"])
    state = load_weights(Path(source), section["weights_sha256"], device)
    k = section["n_candidates"]
    policy = MaskableMultiInputActorCriticPolicy(
        observation_space(
            section["n_telescopes"], section["n_sites"], k, section.get("measured", False)
        ),
        spaces.Discrete(k + 1),
        lambda _: 0.0,  # no training here: the optimizer is never stepped
        **kwargs_from_json(section.get("policy_kwargs", {}), str(manifest)),
    )
    load_strict(policy, state, source)
    policy.set_training_mode(False)
    return policy.to(torch.device(device))


def load_strict(network, state: dict[str, Any], source: str) -> None:
    """Load ``state`` into ``network``, every tensor present and of the right shape, or a
    ConfigError(source, "policy", ...) saying what does not fit."""
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or [str(err)]
        raise ConfigError(source, "policy", "weights do not fit the network the manifest "
                          f"describes ({excerpt(first[0].strip())})") from None  # fmt: skip


def load_weights(path: Path, sha256: str, device: str = "cpu") -> dict[str, Any]:
    """A ``state_dict`` (names to tensors) from ``path``, tensors only, if its SHA-256 is
    ``sha256``."""
    import pickle

    import torch

    source = str(path)
    try:
        kind = file_kind(path)
        if kind != "torch-zip":
            raise ConfigError(source, "policy", f"weights must be a torch.save file, got a "
                              f"{kind} file")  # fmt: skip
        if file_sha256(path) != sha256:
            raise ConfigError(source, "policy", "weights differ from the ones the manifest "
                              "names (weights_sha256): re-export the policy")  # fmt: skip
        state = torch.load(path, map_location=device, weights_only=True)
    except OSError as err:
        raise ConfigError(source, "policy", f"cannot read it ({err.strerror or err})") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError) as err:
        # weights_only=True refuses anything but tensors and plain containers: a crafted
        # file ends here without having run anything.
        problem = excerpt(str(err).splitlines()[0]) if str(err) else type(err).__name__
        raise ConfigError(source, "policy", f"not a tensors-only weights file ({problem})"
                          ) from None  # fmt: skip
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ConfigError(source, "policy", "weights must map names to tensors")
    return state
