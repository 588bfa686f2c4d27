"""The RLlib env (agents appear only when they decide) and a tiny PPO run on it."""

import json

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from agents.rllib_train import evaluate_rllib, load_module, train_rllib
from envs.rllib_env import NetworkMultiAgentEnv

START = "2027-03-10"


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
