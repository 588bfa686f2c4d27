"""The RLlib env (agents appear only when they decide) and a tiny PPO run on it."""

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from agents.learned import LearnedPolicy, load_policy
from agents.rllib_policy import export_policy
from agents.rllib_train import evaluate_rllib, load_module, train_rllib
from envs.rllib_env import NetworkMultiAgentEnv
from twin.cli import build_parser, main
from twin.errors import ConfigError

START = "2027-03-10"
ROOT = Path(__file__).resolve().parents[2]


def make_env(**kwargs) -> NetworkMultiAgentEnv:
    return NetworkMultiAgentEnv({"start": START, **kwargs})


def first_valid(obs: dict) -> dict[str, int]:
    return {a: int(np.flatnonzero(o["action_mask"])[0]) for a, o in obs.items()}


def test_rllib_env_check():
    check_multiagent_environments(make_env())


def test_agents_appear_only_when_they_decide():
    env = make_env()
    obs, infos = env.reset(seed=1)
    assert env.possible_agents == ["pachon-1m", "sutherland-1m", "siding-spring-1m"]
    steps = 0
    while True:
        assert obs and obs.keys() == infos.keys()
        for agent, o in obs.items():
            assert infos[agent]["deciding"]
            assert env.observation_spaces[agent].contains(o)
        obs, rewards, terminateds, truncateds, infos = env.step(first_valid(obs))
        steps += 1
        assert rewards.keys() == set(env.possible_agents)  # busy agents earn too
        if terminateds["__all__"]:
            break
        assert not any(terminateds.values()) and not any(truncateds.values())
    assert steps > 100
    assert obs.keys() == set(env.possible_agents)  # a last observation for everyone
    assert all(terminateds.values()) and not env.agents


def test_truncation_gives_every_agent_a_last_observation():
    env = make_env(max_cycles=5)
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        obs, _, terminateds, truncateds, _ = env.step(first_valid(obs))
    assert truncateds["__all__"] and not terminateds["__all__"]
    assert obs.keys() == set(env.possible_agents)


