"""Envs with a pipeline: frames scored in the loop, the observation's ``measured`` key, and
a policy trained on it running in ``skytwin run``."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

from envs import features as F
from envs.multi_env import NetworkParallelEnv
from envs.network_env import NetworkEnv, observation_space
from twin.pipeline.stage import Frame, StageResult

SCENARIO = """
name: env-pipeline
start: 2027-03-10
nights: 1
seed: 4
sites:
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
  - site: sutherland
    telescopes: [{name: saao-1m, preset: 1m}]
programmes:
  - name: monitoring
    min_frame_quality: 0.3
    visits: 0
    cadence_days: 0.02
    plan: [{band: r, exptime_s: 120, count: 1}]
    targets:
      - {name: NGC 2070, ra_deg: 84.676, dec_deg: -69.101}
      - {name: NGC 3372, ra_deg: 161.265, dec_deg: -59.867}
      - {name: M83, ra_deg: 204.254, dec_deg: -29.866}
pipeline: {frame_size_pix: 32, processing_s: 5}
"""


class Scorer:
    """Scores every frame 50 with a 1.3" FWHM and a focus flag."""

    name, version = "scorer", "test-1"

    def process(self, frame: Frame) -> StageResult:
        return StageResult(self.name, self.version, score=50.0, seeing_arcsec=1.3,
                           flags={"focus": 0.9, "cloud": 0.1})  # fmt: skip


@pytest.fixture(scope="module")
def scenario_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sc") / "env.yaml"
    path.write_text(SCENARIO)
    return path


def _first_measured(env, seed=3):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    for _ in range(400):
        if obs["measured"][:, 0].any():
            return obs
        valid = np.flatnonzero(obs["action_mask"])
        obs, _, done, _, _ = env.step(int(rng.choice(valid[:-1] if valid.size > 1 else valid)))
        assert not done
    raise AssertionError("no measurement reached the observation")


def test_without_a_pipeline_the_space_is_the_shipped_policies():
    assert "measured" not in observation_space(3, 3, 16).spaces
    space = observation_space(3, 3, 16, measured=True)
    assert space["measured"].shape == (3, len(F.MEASURED_FEATURES)) == (3, 12)


def test_the_env_with_a_pipeline_passes_gymnasiums_checker(scenario_path):
    env = NetworkEnv(scenario_path, pipeline=[Scorer()])
    assert env.observation_space["measured"].shape == (2, 12)
    check_env(env, skip_render_check=True)


def test_the_observation_shows_what_the_centre_measured(scenario_path):
    env = NetworkEnv(scenario_path, pipeline=[Scorer()])
    obs = _first_measured(env)
    row = obs["measured"][obs["measured"][:, 0] == 1][0]
    named = dict(zip(F.MEASURED_FEATURES, row, strict=True))
    assert named["score"] == pytest.approx(0.5) and named["seeing"] == pytest.approx(0.65)
    assert named["flag_focus"] == 1.0 and named["flag_cloud"] == 0.0
    assert 0.0 <= named["age"] < 1.0 and named["quality_ratio"] > -1.0
    assert env.observation_space.contains(obs)
    # The telescope never measured still says so.
    other = obs["measured"][obs["measured"][:, 0] == 0]
    assert (other[:, 1] == 1.0).all() and (other[:, 2:] == 0.0).all()


def test_the_same_seed_gives_the_same_episode_with_a_pipeline(scenario_path):
    a = _first_measured(NetworkEnv(scenario_path, pipeline=[Scorer()]))
    b = _first_measured(NetworkEnv(scenario_path, pipeline=[Scorer()]))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_the_parallel_env_with_a_pipeline_passes_pettingzoos_test(scenario_path):
    env = NetworkParallelEnv(scenario_path, pipeline=[Scorer()])
    assert env.observation_space("saao-1m")["measured"].shape == (2, 12)
    parallel_api_test(env, num_cycles=60)


def test_a_policy_trained_with_measurements_runs_in_the_twin(scenario_path, tmp_path):
    from sb3_contrib import MaskablePPO

    from agents.learned import LearnedPolicy
    from agents.policy_format import export_model
    from twin.ops.run import run_scenario
    from twin.scenario import load_scenario

    env = NetworkEnv(scenario_path, pipeline=[Scorer()])
    model = MaskablePPO("MultiInputPolicy", env, n_steps=32, batch_size=32, seed=1)
    export_model(model, tmp_path / "policy")
    policy = LearnedPolicy(tmp_path / "policy")
    assert policy.measured
    obs = _first_measured(env)
    expected, _ = model.predict(obs, action_masks=obs["action_mask"].astype(bool),
                                deterministic=True)  # fmt: skip
    assert policy.predict(obs) == int(expected)
    result = run_scenario(load_scenario(scenario_path), tmp_path / "run", policy,
                          progress=False, plots=False, stages=[Scorer()])  # fmt: skip
    assert result.metrics["run"]["pipeline"]["frames"] > 10
