"""The PettingZoo env: PettingZoo's own API and seed tests, agents deciding only at their
own decision points, per-telescope rewards, and same-instant decisions."""

import pickle

import numpy as np
import pytest
import yaml
from pettingzoo.test import parallel_api_test, parallel_seed_test

from envs.multi_env import NetworkParallelEnv
from envs.network_env import DEFAULT_SCENARIO, NetworkEnv
from twin.ops.conditions import Observe, Wait
from twin.ops.stepping import SteppedTwin
from twin.ops.world import World
from twin.scenario import load_scenario

START = "2027-03-10"  # a fixed night: the twin needs a date; one night is ~500 decisions


def make_env(**kwargs) -> NetworkParallelEnv:
    return NetworkParallelEnv(start=START, **kwargs)


def first_valid(obs: dict) -> dict[str, int]:
    return {a: int(np.flatnonzero(o["action_mask"])[0]) for a, o in obs.items()}


@pytest.fixture(scope="module")
def two_at_one_site(tmp_path_factory) -> str:
    """global-3site with a second telescope at Cerro Pachon: both open the night together."""
    data = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    data["sites"][0]["telescopes"].append({"name": "pachon-1m-b", "preset": "1m"})
    path = tmp_path_factory.mktemp("scenario") / "two-at-pachon.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.filterwarnings("error::UserWarning")  # the API test warns on soft failures
def test_pettingzoo_parallel_api():
    parallel_api_test(make_env(), num_cycles=2000)  # a whole night: ends by termination


@pytest.mark.filterwarnings("error::UserWarning")
def test_pettingzoo_parallel_api_truncates_at_max_cycles():
    env = make_env()
    parallel_api_test(env, num_cycles=50)  # sets env.max_cycles = 50
    assert env._cycles == 50 and not env.agents


def test_pettingzoo_parallel_seed():
    parallel_seed_test(make_env, num_cycles=200)


def rollout(env: NetworkParallelEnv, seed: int) -> list:
    """(observations, rewards, infos) of a whole episode under a seeded masked-random policy."""
    rng = np.random.default_rng(seed)
    obs, infos = env.reset(seed=seed)
    trace = [(obs, infos)]
    while env.agents:
        actions = {a: int(rng.choice(np.flatnonzero(o["action_mask"]))) for a, o in obs.items()}
        obs, rewards, _, _, infos = env.step(actions)
        trace.append((obs, rewards, infos))
    return trace


def test_same_seed_same_episode():
    a, b = rollout(make_env(), 7), rollout(make_env(), 7)
    assert len(a) == len(b) > 100
    for step_a, step_b in zip(a, b, strict=True):
        for dict_a, dict_b in zip(step_a, step_b, strict=True):
            assert dict_a.keys() == dict_b.keys()
            for agent in dict_a:
                x, y = dict_a[agent], dict_b[agent]
                if isinstance(x, dict) and "action_mask" in x:
                    assert all(np.array_equal(x[k], y[k]) for k in x)
                else:
                    assert x == y
    other = make_env()
    other.reset(seed=8)
    assert other.world.seed != a[0][1]["pachon-1m"]["world_seed"]


def test_only_deciding_agents_choose():
    env = make_env()
    obs, infos = env.reset(seed=1)
    assert env.agents == env.possible_agents == ["pachon-1m", "sutherland-1m", "siding-spring-1m"]
    wait = env.k
    for _ in range(60):
        deciding = [a for a in env.agents if infos[a]["deciding"]]
        assert deciding, "every step serves at least one decision"
        for agent in env.agents:
            mask = obs[agent]["action_mask"]
            assert env.observation_space(agent).contains(obs[agent])
            if agent not in deciding:  # busy: only the ignored last action
                assert mask.tolist() == [0] * wait + [1]
        before = {a: infos[a]["invalid_actions"] for a in env.agents}
        actions = first_valid(obs)
        actions.update({a: 0 for a in env.agents if a not in deciding})  # masked: ignored
        obs, _, _, _, infos = env.step(actions)
        assert all(infos[a]["invalid_actions"] == before[a] for a in env.agents)