def test_same_seed_same_episode():
    def trace(seed: int) -> list:
        env, out = make_env(), []
        obs, _ = env.reset(seed=seed)
        while True:
            obs, rewards, terminateds, truncateds, _ = env.step(first_valid(obs))
            out.append(({a: o["observations"].tolist() for a, o in obs.items()}, rewards))
            if terminateds["__all__"] or truncateds["__all__"]:
                return out

    assert trace(4) == trace(4)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One PPO iteration of 200 env steps on the local env runner (~10 s, mostly Ray)."""
    out = tmp_path_factory.mktemp("rllib")
    ppo = {"train_batch_size_per_learner": 200, "minibatch_size": 64, "num_epochs": 1}
    return train_rllib(steps=200, seed=0, out_dir=out, num_env_runners=0, start=START,
                       ppo_kwargs=ppo, model_config={"fcnet_hiddens": [32]},
                       progress=False)  # fmt: skip


def test_tiny_ppo_run_writes_checkpoint_and_metrics(tiny_run):
    assert (tiny_run.checkpoint / "rllib_checkpoint.json").is_file()
    metrics = json.loads(tiny_run.metrics_path.read_text())
    (row,) = metrics["iterations"]
    assert row["iteration"] == 1 and row["env_steps"] >= 200
    assert sum(row["agent_steps"].values()) >= 200
    assert np.isfinite(row["policy_loss"])
    assert metrics["config"]["env_config"]["start"] == START


def test_trained_module_respects_the_mask(tiny_run):
    module = load_module(tiny_run.checkpoint)
    space = module.observation_space
    n_actions = space["action_mask"].shape[0]
    mask = torch.zeros(2, n_actions)
    mask[:, -1] = 1.0  # only "wait" allowed
    mask[1, 3] = 1.0
    features = torch.as_tensor(np.stack([space["observations"].sample() for _ in range(2)]))
    batch = {Columns.OBS: {"action_mask": mask, "observations": features}}
    logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    assert logits.argmax(-1)[0].item() == n_actions - 1
    assert (logits[mask == 0] < -1e30).all()


def test_evaluate_checkpoint(tiny_run):
    result = evaluate_rllib(tiny_run.checkpoint, start=START, episodes=1, seed=3)
    (episode,) = result["episodes"]
    assert episode["invalid_actions"] == 0
    assert episode["exposures"] > 0 and episode["steps"] > 100


@pytest.mark.slow
def test_ppo_with_a_remote_env_runner_completes_episodes(tmp_path):
    ppo = {"train_batch_size_per_learner": 600, "minibatch_size": 128, "num_epochs": 1}
    run = train_rllib(steps=1200, seed=0, out_dir=tmp_path, num_env_runners=1, start=START,
                      ppo_kwargs=ppo, progress=False)  # fmt: skip
    last = run.history[-1]
    assert last["episodes"] >= 1 and np.isfinite(last["episode_return_mean"])


@pytest.mark.slow
def test_same_seed_same_training(tmp_path):
    ppo = {"train_batch_size_per_learner": 200, "minibatch_size": 64, "num_epochs": 1}
    runs = [train_rllib(steps=400, seed=5, out_dir=tmp_path / str(i), start=START,
                        ppo_kwargs=ppo, progress=False) for i in range(2)]  # fmt: skip
    losses = [[row["policy_loss"] for row in run.history] for run in runs]
    assert losses[0] == losses[1]


def test_spread_starts_reach_the_multi_agent_env():
    env = make_env(start_spread_days=365)
    env.reset(seed=2)
    start = env.par_env.episode.scenario.start
    offset = (np.datetime64(start) - np.datetime64(START)).astype(int)
    assert 0 < offset < 365


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    return export_policy(tiny_run.checkpoint, tmp_path_factory.mktemp("policy"), command="cmd")


def test_exported_policy_answers_as_the_trained_module(tiny_run, exported):
    """The folder the twin loads (tensors only, rebuilt from the manifest) gives the
    checkpoint's module's choice on every observation of an episode."""
    module = load_module(tiny_run.checkpoint)
    module.eval()
    policy = load_policy(exported)
    assert isinstance(policy, LearnedPolicy) and policy.k == 16
    env = make_env()
    obs, _ = env.reset(seed=6)
    compared = 0
    while compared < 150:
        batch = {Columns.OBS: {k: torch.as_tensor(np.stack([o[k] for o in obs.values()]))
                               for k in ("action_mask", "observations")}}  # fmt: skip
        expected = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS].argmax(-1)
        raw = env.par_env._last_obs
        for agent, want in zip(obs, expected.tolist(), strict=True):
            mask = raw[agent]["action_mask"].astype(bool)
            assert policy.predict({**raw[agent], "action_mask": mask}) == want
            compared += 1
        obs, _, terminateds, _, _ = env.step(dict(zip(obs, expected.tolist(), strict=True)))
        assert not terminateds["__all__"]


def test_exported_manifest_says_how_it_was_trained(tiny_run, exported):
    record = json.loads((exported / "manifest.json").read_text())
    assert record["command"] == "cmd" and record["steps"] >= 200
    assert record["env_config"]["start"] == START
    assert record["policy"]["model_config"]["fcnet_hiddens"] == [32]
    assert record["versions"]["ray"]


def test_exported_policy_runs_in_the_twin(exported, tmp_path):
    out = tmp_path / "run"
    main(["run", "scenarios/global-3site.yaml", "--start", START, "--policy", str(exported),
          "--out", str(out), "--quiet"])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["constraint_violations"]["count"] == 0
    assert metrics["run"]["policy"] == f"rllib:{exported.name}"
    assert metrics["run"]["exposures"] > 100 and metrics["run"]["invalid_actions"] == 0


@pytest.mark.parametrize(("key", "value", "field"), [
    ("fcnet_hiddens", [32, "x"], "policy.model_config.fcnet_hiddens"),
    ("fcnet_activation", "softmax", "policy.model_config.fcnet_activation"),
    ("catalog_class", "os.system", "policy.model_config.catalog_class"),
    ("fcnet_hiddens", [16], "policy"),  # valid, but not the weights' shapes
])  # fmt: skip
def test_bad_model_config_is_refused(exported, tmp_path, key, value, field):
    record = json.loads((exported / "manifest.json").read_text())
    record["policy"]["model_config"][key] = value
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(record))
    (folder / "policy.pt").write_bytes((exported / "policy.pt").read_bytes())
    with pytest.raises(ConfigError) as err:
        load_policy(folder)
    assert err.value.field == field


def test_resume_continues_from_the_checkpoint(tiny_run, tmp_path):
    ppo = {"train_batch_size_per_learner": 200, "minibatch_size": 64, "num_epochs": 1}
    run = train_rllib(steps=400, seed=0, out_dir=tmp_path, start=START, ppo_kwargs=ppo,
                      model_config={"fcnet_hiddens": [32]}, progress=False,
                      init_from=tiny_run.checkpoint)  # fmt: skip
    # the counters are the checkpoint's (a fresh start would number its iteration 1), and
    # the first run's record is carried into the resumed run's metrics
    assert [row["iteration"] for row in run.history] == [1, 2]
    assert run.history[0] == tiny_run.history[0]
    assert run.history[-1]["env_steps"] >= 400
    resumed = json.loads(run.metrics_path.read_text())
    assert resumed["config"]["init_from"] == str(tiny_run.checkpoint)


SHIPPED = ROOT / "agents" / "trained" / "rllib-global-3site"


def test_shipped_policy_gives_the_readme_figures(tmp_path):
    """The shipped module, loaded tensors-only, reproduces seed 101's night of the README's
    learning table (benchmarks/results/learning_rllib_april.json) to the last digit."""
    recorded = json.loads((ROOT / "benchmarks" / "results" / "learning_rllib_april.json")
                          .read_text())  # fmt: skip
    row = next(r for r in recorded["rows"] if r["seed"] == 101)
    out = tmp_path / "run"
    main(["run", "scenarios/global-3site.yaml", "--start", recorded["start"], "--seed", "101",
          "--policy", str(SHIPPED), "--out", str(out), "--quiet", "--no-plots"])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["policy"] == "rllib:rllib-global-3site"
    assert metrics["run"]["exposures"] == row["exposures"]
    assert metrics["network"]["science_value"] == pytest.approx(row["science_value"], rel=1e-12)


def test_shipped_manifest_command_is_the_training_recorded():
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    args = build_parser().parse_args(shlex.split(manifest["command"])[1:])
    assert (args.algo, args.steps, args.n_candidates, args.start_spread_days) == (
        "rllib-ppo",
        400_000,
        8,
        365,
    )
    # The command and the record it trained with say the same thing, option by option.
    env, ppo = manifest["env_config"], manifest["ppo"]
    assert (args.seed, args.steps, args.start) == (manifest["seed"], manifest["steps"],
                                                   env["start"])  # fmt: skip
    assert (args.n_candidates, args.start_spread_days, args.nights) == (
        env["n_candidates"], env["start_spread_days"], env["nights"])  # fmt: skip
    assert Path(args.scenario) == Path(manifest["scenario"])
    weights = dict(w.split("=") for w in args.reward_weight)
    assert {k: float(v) for k, v in weights.items()} == env["reward_weights"]
    for option in args.ppo:
        key, value = option.split("=", 1)
        assert json.loads(value) == ppo[key], key
    assert manifest["steps"] == 400_000 and manifest["policy"]["n_telescopes"] == 3
    assert manifest["env_config"]["reward_weights"] == {"idle": 0.0}
    assert (SHIPPED / "policy.pt").stat().st_size < 1_000_000


def test_export_needs_the_runs_record(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    with pytest.raises(FileNotFoundError, match=r"metrics\.json"):
        export_policy(tmp_path / "checkpoint", tmp_path / "policy")
    (tmp_path / "metrics.json").write_text(json.dumps({"config": {}, "iterations": []}))
    with pytest.raises(ValueError, match="env_config"):
        export_policy(tmp_path / "checkpoint", tmp_path / "policy")
    assert not (tmp_path / "policy").exists()


def test_exported_manifest_names_the_activations(exported):
    config = json.loads((exported / "manifest.json").read_text())["policy"]["model_config"]
    assert config["fcnet_activation"] == "tanh" and config["head_fcnet_activation"] == "relu"
