"""``skytwin/Network-v0``: one scheduler for the whole network, as a Gymnasium env."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs import features as F
from envs.episode import (
    TERMS,
    Episode,
    EpisodeEnv,
    check_spread,
    draw_world,
    empty_observation,
    replay,
    replayable_state,
)
from twin.ops.stepping import Decision
from twin.pipeline.stage import PipelineStage
from twin.scenario import Scenario, check_replay_log, load_scenario

DEFAULT_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "global-3site.yaml"
DEFAULT_REWARD_WEIGHTS = {"science": 1.0, "alert": 2.0, "idle": 0.5, "slew": 0.5}
FEATURE_BOUND = 100.0  # features are scaled to about [-2, 2]; the bound only guards
_REPLAYED = ("_decision",)  # rebuilt by replaying the actions on unpickling


def observation_space(n_telescopes: int, n_sites: int, n_candidates: int,
                      measured: bool = False) -> spaces.Dict:  # fmt: skip
    """The observation space of a network of this size (the env's, and what a saved
    policy's manifest is checked against when it is loaded); ``measured`` adds the
    per-telescope pipeline measurements (an env with a pipeline)."""

    def box(*shape: int) -> spaces.Box:
        return spaces.Box(-FEATURE_BOUND, FEATURE_BOUND, shape=shape, dtype=np.float32)

    keys = {
        "time": box(len(F.TIME_FEATURES)),
        "site": box(len(F.SITE_FEATURES)),
        "forecast": box(len(F.FORECAST_LEADS_H) * len(F.FORECAST_FIELDS)),
        "network": box(len(F.NETWORK_FEATURES) * n_sites),
        "telescope": box(n_telescopes + 2),
        "candidates": box(n_candidates, len(F.CANDIDATE_FEATURES)),
        "action_mask": spaces.MultiBinary(n_candidates + 1),
    }  # fmt: skip
    if measured:
        keys["measured"] = box(n_telescopes, len(F.MEASURED_FEATURES))
    return spaces.Dict(keys)


def _stages(scenario: Scenario, pipeline: Sequence[str | PipelineStage] | None
            ) -> list[PipelineStage]:  # fmt: skip
    """The env's pipeline stages: ``pipeline`` (names or stage objects) or, when None, the
    scenario's ``pipeline.stages``, found through the ``skytwin.stages`` entry points."""
    from twin.pipeline.registry import resolve_stage

    names = scenario.pipeline.stages if pipeline is None else pipeline
    source = "pipeline.stages" if pipeline is None else "pipeline"
    return [resolve_stage(s, source) if isinstance(s, str) else s for s in names]


class NetworkEnv(EpisodeEnv, gym.Env):
    """Schedule a telescope network, one decision at a time.

    ## Description
    The twin (:mod:`twin.ops`) simulates a network of telescopes through one or more
    nights: weather closes domes, equipment fails, alerts arrive. Whenever any telescope
    is free to start a new visit, the episode pauses and the agent chooses for *that*
    telescope one of the ``n_candidates`` best feasible requests (ranked by the greedy
    score; infeasible ones are never offered) or to wait. The observation is built from
    the twin's ``Conditions`` only: measurements and forecasts, never the future truth.

    ## Observation space
    A ``Dict``:

    | key         | shape                  | content (scaled)                                       |
    |-------------|------------------------|--------------------------------------------------------|
    | time        | (4,)                   | sin/cos of the UTC day, hours left in the night / 12, fraction of night left |
    | site        | (6,)                   | deciding site now: seeing/2", transparency, cloud cover, sun alt/90, moon alt/90, moon illumination |
    | forecast    | (6,)                   | deciding site at +1, +2, +4 h: seeing/2", transparency |
    | network     | (3 n_sites,)           | every site: is night, dome open, transparency          |
    | telescope   | (n_telescopes + 2,)    | one-hot of the deciding telescope, its alt/90, az/360  |
    | candidates  | (n_candidates, 13)     | per candidate: see ``envs.features.CANDIDATE_FEATURES`` |
    | action_mask | (n_candidates + 1,)    | 1 where the action is valid (the last entry: wait)     |
    | measured    | (n_telescopes, 12)     | with a pipeline only: per telescope, the latest frame measurement the centre received (``envs.features.MEASURED_FEATURES``) |

    With a pipeline (``pipeline=`` or the scenario's ``pipeline:`` section) every
    exposure's frame is rendered and scored by the stages as in ``skytwin run
    --pipeline``; the centre rejects frames below their programme's threshold and
    repeats the visit, and the observation gains ``measured``: what the network measured
    from its own pixels, the "recent data quality per telescope" a real scheduler sees.

    ## Action space
    ``Discrete(n_candidates + 1)``: ``k < n_candidates`` observes candidate ``k``; the
    last action waits 5 minutes (the twin wakes the telescope early if a new request
    arrives). Masked actions are invalid; ``action_masks()`` returns the mask for
    sb3-contrib's MaskablePPO. An invalid action is treated as waiting and counted in
    ``info["invalid_actions"]``.

    ## Rewards
    The sum of named terms, weights settable at ``gymnasium.make(..., reward_weights=)``:

    | term    | default | per step                                                          |
    |---------|---------|-------------------------------------------------------------------|
    | science | 1.0     | priority x expected quality (from the conditions measured at the decision) of every exposure the network finished since the previous step, divided by the visit's exposures |
    | alert   | 2.0     | +1 for each alert whose first follow-up exposure was taken since the previous step |
    | idle    | 0.5     | -hours waited when a feasible candidate was offered                |
    | slew    | 0.5     | -hours of slew of the chosen visit                                 |

    ``info["reward_terms"]`` holds the unweighted terms of the step.

    ## Episode end
    Terminates when the scenario's ``nights`` have been simulated. Truncation is by the
    registration's ``max_episode_steps`` (``gymnasium.make``'s TimeLimit).

    ## Arguments

    | name           | default              | meaning                                        |
    |----------------|----------------------|------------------------------------------------|
    | scenario       | global-3site.yaml    | path or ``Scenario``                           |
    | nights         | 1                    | nights per episode                             |
    | start          | scenario's           | first night's date (YYYY-MM-DD)                |
    | n_candidates   | 16                   | candidates offered per decision                |
    | reward_weights | DEFAULT_REWARD_WEIGHTS | overrides of the term weights               |
    | seed_worlds    | True                 | each reset draws a new weather/equipment seed from the env's RNG; False reuses the scenario's seed |
    | pipeline       | scenario's stages    | stage names or ``PipelineStage`` objects run on every frame; [] for none |
    | start_spread_days | 0                 | each reset starts ``start`` + U{0..spread-1} days (365: every season); 0: always ``start`` |

    ## Version history
    * v0: first version.
    """

    metadata: ClassVar[dict] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, scenario: str | Path | Scenario = DEFAULT_SCENARIO, nights: int = 1,
                 start: str | None = None, n_candidates: int = 16,
                 reward_weights: dict[str, float] | None = None, seed_worlds: bool = True,
                 render_mode: str | None = None,
                 pipeline: Sequence[str | PipelineStage] | None = None,
                 start_spread_days: int = 0) -> None:  # fmt: skip
        self.start_spread_days = check_spread(start_spread_days)
        if isinstance(scenario, Scenario):
            base = scenario.model_copy(update={"nights": nights, **({"start": start} if start
                                                                    else {})})  # fmt: skip
        else:
            base = load_scenario(scenario, nights=nights, start=start)
        if base.start == "tonight":
            raise ValueError("give a fixed start date for the env (start='YYYY-MM-DD')")
        if self.start_spread_days and base.weather.log:  # fail here, not at some reset
            last = date.fromisoformat(base.start) + timedelta(days=self.start_spread_days - 1)
            check_replay_log(base.model_copy(update={"start": last.isoformat()}),
                             Path(base.weather.log), "start_spread_days",
                             too_long="start_spread_days")  # fmt: skip
        unknown = set(reward_weights or {}) - set(DEFAULT_REWARD_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown reward terms {sorted(unknown)}; allowed: "
                             f"{sorted(DEFAULT_REWARD_WEIGHTS)}")  # fmt: skip
        self.scenario = base
        self.k = int(n_candidates)
        self.weights = {**DEFAULT_REWARD_WEIGHTS, **(reward_weights or {})}
        self.seed_worlds = seed_worlds
        self.render_mode = render_mode
        self.telescope_names = [t.name for s in base.sites for t in s.telescopes]
        self.site_names = [s.resolved.name for s in base.sites]
        n_tel, n_sites = len(self.telescope_names), len(self.site_names)
        self.stages = _stages(base, pipeline)
        self.observation_space = observation_space(n_tel, n_sites, self.k, bool(self.stages))
        self.action_space = spaces.Discrete(self.k + 1)
        self.episode: Episode | None = None
        self._decision: Decision | None = None
        self._chosen = np.empty(0, dtype=np.int64)
        self._mask = np.zeros(self.k + 1, dtype=np.int8)

    # -- gymnasium API ----------------------------------------------------------------
    def step(self, action: int) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        if self._decision is None:
            raise RuntimeError("call reset() before step()")
        episode = self.episode
        episode.actions.append(int(action))
        terms = dict.fromkeys(TERMS, 0.0)
        terms.update(episode.answer(self._decision, self._chosen, action))
        episode.clear_earned()
        terminated = self._advance()
        terms["science"], terms["alert"] = episode.earned_total
        reward = sum(self.weights[k] * v for k, v in terms.items())
        info = self._info(terms)
        return self._observation(), float(reward), terminated, False, info

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict, dict[str, Any]]:  # fmt: skip
        super().reset(seed=seed)
        self._start(*draw_world(self.np_random, self.scenario, self.seed_worlds,
                                self.start_spread_days))  # fmt: skip
        return self._observation(), self._info({})

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._decision is None:
            return None
        d = self._decision
        return (f"MJD {d.conditions.mjd:.5f} {d.unit.world.name}: "
                f"{int(self._mask[:-1].sum())} candidates")  # fmt: skip

    def close(self) -> None:
        self.episode = None
        self._decision = None

    # -- sb3-contrib -------------------------------------------------------------------
    def action_masks(self) -> np.ndarray:
        return self._mask.astype(bool)

    # -- pickling ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The running simulation (SimPy generators) cannot be pickled: keep the world's
        seed and the actions since ``reset`` instead, and replay them when unpickled (the
        same seed gives the same run, so the copy continues exactly as the original)."""
        return replayable_state(self, _REPLAYED)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._decision = None
        replay(self, state)

    # -- internals -----------------------------------------------------------------------
    def _start(self, world_seed: int, scenario: Scenario) -> None:
        """A fresh twin of the world drawn from ``world_seed``, run to its first decision."""
        self.episode = Episode(scenario, world_seed, self.telescope_names, self.stages,
                               self.k)  # fmt: skip
        self._advance()

    def _advance(self) -> bool:
        """Run the twin to the next decision; True when the episode has ended."""
        self._decision = self._stepped.next_decision()
        if self._decision is None:
            self._chosen = np.empty(0, dtype=np.int64)
            self._mask = np.zeros(self.k + 1, dtype=np.int8)
            self._mask[-1] = 1
            return True
        self._chosen = F.rank_candidates(self._decision.conditions, self.k)
        self._mask = F.action_mask(self._chosen.size, self.k)
        return False

    def _observation(self) -> dict[str, np.ndarray]:
        if self._decision is None:
            return empty_observation(self.observation_space, self._mask)
        return self.episode.observation(self._decision, self._chosen)

    def _info(self, terms: dict[str, float]) -> dict[str, Any]:
        d = self._decision
        info = self.episode.network_info()
        return {
            **info,
            "telescope": d.unit.world.name if d else "",
            "mjd": d.conditions.mjd if d else info["mjd"],
            "reward_terms": dict(terms),
            "invalid_actions": int(self.episode.invalid.sum()),
            "n_feasible": int(self._chosen.size) if d else 0,
        }
