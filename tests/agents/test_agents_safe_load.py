"""Saved policies load from data only (JSON, tensors-only weights), never from a pickle.

A crafted pickle (a payload whose ``__reduce__`` opens a marker file) is refused through
every door a policy comes in by (the ``file`` loader, ``resolve_policy``, a scenario's
``operations.policy``) and the marker is never created. The shipped policy, converted
from its old SB3 zip, decides exactly as the zip did (decisions recorded with the old
loader before the conversion, tests/agents/data/ppo_global_3site_decisions.json), and a
freshly trained model decides the same through SB3's loader and through ours.
"""

import base64
import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envs  # noqa: F401 - registers the ids
from agents import policy_format as PF
from agents.convert_policy import convert_zip
from agents.learned import LearnedPolicy, load_policy
from agents.sb3_train import DEFAULT_START, train_ppo
from agents.scorer import SCORER_FEATURES, ScorerPolicy, load_scorer, save_scorer
from twin.errors import ConfigError
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "global-3site.yaml"
SHIPPED = ROOT / "agents" / "trained" / "ppo-global-3site"
DECISIONS = Path(__file__).parent / "data" / "ppo_global_3site_decisions.json"
TINY = {"n_steps": 64, "batch_size": 32, "n_epochs": 1}


class Payload:
    """Unpickling this opens (creates) ``marker``: what a hostile policy file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def sb3_like_zip(path: Path, marker: Path) -> Path:
    """A zip laid out like SB3's model.zip whose members are the payload."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps({"policy_class": {":serialized:": base64.b64encode(
            pickle.dumps(Payload(marker))).decode()}}))  # fmt: skip
        z.writestr("policy.pth", pickle.dumps(Payload(marker)))
        z.writestr("_stable_baselines3_version", "2.9.2")
    return path


def forged_policy_dir(path: Path, marker: Path) -> Path:
    """A policy folder whose manifest is valid and whose policy.pt is a torch.save of the
    payload, with its true SHA-256 in the manifest (an attacker controls both files)."""
    path.mkdir()
    torch.save({"w": Payload(marker)}, path / PF.WEIGHTS)
    _write_manifest(path, _section(path / PF.WEIGHTS))
    return path


def _section(weights_file: Path, **changes) -> dict:
    space = PF.observation_space(3, 3, 8)
    section = {"class": PF.POLICY_CLASS, "weights": weights_file.name,
               "weights_sha256": hashlib.sha256(weights_file.read_bytes()).hexdigest(),
               "n_telescopes": 3, "n_sites": 3, "n_candidates": 8,
               "observation_space": PF.space_shapes(space), "action_space": {"n": 9},
               "policy_kwargs": {"net_arch": [64, 64]}}  # fmt: skip
    return {**section, **changes}


def _write_manifest(folder: Path, section: dict, fmt: str = PF.FORMAT) -> Path:
    path = folder / PF.MANIFEST
    path.write_text(json.dumps({"format": fmt, "policy": section}))
    return path


def hostile_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """Every shape of pickled policy: SB3's zip, a raw pickle, a folder holding the zip,
    a valid manifest over pickled weights, a torch.save file given directly."""
    raw = tmp_path / "policy.pkl"
    raw.write_bytes(pickle.dumps(Payload(marker)))
    holder = tmp_path / "holder"
    holder.mkdir()
    sb3_like_zip(holder / "model.zip", marker)
    forged = forged_policy_dir(tmp_path / "forged", marker)
    return {"sb3 zip": sb3_like_zip(tmp_path / "model.zip", marker), "pickle": raw,
            "folder with model.zip": holder, "forged manifest": forged,
            "forged manifest.json": forged / PF.MANIFEST,
            "torch pickle": forged / PF.WEIGHTS}  # fmt: skip


