"""MaskablePPO on skytwin/Network-v0: a tiny training run through ``skytwin train``, its
manifest, determinism, and the saved model scheduling the twin as a Policy."""

import json
import shlex
import sys
import types
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the ids
from agents.learned import LearnedPolicy
from agents.policy_format import FORMAT
from agents.sb3_train import DEFAULT_START, fixed_start, train_ppo
from twin.cli import build_parser, main
from twin.errors import ConfigError
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "global-3site.yaml"
TINY = {"n_steps": 128, "batch_size": 64, "n_epochs": 2}
TINY_ARGS = ["--ppo", "n_steps=128", "--ppo", "batch_size=64", "--ppo", "n_epochs=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ppo")
    argv = ["train", "--algo", "ppo", "--scenario", str(SCENARIO), "--steps", "256",
            "--seed", "3", "--out", str(out), "--quiet", "--start-spread-days", "30",
            *TINY_ARGS]  # fmt: skip
    assert main(argv) == 0
    return out


def test_training_writes_model_checkpoints_logs_and_manifest(trained):
    assert (trained / "policy.pt").stat().st_size < 1_000_000
    assert (trained / "model.zip").is_file()  # SB3's own, for --init-from
    assert sorted(p.name for p in (trained / "checkpoints").iterdir())
    assert (trained / "tb").is_dir()
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["steps"] == 256 and manifest["seed"] == 3
    assert manifest["start"] == DEFAULT_START  # global-3site says 'tonight'
    assert manifest["n_candidates"] == 16 and manifest["start_spread_days"] == 30
    assert set(manifest["reward_weights"]) == {"science", "alert", "idle", "slew"}
    assert manifest["format"] == FORMAT and manifest["policy"]["n_candidates"] == 16


def test_manifest_command_reproduces_the_arguments(trained):
    manifest = json.loads((trained / "manifest.json").read_text())
    args = build_parser().parse_args(shlex.split(manifest["command"])[1:])
    assert (args.algo, args.steps, args.seed, args.start) == ("ppo", 256, 3, DEFAULT_START)
    assert args.start_spread_days == 30
    assert Path(args.scenario).resolve() == SCENARIO and Path(args.out).resolve() == trained
    assert [tuple(p.split("=")) for p in args.ppo] == [(k, str(v)) for k, v in TINY.items()]


def test_same_seed_same_model(tmp_path):
    a = train_ppo(SCENARIO, 128, 5, tmp_path / "a", ppo_kwargs=TINY, progress=False)
    b = train_ppo(SCENARIO, 128, 5, tmp_path / "b", ppo_kwargs=TINY, progress=False)
    pa, pb = (LearnedPolicy(r.policy_dir).policy.state_dict() for r in (a, b))
    assert all(np.array_equal(pa[k].numpy(), pb[k].numpy()) for k in pa)


def test_an_unbound_policy_refuses_to_guess_the_network(trained):
    policy = LearnedPolicy(trained)
    env = gym.make("skytwin/Network-v0", start=DEFAULT_START)
    env.reset(seed=11)
    with pytest.raises(RuntimeError, match="bind"):
        policy.observation(env.unwrapped._decision.conditions)


def test_policy_sees_exactly_the_env_observation(trained):
    """Along an env rollout, the policy's observation (built from the Conditions) equals
    the env's, and its decision is the model's masked deterministic choice."""
    policy = LearnedPolicy(trained / "manifest.json")
    env = gym.make("skytwin/Network-v0", start=DEFAULT_START)
    obs, _ = env.reset(seed=11)
    base = env.unwrapped
    policy.bind(base.world)
    for _ in range(60):
        decision = base._decision
        mine = policy.observation(decision.conditions)
        assert all(np.array_equal(mine[k], obs[k]) for k in obs)
        action, _ = policy.policy.predict(obs, action_masks=base.action_masks(),
                                          deterministic=True)  # fmt: skip
        chosen = base._chosen
        expected = policy.decide(decision.conditions)
        if int(action) < chosen.size:
            assert expected.candidate == int(chosen[int(action)])
        else:
            assert expected.seconds == pytest.approx(300.0)
        obs, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            break


def test_learned_policy_runs_a_night_in_the_twin(trained, tmp_path):
    policy = resolve_policy(str(trained))  # the `file` entry point
    assert isinstance(policy, LearnedPolicy) and policy.name == f"ppo:{trained.name}"
    scenario = load_scenario(SCENARIO, start=DEFAULT_START, nights=1, seed=4)
    result = run_scenario(scenario, tmp_path / "run", policy, progress=False, plots=False)
    m = result.metrics
    assert m["run"]["policy"] == f"ppo:{trained.name}"
    assert m["network"]["exposures"] > 0
    assert m["run"]["invalid_actions"] == 0
    assert m["constraint_violations"]["count"] == 0


