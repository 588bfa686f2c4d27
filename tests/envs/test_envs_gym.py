"""Every registered ``skytwin/`` Gymnasium env: the checkers, same-seed determinism, a
pickle round-trip, vectorisation, and the reward weights."""

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401 - registers the ids
from envs.network_env import DEFAULT_REWARD_WEIGHTS
from twin.errors import ConfigError

START = "2027-04-07"  # a fixed date: 'tonight' would change the sky every day
ENV_IDS = sorted(i for i in gym.registry if i.startswith("skytwin/"))


def make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, start=START, **kwargs)


def masks(env) -> np.ndarray:
    return env.get_wrapper_attr("action_masks")()


def valid_action(env, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(masks(env))))


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def rollout(env_id: str, n_steps: int, seed: int = 7) -> list[tuple]:
    env = make(env_id)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    for _ in range(n_steps):
        obs, reward, terminated, truncated, info = env.step(valid_action(env, rng))
        out.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs, info))
    return out


def test_ids_registered():
    assert {"skytwin/Network-v0", "skytwin/NetworkFlat-v0"} <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_checker(env_id):
    gym_check_env(make(env_id).unwrapped, skip_render_check=True)


# SB3's CombinedExtractor flattens the (k, features) candidates matrix: no custom policy needed.
@pytest.mark.filterwarnings("ignore:Your observation candidates has an unconventional shape")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_checker(env_id):
    sb3_check_env(make(env_id), warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_rollout(env_id):
    a, b = rollout(env_id, 300), rollout(env_id, 300)
    assert len(a) == len(b)
    for step_a, step_b in zip(a, b, strict=True):
        assert all(same(x, y) for x, y in zip(step_a, step_b, strict=True))
    rewards = [s[1] for s in a if len(s) == 5]
    assert len(set(rewards)) > 1, "a rollout whose rewards never change tests nothing"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_different_seed_different_world(env_id):
    a, b = rollout(env_id, 0, seed=1), rollout(env_id, 0, seed=2)
    assert a[0][1]["world_seed"] != b[0][1]["world_seed"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip(env_id):
    env = make(env_id)
    rng = np.random.default_rng(1)
    env.reset(seed=3)
    for _ in range(25):
        env.step(valid_action(env, rng))
    copy = pickle.loads(pickle.dumps(env))
    assert np.array_equal(masks(copy), masks(env))
    for _ in range(5):
        action = valid_action(env, rng)
        step, step_copy = env.step(action), copy.step(action)
        assert all(same(x, y) for x, y in zip(step, step_copy, strict=True))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_before_reset(env_id):
    copy = pickle.loads(pickle.dumps(make(env_id)))
    obs, info = copy.reset(seed=4)
    obs_ref, info_ref = make(env_id).reset(seed=4)
    assert same(obs, obs_ref) and same(info, info_ref)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_steps(env_id, mode):
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode, start=START)
    try:
        obs, _ = vec.reset(seed=5)
        assert vec.observation_space.contains(obs)
        rng = np.random.default_rng(2)
        for _ in range(10):
            action = np.array([rng.choice(np.flatnonzero(m)) for m in vec.call("action_masks")])
            obs, rewards, terminated, truncated, _ = vec.step(action)
            assert truncated.shape == (2,)
            assert rewards.shape == (2,) and terminated.shape == (2,)
            assert vec.observation_space.contains(obs)
    finally:
        vec.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_weights(env_id):
    """The reward is the weighted sum of ``info["reward_terms"]``; the terms do not depend
    on the weights, so re-weighting changes rewards exactly as documented."""
    weights = {"science": 3.0, "alert": 0.0, "idle": 10.0, "slew": 0.0}
    default, custom = make(env_id), make(env_id, reward_weights=weights)
    default.reset(seed=6)
    custom.reset(seed=6)
    rng = np.random.default_rng(3)
    changed = 0
    for _ in range(150):
        action = valid_action(default, rng)
        _, r_default, *_, info_default = default.step(action)
        _, r_custom, *_, info_custom = custom.step(action)
        terms = info_default["reward_terms"]
        assert terms == info_custom["reward_terms"]
        assert r_default == pytest.approx(sum(DEFAULT_REWARD_WEIGHTS[k] * v for k, v in
                                              terms.items()))  # fmt: skip
        assert r_custom == pytest.approx(sum(weights[k] * v for k, v in terms.items()))
        changed += r_default != pytest.approx(r_custom)
    assert changed > 0


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_reward_term_is_refused(env_id):
    with pytest.raises(ValueError, match="unknown reward terms"):
        make(env_id, reward_weights={"sciense": 1.0})


def test_start_spread_draws_dates_in_the_range():
    env = make("skytwin/Network-v0", start_spread_days=365)
    starts = []
    for seed in range(8):
        env.reset(seed=seed)
        starts.append(env.unwrapped.episode.scenario.start)
    days = [(np.datetime64(s) - np.datetime64(START)).astype(int) for s in starts]
    assert all(0 <= d < 365 for d in days)
    assert len(set(days)) == 8  # 8 draws from 365 days: equal ones would be a fixed date
    # the world is the drawn date's: the twin's first decision is on that evening
    mjd = env.unwrapped._decision.conditions.mjd
    first = float(np.datetime64(starts[-1]).astype("datetime64[D]").astype(float)) + 40587.0
    assert first < mjd < first + 1.5


def test_no_spread_keeps_the_stream_of_worlds():
    """Without a spread, reset draws one world seed from the env's RNG and nothing else:
    the stream of worlds over successive resets is the RNG's stream, as before the option
    existed (a spread draws a day after each seed)."""
    env = make("skytwin/Network-v0")
    seeds = [env.reset(seed=3)[1]["world_seed"]] + [env.reset()[1]["world_seed"] for _ in range(3)]
    rng = np.random.default_rng(3)
    assert seeds == [int(rng.integers(2**31 - 1)) for _ in range(4)]
    assert env.unwrapped.episode.scenario.start == START
    spread = make("skytwin/Network-v0", start_spread_days=30)
    assert spread.reset(seed=3)[1]["world_seed"] == seeds[0]
    assert spread.reset()[1]["world_seed"] != seeds[1]  # the day's draw came between


def test_pickle_keeps_the_drawn_start():
    env = make("skytwin/Network-v0", start_spread_days=200)
    rng = np.random.default_rng(2)
    env.reset(seed=11)
    for _ in range(10):
        env.step(valid_action(env, rng))
    copy = pickle.loads(pickle.dumps(env))
    assert copy.unwrapped.episode.scenario.start == env.unwrapped.episode.scenario.start
    assert copy.unwrapped.episode.scenario.start != START
    action = valid_action(env, rng)
    assert all(same(x, y) for x, y in zip(env.step(action), copy.step(action), strict=True))


@pytest.mark.parametrize("bad", [-1, 2.5, True, "30"])
def test_bad_start_spread_is_refused(bad):
    with pytest.raises(ValueError, match="start_spread_days must be an integer >= 0"):
        make("skytwin/Network-v0", start_spread_days=bad)


def test_a_spread_past_the_replayed_weather_is_refused_at_once():
    failover = Path(__file__).resolve().parents[2] / "scenarios" / "teaching" / "failover.yaml"
    gym.make("skytwin/Network-v0", scenario=failover, start="2027-04-07", start_spread_days=2)
    with pytest.raises(ConfigError) as err:
        gym.make("skytwin/Network-v0", scenario=failover, start="2027-04-07",
                 start_spread_days=60)  # fmt: skip
    assert err.value.field == "weather.log"
    assert "shorten start_spread_days" in err.value.problem