def test_the_payload_is_live_when_unpickled(tmp_path):
    """The control: the payload does create the marker when unpickled (so the tests below
    that it does not are not vacuous)."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("door", ["file loader", "resolve_policy", "LearnedPolicy"])
def test_pickled_policies_are_refused_and_never_run(tmp_path, door):
    marker = tmp_path / "pwned"
    load = {"file loader": load_policy, "resolve_policy": lambda p: resolve_policy(str(p)),
            "LearnedPolicy": LearnedPolicy}[door]  # fmt: skip
    for kind, path in hostile_files(tmp_path, marker).items():
        with pytest.raises(ConfigError) as err:
            load(path)
        assert err.value.field in ("policy", "format"), kind
        assert not marker.exists(), f"{kind} through {door} ran the payload"
    assert marker.parent.is_dir() and not marker.exists()


def test_a_zip_says_it_is_not_trusted_and_how_to_convert(tmp_path):
    marker = tmp_path / "pwned"
    path = sb3_like_zip(tmp_path / "model.zip", marker)
    for given in (path, tmp_path):
        with pytest.raises(ConfigError, match=r"not a trusted format.*agents\.convert_policy"):
            resolve_policy(str(given))
    with pytest.raises(ConfigError, match=r"allowed: a built-in policy .*greedy"):
        resolve_policy(str(path))
    assert not marker.exists()


def test_a_scenario_naming_a_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = sb3_like_zip(tmp_path / "model.zip", marker)
    raw = yaml.safe_load(SCENARIO.read_text())
    raw["operations"]["policy"] = str(evil)
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(raw))
    scenario = load_scenario(path, start=DEFAULT_START, nights=1)
    with pytest.raises(ConfigError) as err:
        resolve_policy(scenario.operations.policy)
    assert (err.value.source, err.value.field) == (str(evil), "policy")
    with pytest.raises(ConfigError, match="not a trusted format"):
        run_scenario(scenario, tmp_path / "run", progress=False, plots=False)
    assert not marker.exists()


def test_forged_weights_are_refused_by_the_tensors_only_reader(tmp_path):
    marker = tmp_path / "pwned"
    forged = forged_policy_dir(tmp_path / "forged", marker)
    with pytest.raises(ConfigError, match="not a tensors-only weights file"):
        LearnedPolicy(forged)
    assert not marker.exists()


def _cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Paths that are no policy, and a fragment of the problem each must report."""
    empty = tmp_path / "empty"
    empty.mkdir()
    text = tmp_path / "notes.txt"
    text.write_text("SECRET-" + "x" * 300 + "-TAIL\n")
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    other_json = tmp_path / "other.json"
    other_json.write_text(json.dumps({"format": "something-else", "weights": [1, 2]}))
    array_json = tmp_path / "array.json"
    array_json.write_text("[1, 2, 3]")
    old_run = tmp_path / "old-run"  # a training folder from before the safe format
    old_run.mkdir()
    (old_run / "manifest.json").write_text(json.dumps({"algo": "MaskablePPO"}))
    (old_run / "model.zip").write_bytes(b"PK\x03\x04not really")
    return {"empty folder": (empty, "a folder without a saved policy"),
            "text file": (text, "a text file starting"),
            "binary file": (binary, "a binary file"),
            "other json": (other_json, "not a saved policy"),
            "json array": (array_json, "expected a JSON object"),
            "old run": (old_run, "convert_policy")}  # fmt: skip


def test_paths_that_are_no_policy_are_config_errors(tmp_path):
    for kind, (path, fragment) in _cases(tmp_path).items():
        with pytest.raises(ConfigError) as err:
            resolve_policy(str(path))
        message = str(err.value)
        assert fragment in message, (kind, message)
        assert err.value.source.startswith(str(path)), kind
        assert "TAIL" not in message and "x" * 81 not in message, kind
        assert message.isprintable(), kind