def test_skytwin_run_with_a_model_path(trained, tmp_path, capsys):
    argv = ["run", str(SCENARIO), "--start", DEFAULT_START, "--policy", str(trained),
            "--out", str(tmp_path / "run"), "--no-plots", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert f"policy ppo:{trained.name}" in capsys.readouterr().out


def test_model_refuses_another_network(trained, tmp_path):
    scenario = load_scenario(ROOT / "scenarios" / "single-site.yaml", start=DEFAULT_START)
    with pytest.raises(ConfigError, match=r"trained on a network of .*`skytwin train"):
        run_scenario(scenario, tmp_path, LearnedPolicy(trained), progress=False, plots=False)


def test_missing_model_says_how_to_get_one(tmp_path):
    with pytest.raises(ConfigError, match=r"no such file.*skytwin train"):
        LearnedPolicy(tmp_path / "nothing")
    with pytest.raises(ConfigError, match=r"no manifest\.json.*skytwin train"):
        LearnedPolicy(tmp_path)


def test_fixed_start(tmp_path):
    assert fixed_start(SCENARIO) == DEFAULT_START
    assert fixed_start(SCENARIO, "2027-01-02") == "2027-01-02"
    assert fixed_start(ROOT / "scenarios" / "india-chile.yaml") == "2027-04-07"


@pytest.mark.parametrize("every", [5, 0])  # 0: no checkpoints (was read as the default 10)
def test_rllib_algo_calls_train_rllib_lazily(monkeypatch, tmp_path, every):
    calls, exports = [], []
    fake = types.ModuleType("agents.rllib_train")
    run = types.SimpleNamespace(checkpoint=tmp_path / "checkpoint")
    fake.train_rllib = lambda *args, **kwargs: calls.append((args, kwargs)) or run
    exporter = types.ModuleType("agents.rllib_policy")
    exporter.export_policy = lambda *args, **kwargs: exports.append((args, kwargs)) or args[1]
    monkeypatch.setitem(sys.modules, "agents.rllib_train", fake)
    monkeypatch.setitem(sys.modules, "agents.rllib_policy", exporter)
    argv = ["train", "--algo", "rllib-ppo", "--scenario", str(SCENARIO), "--steps", "100",
            "--seed", "2", "--out", str(tmp_path), "--num-env-runners", "3", "--address",
            "auto", "--n-candidates", "8", "--reward-weight", "idle=0", "--ppo", "gamma=0.99",
            "--start-spread-days", "365", "--checkpoint-every", str(every)]  # fmt: skip
    assert main(argv) == 0
    assert calls == [((str(SCENARIO), 100, 2, tmp_path), {
        "num_env_runners": 3, "address": "auto", "start": DEFAULT_START, "nights": 1,
        "env_kwargs": {"n_candidates": 8, "reward_weights": {"idle": 0.0},
                       "start_spread_days": 365},
        "checkpoint_every": every, "ppo_kwargs": {"gamma": 0.99}, "model_config": None,
        "progress": True, "init_from": None})]  # fmt: skip
    (((checkpoint, folder), kwargs),) = exports
    assert checkpoint == tmp_path / "checkpoint" and folder == tmp_path / "policy"
    # the recorded command is built from the arguments, not from sys.argv
    again = build_parser().parse_args(shlex.split(kwargs["command"])[1:])
    given = build_parser().parse_args(argv)
    for dest in ("algo", "steps", "seed", "n_candidates", "reward_weight", "ppo",
                 "start_spread_days", "checkpoint_every", "num_env_runners"):  # fmt: skip
        assert getattr(again, dest) == getattr(given, dest), dest
    assert again.start == DEFAULT_START and Path(again.out) == tmp_path


@pytest.mark.parametrize(("algo", "extra", "option"), [
    ("ppo", ["--lookahead"], "--lookahead"),
    ("rllib-ppo", ["--n-envs", "2"], "--n-envs"),
    ("cma-es", ["--ppo", "gamma=0.9"], "--ppo"),
    ("ppo", ["--checkpoint-every", "3"], "--checkpoint-every"),
])  # fmt: skip
def test_options_of_another_algorithm_are_refused(tmp_path, algo, extra, option):
    argv = ["train", "--algo", algo, "--scenario", str(SCENARIO), "--steps", "10",
            "--out", str(tmp_path / "out"), *extra]  # fmt: skip
    args = build_parser().parse_args(argv)
    with pytest.raises(ConfigError) as err:
        args.func(args)
    assert err.value.field == option
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_training_continues_from_a_saved_model(tmp_path):
    from agents.sb3_train import train_ppo

    small = {"n_steps": 64, "batch_size": 32}
    first = train_ppo("scenarios/global-3site.yaml", 128, 0, tmp_path / "a", start="2027-04-07",
                      n_candidates=8, progress=False, ppo_kwargs=small)  # fmt: skip
    second = train_ppo("scenarios/global-3site.yaml", 128, 1, tmp_path / "b",
                       start="2027-04-07", n_candidates=8, progress=False,
                       init_from=first.model_path)  # fmt: skip
    assert second.model_path.is_file()
    assert "--init-from" in second.manifest["command"]
    assert second.manifest["ppo_kwargs"]["n_steps"] == 64  # the loaded model's settings
