"""``NetworkParallelEnv``: one agent per telescope, as a PettingZoo ParallelEnv."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from envs import features as F
from envs.episode import (
    TERMS,
    Episode,
    EpisodeEnv,
    draw_world,
    empty_observation,
    replay,
    replayable_state,
)
from envs.network_env import DEFAULT_SCENARIO, NetworkEnv
from twin.ops.stepping import Decision
from twin.pipeline.stage import PipelineStage
from twin.scenario import Scenario

MAX_CYCLES = 5000


_REPLAYED = ("_pending", "_chosen", "_last_obs")
"""Rebuilt by replaying the actions on unpickling."""


class NetworkParallelEnv(EpisodeEnv, ParallelEnv):
    """Schedule a telescope network with one agent per telescope.

    ## Description
    The twin (:mod:`twin.ops`) simulates a network of telescopes through one or more
    nights, as in ``skytwin/Network-v0``, but every telescope is its own agent (agent id:
    the telescope's name). A telescope decides only when it is free to start a visit.
    Each ``step`` advances the twin to the next time at which some telescopes are
    waiting for a decision; those agents are *deciding* (``info["deciding"]``) and
    choose together. The other agents are busy (slewing, exposing, closed by weather):
    PettingZoo's parallel API still asks them for an action, so they get the
    observation of their last decision with an action mask that allows only the last
    action, and their action is ignored. Trainers can drop their transitions by
    ``info["deciding"]``; ``envs.rllib_env.NetworkMultiAgentEnv`` does that for RLlib.

    When two telescopes choose the same request at the same instant, the first in the
    twin's order gets it; the other one decides again a second later
    (``info["conflicts"]`` counts these).

    ## Observation space
    Per agent, the single-agent env's ``Dict`` (see :class:`envs.network_env.NetworkEnv`):

    | key         | shape                  | content (scaled)                                       |
    |-------------|------------------------|--------------------------------------------------------|
    | time        | (4,)                   | sin/cos of the UTC day, hours left in the night / 12, fraction of night left |
    | site        | (6,)                   | the agent's site now: seeing/2", transparency, cloud cover, sun alt/90, moon alt/90, moon illumination |
    | forecast    | (6,)                   | the agent's site at +1, +2, +4 h: seeing/2", transparency |
    | network     | (3 n_sites,)           | every site: is night, dome open, transparency          |
    | telescope   | (n_telescopes + 2,)    | one-hot of the agent's telescope, its alt/90, az/360   |
    | candidates  | (n_candidates, 13)     | per candidate: see ``envs.features.CANDIDATE_FEATURES`` |
    | action_mask | (n_candidates + 1,)    | 1 where the action is valid (the last entry: wait); a busy agent: only the last |

    With a pipeline the observation gains ``measured`` (n_telescopes, 12), as in
    ``skytwin/Network-v0``: every telescope's latest frame measurement.

    A busy agent's features are those of its last decision (zeros before its first).

    ## Action space
    Per agent ``Discrete(n_candidates + 1)``: ``k < n_candidates`` observes candidate
    ``k``; the last action waits 5 minutes (the twin wakes the telescope early if a new
    request arrives). For a busy agent every action is ignored. A deciding agent's
    masked or missing action is treated as waiting and counted in
    ``info["invalid_actions"]``.

    ## Rewards
    Per agent, the sum of its own named terms, weights settable with ``reward_weights``:

    | term    | default | per step                                                          |
    |---------|---------|-------------------------------------------------------------------|
    | science | 1.0     | priority x expected quality (from the conditions measured at the decision) of every exposure this telescope finished since the previous step, divided by the visit's exposures |
    | alert   | 2.0     | +1 for each of this telescope's exposures since the previous step that was an alert's first follow-up |
    | idle    | 0.5     | -hours waited when this agent chose to wait with a feasible candidate offered |
    | slew    | 0.5     | -hours of slew of the visit this agent chose                       |

    ``info[agent]["reward_terms"]`` holds the agent's unweighted terms of the step.

    ## Episode end
    All agents terminate when the scenario's ``nights`` have been simulated. All are
    truncated after ``max_cycles`` steps (PettingZoo's convention; each step serves at
    least one decision).

    ## Arguments

    | name           | default              | meaning                                        |
    |----------------|----------------------|------------------------------------------------|
    | scenario       | global-3site.yaml    | path or ``Scenario``                           |
    | nights         | 1                    | nights per episode                             |
    | start          | scenario's           | first night's date (YYYY-MM-DD); give one: "tonight" changes daily |
    | n_candidates   | 16                   | candidates offered per decision                |
    | reward_weights | DEFAULT_REWARD_WEIGHTS | overrides of the term weights (``envs.network_env``) |
    | seed_worlds    | True                 | each reset draws a new weather/equipment seed from the env's RNG; False reuses the scenario's seed |
    | max_cycles     | 5000                 | steps before truncation                        |
    | pipeline       | scenario's stages    | stage names or ``PipelineStage`` objects run on every frame; [] for none |
    | start_spread_days | 0                 | each reset starts ``start`` + U{0..spread-1} days (365: every season); 0: always ``start`` |

    ## Version history
    * v0: first version.
    """

    metadata: ClassVar[dict] = {"name": "skytwin_network_parallel_v0", "render_modes": ["ansi"],
                                "is_parallelizable": True, "render_fps": 4}  # fmt: skip

    def __init__(self, scenario: str | Path | Scenario = DEFAULT_SCENARIO, nights: int = 1,
                 start: str | None = None, n_candidates: int = 16,
                 reward_weights: dict[str, float] | None = None, seed_worlds: bool = True,
                 max_cycles: int = MAX_CYCLES, render_mode: str | None = None,
                 pipeline: Sequence[str | PipelineStage] | None = None,
                 start_spread_days: int = 0) -> None:  # fmt: skip
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r}; allowed: "
                             f"{self.metadata['render_modes']} or None")  # fmt: skip
        # The single-agent env checks the arguments and defines the spaces, so a telescope
        # sees the same observation and actions in both envs.
        single = NetworkEnv(scenario, nights=nights, start=start, n_candidates=n_candidates,
                            reward_weights=reward_weights, seed_worlds=seed_worlds,
                            pipeline=pipeline, start_spread_days=start_spread_days)  # fmt: skip
        self.scenario = single.scenario
        self.start_spread_days = single.start_spread_days
        self.stages = single.stages
        self.k = single.k
        self.weights = single.weights
        self.seed_worlds = seed_worlds
        self.max_cycles = int(max_cycles)
        self.render_mode = render_mode
        self.possible_agents: list[str] = list(single.telescope_names)
        self.agents: list[str] = []
        self.observation_spaces = {a: copy.deepcopy(single.observation_space)
                                   for a in self.possible_agents}  # fmt: skip
        self.action_spaces = {a: spaces.Discrete(self.k + 1) for a in self.possible_agents}
        self._wait_only = F.action_mask(0, self.k)
        self._np_random: np.random.Generator | None = None
        self._np_random_seed: int | None = None
        self.episode: Episode | None = None
        self._pending: list[Decision] = []
        self._chosen: dict[str, np.ndarray] = {}

    def observation_space(self, agent: str) -> spaces.Dict:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.action_spaces[agent]

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random()
        return self._np_random

    # -- pettingzoo API ------------------------------------------------------------------
    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("the episode has ended (or never started): call reset() first")
        self.episode.actions.append(dict(actions))
        terms = {a: dict.fromkeys(TERMS, 0.0) for a in self.agents}
        for decision in self._pending:
            name = decision.unit.world.name
            terms[name].update(self._apply(decision, actions.get(name)))
        self.episode.clear_earned()
        terminated = self._advance()
        self._cycles += 1
        truncated = not terminated and self._cycles >= self.max_cycles
        for name, t in terms.items():
            t["science"], t["alert"] = (
                float(x) for x in self.episode.earned[self.episode.index[name]]
            )
        rewards = {a: float(sum(self.weights[k] * v for k, v in t.items()))
                   for a, t in terms.items()}  # fmt: skip
        observations = self._observations(terminal=terminated)
        infos = self._infos(terms)
        terminations = dict.fromkeys(self.agents, terminated)
        truncations = dict.fromkeys(self.agents, truncated)
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def reset(self, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict[str, dict], dict[str, dict]]:  # fmt: skip
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        self._start(*draw_world(self.np_random, self.scenario, self.seed_worlds,
                                self.start_spread_days))  # fmt: skip
        terms = {a: dict.fromkeys(TERMS, 0.0) for a in self.agents}
        return self._observations(terminal=False), self._infos(terms)

    def _start(self, world_seed: int, scenario: Scenario) -> None:
        """A fresh twin of the world drawn from ``world_seed``, run to the first decisions."""
        self.episode = Episode(scenario, world_seed, self.possible_agents, self.stages,
                               self.k)  # fmt: skip
        self._cycles = 0
        self._last_obs = {a: self._empty_observation() for a in self.possible_agents}
        self.agents = list(self.possible_agents)
        self._advance()

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._stepped is None:
            return None
        deciding = ", ".join(f"{d.unit.world.name} ({self._chosen[d.unit.world.name].size} "
                             "candidates)" for d in self._pending)  # fmt: skip
        return f"MJD {self._stepped.mjd:.5f}: {deciding or 'no decision pending'}"

    def close(self) -> None:
        self.episode = None
        self._pending = []
        self._chosen = {}

    # -- pickling ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """As NetworkEnv: the SimPy run cannot be pickled, so keep the world's seed and
        the actions since ``reset`` and replay them when unpickled."""
        return replayable_state(self, _REPLAYED)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._pending, self._chosen = [], {}
        replay(self, state)

    # -- internals -----------------------------------------------------------------------
    def _apply(self, decision: Decision, action: Any) -> dict[str, float]:
        """Answer one pending decision; returns the agent's idle/slew terms."""
        current = self._stepped.next_decision()  # the twin serves decisions in this order
        assert current is not None and current.unit is decision.unit
        return self.episode.answer(decision, self._chosen[decision.unit.world.name], action)

    def _advance(self) -> bool:
        """Run the twin to the next decisions; True when the episode has ended."""
        self._pending = self._stepped.next_decisions()
        self._chosen = {d.unit.world.name: F.rank_candidates(d.conditions, self.k)
                        for d in self._pending}  # fmt: skip
        return not self._pending

    def _observations(self, terminal: bool) -> dict[str, dict[str, np.ndarray]]:
        decisions = {d.unit.world.name: d for d in self._pending}
        out = {}
        for name in self.agents:
            if terminal:
                out[name] = self._empty_observation()
            elif name in decisions:
                self._last_obs[name] = self._observation(decisions[name])
                out[name] = {key: v.copy() for key, v in self._last_obs[name].items()}
            else:  # busy: its last decision's features, only the (ignored) last action
                out[name] = {key: v.copy() for key, v in self._last_obs[name].items()}
                out[name]["action_mask"] = self._wait_only.copy()
        return out

    def _observation(self, decision: Decision) -> dict[str, np.ndarray]:
        return self.episode.observation(decision, self._chosen[decision.unit.world.name])

    def _empty_observation(self) -> dict[str, np.ndarray]:
        return empty_observation(self.observation_spaces[self.possible_agents[0]],
                                 self._wait_only)  # fmt: skip

    def _infos(self, terms: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
        common = self.episode.network_info()
        infos = {}
        for name in self.agents:
            i = self.episode.index[name]
            infos[name] = {
                "deciding": name in self._chosen,
                "n_feasible": int(self._chosen[name].size) if name in self._chosen else 0,
                "reward_terms": dict(terms[name]),
                "invalid_actions": int(self.episode.invalid[i]),
                "conflicts": int(self.episode.conflicts[i]),
                **common,
            }
        return infos