def test_errors_list_what_is_allowed(tmp_path):
    for path, _ in _cases(tmp_path).values():
        with pytest.raises(ConfigError) as err:
            load_policy(path)
        if err.value.field == "policy":
            assert "greedy" in str(err.value) or "skytwin train" in str(err.value)
    with pytest.raises(ConfigError, match=r"no file or folder .*allowed: .*greedy"):
        resolve_policy("runs/missing/manifest.json")
    with pytest.raises(ConfigError, match=r"unknown policy 'x{10,}\.\.\.; allowed"):
        resolve_policy("x" * 5000)


def test_an_unreadable_file_is_a_config_error(tmp_path, monkeypatch):
    path = tmp_path / "manifest.json"
    path.write_text("{}")

    def refusing(method):
        def call(self, *args, **kwargs):
            if self == path:  # only this file: entry points are read through Path too
                raise PermissionError(13, "Permission denied")
            return method(self, *args, **kwargs)

        return call

    monkeypatch.setattr(Path, "open", refusing(Path.open))
    monkeypatch.setattr(Path, "read_bytes", refusing(Path.read_bytes))
    for load in (load_policy, lambda p: resolve_policy(str(p))):
        with pytest.raises(ConfigError, match="Permission denied"):
            load(path)


BAD_SECTIONS = [
    ({"class": "os.system"}, "policy.class"),
    ({"weights": "../elsewhere.pt"}, "policy.weights"),
    ({"weights_sha256": None}, "policy.weights_sha256"),
    ({"n_candidates": 0}, "policy.n_candidates"),
    ({"n_sites": True}, "policy.n_sites"),
    ({"observation_space": {"time": [4]}}, "policy.observation_space"),
    ({"action_space": {"n": 3}}, "policy.action_space"),
    (
        {"policy_kwargs": {"features_extractor_class": "os.system"}},
        "policy.policy_kwargs.features_extractor_class",
    ),
    (
        {"policy_kwargs": {"activation_fn": "torch.nn.Identity"}},
        "policy.policy_kwargs.activation_fn",
    ),
    ({"policy_kwargs": {"net_arch": [64, "x"]}}, "policy.policy_kwargs.net_arch"),
    ({"policy_kwargs": {"ortho_init": "yes"}}, "policy.policy_kwargs.ortho_init"),
]


@pytest.mark.parametrize(("change", "field"), BAD_SECTIONS)
def test_bad_manifests_name_the_field(tmp_path, change, field):
    folder = tmp_path / "p"
    folder.mkdir()
    shutil_copy(SHIPPED / PF.WEIGHTS, folder / PF.WEIGHTS)
    manifest = _write_manifest(folder, _section(folder / PF.WEIGHTS, **change))
    with pytest.raises(ConfigError) as err:
        LearnedPolicy(folder)
    assert (err.value.source, err.value.field) == (str(manifest), field)