def test_invalid_action_of_a_deciding_agent_waits_and_is_counted():
    env = make_env()
    obs, infos = env.reset(seed=1)
    invalid = 0
    for _ in range(500):
        agent = next(a for a in env.agents if infos[a]["deciding"])
        masked = np.flatnonzero(obs[agent]["action_mask"] == 0)
        if masked.size:  # fewer feasible candidates than offered slots
            break
        obs, _, _, _, infos = env.step(first_valid(obs))
    assert masked.size, "no decision with a masked candidate: pick another seed"
    for action in (int(masked[0]), env.k + 1, None):  # masked, out of range, missing
        obs, _, _, _, infos = env.step({} if action is None else {agent: action})
        invalid += 1
        assert sum(i["invalid_actions"] for i in infos.values()) == invalid  # per agent
        assert infos[agent]["reward_terms"]["slew"] == 0.0
        agent = next(a for a in env.agents if infos[a]["deciding"])


def test_rewards_split_the_single_agent_reward_by_telescope():
    """With one decision per step (3 sites) and the same world, the telescopes' rewards add
    up to the single-agent env's, step by step."""
    single = NetworkEnv(start=START, seed_worlds=False)
    multi = make_env(seed_worlds=False)
    s_obs, _ = single.reset(seed=0)
    m_obs, m_infos = multi.reset(seed=0)
    per_agent = dict.fromkeys(multi.possible_agents, 0.0)
    done = False
    while not done:
        (agent,) = [a for a in multi.agents if m_infos[a]["deciding"]]
        np.testing.assert_array_equal(m_obs[agent]["candidates"], s_obs["candidates"])
        action = int(np.flatnonzero(s_obs["action_mask"])[0])
        s_obs, s_reward, done, _, s_info = single.step(action)
        m_obs, m_rewards, m_done, _, m_infos = multi.step({agent: action})
        assert sum(m_rewards.values()) == pytest.approx(s_reward, abs=1e-9)
        assert all(m_done.values()) == done
        for a, r in m_rewards.items():
            per_agent[a] += r
    info = next(iter(m_infos.values()))
    assert info["exposures"] == s_info["exposures"] > 0
    assert all(r > 0 for r in per_agent.values()), per_agent


def test_next_decisions_collects_every_telescope_deciding_now(two_at_one_site):
    scenario = load_scenario(two_at_one_site, nights=1, start=START)
    stepped = SteppedTwin(World(scenario, seed=3))
    pending = stepped.next_decisions()
    while len(pending) == 1:  # the other sites open first
        stepped.next_decision()
        stepped.act(Wait(300.0))
        pending = stepped.next_decisions()
    assert {d.unit.world.name for d in pending} == {"pachon-1m", "pachon-1m-b"}
    assert len({d.conditions.mjd for d in pending}) == 1
    assert pending[0] is stepped.current


def _two_deciding_now(two_at_one_site):
    stepped = SteppedTwin(World(load_scenario(two_at_one_site, nights=1, start=START), seed=3))
    pending = stepped.next_decisions()
    while len(pending) == 1:
        stepped.next_decision()
        stepped.act(Wait(300.0))
        pending = stepped.next_decisions()
    return stepped, pending


def test_stepped_twin_refuses_a_request_taken_at_the_same_instant(two_at_one_site):
    stepped, (a, b) = _two_deciding_now(two_at_one_site)
    row = int(
        a.conditions.candidates.request_index[np.flatnonzero(a.conditions.candidates.feasible)[0]]
    )
    k_b = int(np.flatnonzero(b.conditions.candidates.request_index == row)[0])
    assert b.conditions.candidates.feasible[k_b]  # b cannot see it taken: built before a chose
    k_a = int(np.flatnonzero(a.conditions.candidates.request_index == row)[0])
    assert stepped.next_decision() is a and stepped.act(Observe(k_a))
    assert stepped.next_decision().unit is b.unit and not stepped.act(Observe(k_b))
    assert stepped.twin.counters.conflicts == 1
    again = stepped.next_decision()  # b again, a second later, now seeing it taken
    assert again.unit is b.unit
    assert again.conditions.mjd == pytest.approx(b.conditions.mjd + 1.0 / 86400.0, abs=1e-9)
    c = again.conditions.candidates
    assert not (c.feasible & (c.request_index == row)).any()