def test_weights_must_match_the_manifest(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    shutil_copy(SHIPPED / PF.WEIGHTS, folder / PF.WEIGHTS)
    _write_manifest(folder, _section(folder / PF.WEIGHTS, weights_sha256="0" * 64))
    with pytest.raises(ConfigError, match="weights_sha256"):
        LearnedPolicy(folder)
    _write_manifest(folder, _section(folder / PF.WEIGHTS, policy_kwargs={"net_arch": [32]}))
    with pytest.raises(ConfigError, match="do not fit the network"):
        LearnedPolicy(folder)
    _write_manifest(folder, _section(folder / PF.WEIGHTS), fmt="skytwin-policy-v0")
    with pytest.raises(ConfigError, match="must be 'skytwin-policy-v1'"):
        LearnedPolicy(folder)
    torch.save({"w": torch.zeros(2)}, folder / PF.WEIGHTS)
    _write_manifest(folder, _section(folder / PF.WEIGHTS))
    with pytest.raises(ConfigError, match="do not fit the network"):
        LearnedPolicy(folder)


def shutil_copy(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())


def _scorer_record(**changes) -> dict:
    record = {"format": "skytwin-scorer-v1",
              "weights": dict.fromkeys(SCORER_FEATURES, 0.5)}  # fmt: skip
    return {**record, **changes}


BAD_SCORERS = [
    (_scorer_record(format="v0"), "format"),
    ({"format": "skytwin-scorer-v1"}, "format"),
    (
        _scorer_record(weights={**dict.fromkeys(SCORER_FEATURES, 0.5), "log_quality": "big"}),
        "weights.log_quality",
    ),
    (
        _scorer_record(weights={**dict.fromkeys(SCORER_FEATURES, 0.5), "hour_angle": True}),
        "weights.hour_angle",
    ),
    (_scorer_record(weights=dict.fromkeys(SCORER_FEATURES[:5], 0.5)), "weights"),
    (_scorer_record(weights={**dict.fromkeys(SCORER_FEATURES, 0.5), "extra": 1.0}), "weights"),
    (_scorer_record(weights=[0.1] * 3), "weights"),
    (_scorer_record(weights=[0.1] * 12 + [None]), "weights[12]"),
    (_scorer_record(weights="0.1"), "weights"),
    (_scorer_record(alert_guard="yes"), "alert_guard"),
]


@pytest.mark.parametrize(("record", "field"), BAD_SCORERS)
def test_bad_scorer_files_name_the_file_and_field(tmp_path, record, field):
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps(record))
    for load in (load_scorer, load_policy, lambda p: resolve_policy(str(p))):
        with pytest.raises(ConfigError) as err:
            load(path)
        assert (err.value.source, err.value.field) == (str(path), field)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_scorer_weights_are_refused(tmp_path, value):
    text = json.dumps(_scorer_record()).replace('"log_quality": 0.5', f'"log_quality": {value}')
    path = tmp_path / "scorer.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_scorer(path)
    assert err.value.source == str(path)
    assert err.value.field in ("policy", "weights.log_quality")
    with pytest.raises(ValueError, match="finite"):
        save_scorer(tmp_path / "s2" / "scorer.json", np.full(len(SCORER_FEATURES), np.nan))


def test_a_valid_scorer_list_or_mapping_loads(tmp_path):
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps(_scorer_record(weights=[0.25] * len(SCORER_FEATURES),
                                              alert_guard=True)))  # fmt: skip
    policy = resolve_policy(str(path))
    assert isinstance(policy, ScorerPolicy) and policy.alert_guard
    np.testing.assert_array_equal(policy.weights, 0.25)


# -- the same decisions ----------------------------------------------------------------


def test_observation_space_is_the_envs():
    env = gym.make("skytwin/Network-v0", start=DEFAULT_START, n_candidates=8)
    assert PF.observation_space(3, 3, 8) == env.observation_space
    assert PF.network_size(env.observation_space) == (3, 3, 8)


def test_shipped_policy_decides_as_the_old_zip_did():
    """2100 decisions recorded with ``MaskablePPO.load(model.zip)`` before the conversion."""
    record = json.loads(DECISIONS.read_text())
    manifest = json.loads((SHIPPED / PF.MANIFEST).read_text())
    assert manifest["converted_from"]["sha256"] == record["model_zip_sha256"]
    assert not (SHIPPED / "model.zip").exists()
    policy = resolve_policy(str(SHIPPED))
    assert isinstance(policy, LearnedPolicy) and policy.name == "ppo:ppo-global-3site"
    observations = decode_observations(record["observations"])
    assert [policy.predict(o) for o in observations] == record["rollout_actions"]
    synthetic = synthetic_observations(observations, record["synthetic_count"],
                                       record["synthetic_seed"])  # fmt: skip
    assert [policy.predict(o) for o in synthetic] == record["synthetic_actions"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A tiny model trained now: SB3's zip and the safe folder, side by side."""
    out = tmp_path_factory.mktemp("fresh")
    return train_ppo(SCENARIO, 128, 4, out, start=DEFAULT_START, n_candidates=8,
                     ppo_kwargs=TINY, checkpoint_every=10_000, progress=False)  # fmt: skip


def _rollout_observations(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    env = gym.make("skytwin/Network-v0", start=DEFAULT_START, n_candidates=8)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append(obs)
        mask = np.flatnonzero(obs["action_mask"])
        obs, _, terminated, truncated, _ = env.step(int(rng.choice(mask)))
        if terminated or truncated:
            obs, _ = env.reset()
    return out


def test_sb3_loader_and_ours_decide_alike(fresh):
    """The old path (``MaskablePPO.load``; our own file, so safe to unpickle here) and the
    new one give the same action on env observations and perturbations of them."""
    from sb3_contrib import MaskablePPO

    old = MaskablePPO.load(fresh.model_path, device="cpu")
    new = LearnedPolicy(fresh.policy_dir)
    base = _rollout_observations(60, seed=5)
    observations = base + synthetic_observations(base, 1000, seed=3)
    old_actions = [int(old.predict(o, action_masks=o["action_mask"].astype(bool),
                                   deterministic=True)[0]) for o in observations]  # fmt: skip
    assert [new.predict(o) for o in observations] == old_actions
    assert len(set(old_actions)) > 1  # the comparison sees more than one choice
    old_state, new_state = old.policy.state_dict(), new.policy.state_dict()
    assert old_state.keys() == new_state.keys()
    assert all(torch.equal(old_state[k], new_state[k]) for k in old_state)


def test_converting_a_trusted_zip_gives_the_same_policy(fresh, tmp_path):
    path = convert_zip(fresh.model_path, tmp_path / "converted")
    manifest = json.loads(path.read_text())
    assert manifest["format"] == PF.FORMAT and manifest["seed"] == 4  # training info kept
    assert manifest["converted_from"]["file"] == "model.zip"
    a, b = LearnedPolicy(fresh.policy_dir), LearnedPolicy(path.parent)
    observations = _rollout_observations(30, seed=9)
    assert [a.predict(o) for o in observations] == [b.predict(o) for o in observations]


OBS_KEYS = ("time", "site", "forecast", "network", "telescope", "candidates", "action_mask")


def encode_observations(observations: list[dict[str, np.ndarray]]) -> dict[str, dict]:
    """Stacked observations as base64 (features float16, the mask int8): JSON, no pickle."""
    out = {}
    for key in OBS_KEYS:
        stacked = np.stack([o[key] for o in observations])
        dtype = np.int8 if key == "action_mask" else np.float16
        raw = base64.b64encode(stacked.astype(dtype).tobytes()).decode()
        out[key] = {"shape": list(stacked.shape), "dtype": np.dtype(dtype).name, "base64": raw}
    return out


def decode_observations(blob: dict[str, dict]) -> list[dict[str, np.ndarray]]:
    """The inverse of :func:`encode_observations`, features as float32."""
    arrays = {}
    for key, item in blob.items():
        raw = np.frombuffer(base64.b64decode(item["base64"]), dtype=item["dtype"])
        arrays[key] = raw.reshape(item["shape"]).astype(np.int8 if key == "action_mask"
                                                        else np.float32)  # fmt: skip
    n = len(arrays["time"])
    return [{key: arrays[key][i] for key in OBS_KEYS} for i in range(n)]


def synthetic_observations(base: list[dict[str, np.ndarray]], count: int, seed: int
                           ) -> list[dict[str, np.ndarray]]:  # fmt: skip
    """``count`` perturbations of the ``base`` observations: features plus N(0, 0.3) noise,
    a random action mask with at least one valid action. RandomState: its stream is fixed
    across NumPy versions, so the recorded decisions stay valid."""
    rs = np.random.RandomState(seed)
    out = []
    for i in range(count):
        obs = {}
        for key in OBS_KEYS:
            value = base[i % len(base)][key]
            if key == "action_mask":
                mask = (rs.random_sample(value.shape) < 0.6).astype(np.int8)
                mask[rs.randint(value.size)] = 1
                obs[key] = mask
            else:
                noise = rs.normal(0.0, 0.3, value.shape)
                obs[key] = np.clip(value + noise, -100.0, 100.0).astype(np.float32)
        out.append(obs)
    return out