def test_single_agent_env_does_not_credit_a_conflicting_visit(two_at_one_site):
    env = NetworkEnv(two_at_one_site, start=START)
    env.reset(seed=3)
    stepped = env._stepped
    name = lambda: env._decision.unit.world.name  # noqa: E731
    last = {}
    while not (name() == "pachon-1m-b" and last.get("pachon-1m") == env._decision.conditions.mjd
               and env._chosen.size):  # fmt: skip
        last[name()] = env._decision.conditions.mjd  # both wait 300 s: they decide in pairs
        env.step(env.k)
    env.step(env.k)
    while name() != "pachon-1m":  # other sites' decisions in between
        env.step(env.k)
    first = env._decision
    first_row = int(first.conditions.candidates.request_index[env._chosen[0]])
    env.step(0)
    assert name() == "pachon-1m-b" and env._decision.conditions.mjd == first.conditions.mjd
    second = env._decision.conditions.candidates
    k = int(np.flatnonzero(second.request_index[env._chosen] == first_row)[0])
    _, _, _, _, info = env.step(k)
    assert stepped.twin.counters.conflicts == 1
    assert info["reward_terms"]["slew"] == 0.0


def test_same_instant_choices_of_one_request_conflict(two_at_one_site):
    env = NetworkParallelEnv(two_at_one_site, start=START)
    obs, infos = env.reset(seed=3)
    while sum(i["deciding"] for i in infos.values()) < 2:
        obs, _, _, _, infos = env.step(first_valid(obs))
    first, second = [a for a in env.agents if infos[a]["deciding"]]
    assert first == "pachon-1m" and second == "pachon-1m-b"
    np.testing.assert_array_equal(obs[first]["candidates"], obs[second]["candidates"])
    obs, _, _, _, infos = env.step({first: 0, second: 0})  # both take the best candidate
    assert infos[first]["conflicts"] == 0 and infos[first]["reward_terms"]["slew"] < 0
    assert infos[second]["conflicts"] == 1 and infos[second]["reward_terms"]["slew"] == 0
    assert infos[second]["deciding"], "the loser decides again a second later"


def test_pickle_round_trip_and_render():
    env = make_env(render_mode="ansi")
    clone = pickle.loads(pickle.dumps(env))
    obs_a, _ = env.reset(seed=2)
    obs_b, _ = clone.reset(seed=2)
    assert all(np.array_equal(obs_a[a][k], obs_b[a][k]) for a in obs_a for k in obs_a[a])
    assert env.render().startswith("MJD ")


def test_pickle_mid_episode_continues_the_same_run():
    env = make_env()
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(0)

    def act(o):
        return {a: int(rng.choice(np.flatnonzero(o[a]["action_mask"]))) for a in o}

    for _ in range(40):
        obs, *_ = env.step(act(obs))
    clone = pickle.loads(pickle.dumps(env))
    assert all(np.array_equal(obs[a][k], clone._last_obs[a][k]) for a in obs for k in obs[a])
    for _ in range(40):
        actions = act(obs)
        obs, rew, *_ = env.step(actions)
        obs_c, rew_c, *_ = clone.step(actions)
        assert rew == rew_c
        assert all(np.array_equal(obs[a][k], obs_c[a][k]) for a in obs for k in obs[a])


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="not a date"):
        NetworkParallelEnv(start="10 March")
    with pytest.raises(ValueError, match="unknown reward terms"):
        make_env(reward_weights={"fun": 1.0})
    with pytest.raises(RuntimeError, match="reset"):
        make_env().step({})
