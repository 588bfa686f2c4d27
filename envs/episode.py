"""One episode of the stepped twin, as both envs see it: the shared core of
:class:`~envs.network_env.NetworkEnv` and :class:`~envs.multi_env.NetworkParallelEnv`.

Why a core: the two envs differ only in who answers a decision (one agent for every
telescope in turn, or one agent per telescope at once) and how the reward is split. The
world's start, the credit of science and alerts as exposures end, the answer to one
decision (observe a ranked candidate or wait, invalid and conflicting actions counted),
the observation of one decision, the network-wide part of the info and the replay that
makes an env picklable are the same, and live here once: a change to the reward or to a
decision's effect cannot reach one env and miss the other.

Credit is kept per telescope (the multi-agent rewards) and, for the single-agent env, as
a network total added in the order the exposures end, so its reward is the same float,
bit for bit, as before the core existed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np

from envs import features as F
from twin.ops.conditions import Observe, Wait
from twin.ops.exposures import Exposure
from twin.ops.stepping import Decision, SteppedTwin
from twin.ops.world import World
from twin.pipeline.stage import PipelineStage
from twin.scenario import Scenario

WAIT_S = 300.0
"""The wait an agent's last action (or an invalid one) stands for, seconds."""
TERMS = ("science", "alert", "idle", "slew")
"""The reward terms, weighted by the env's ``reward_weights``."""


class Episode:
    """The twin of one world, run decision by decision (module docstring).

    ``telescope_names`` fixes the order of the per-telescope arrays (the agents' order).
    """

    def __init__(self, scenario: Scenario, world_seed: int, telescope_names: Sequence[str],
                 stages: Sequence[PipelineStage], k: int) -> None:  # fmt: skip
        self.world_seed = world_seed
        self.scenario = scenario
        self.k = k
        self.names = list(telescope_names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.measured_names = self.names if stages else None
        self.actions: list[Any] = []  # every step's action(s) since the start: the replay
        self.world = World(scenario, seed=world_seed)
        n = len(self.names)
        self.visit_quality = np.zeros(n)  # true quality of each telescope's current visit
        self.earned = np.zeros((n, 2))  # science, alert per telescope since the last step
        self.earned_total = [0.0, 0.0]  # the same over the network, in exposure order
        self.invalid = np.zeros(n, dtype=np.int64)
        self.conflicts = np.zeros(n, dtype=np.int64)
        self.stepped = SteppedTwin(self.world, observer=self._on_exposure, stages=list(stages))

    # -- rewards ---------------------------------------------------------------------------
    def clear_earned(self) -> None:
        """Start a new step's credit."""
        self.earned[:] = 0.0
        self.earned_total = [0.0, 0.0]

    def _on_exposure(self, unit, exposure: Exposure) -> None:
        """Credit an ended exposure: its share of the visit's science value (priority x the
        visit's true quality / exposures in the visit), and 1 when it was the first
        follow-up exposure of an alert."""
        i = self.index[unit.world.name]
        queue = self.stepped.twin.queue
        row = exposure.request_row
        science = queue.priority[row] * self.visit_quality[i] / exposure.n_exposures
        self.earned[i, 0] += science
        self.earned_total[0] += science
        alert_id = queue.requests[row].alert_id
        if alert_id:
            state = self.stepped.twin.alerts[alert_id]
            if state.first_followup_mjd == exposure.mjd_start:  # this exposure was the first
                self.earned[i, 1] += 1.0
                self.earned_total[1] += 1.0

    # -- one decision ----------------------------------------------------------------------
    def answer(self, decision: Decision, chosen: np.ndarray, action: Any) -> dict[str, float]:
        """Carry out ``action`` for ``decision`` (an index into ``chosen``, the offered
        candidates; ``k`` or anything not offered waits ``WAIT_S`` and, unless ``k``,
        counts as invalid); returns the agent's ``idle`` / ``slew`` terms."""
        i = self.index[decision.unit.world.name]
        a = -1 if action is None else int(action)
        if not (0 <= a < chosen.size or a == self.k):  # masked or missing
            self.invalid[i] += 1
            a = self.k
        if a == self.k:
            self.stepped.act(Wait(WAIT_S))
            return {"idle": -WAIT_S / 3600.0} if chosen.size else {}
        cand = decision.conditions.candidates
        index = int(chosen[a])
        if not self.stepped.act(Observe(index)):  # taken at this instant by another telescope
            self.conflicts[i] += 1
            return {}
        self.visit_quality[i] = float(cand.quality[index])
        return {"slew": -float(cand.slew_s[index]) / 3600.0}

    def observation(self, decision: Decision, chosen: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of one telescope's decision (:func:`envs.features.observation`)."""
        c, unit = decision.conditions, decision.unit
        night_start = F.night_start_mjd(unit.world.site.nights, c.mjd)
        return F.observation(c, unit.index, len(self.names), self.k, night_start, chosen,
                             self.measured_names)  # fmt: skip

    # -- info ------------------------------------------------------------------------------
    def network_info(self) -> dict[str, Any]:
        """The info entries every agent shares."""
        twin = self.stepped.twin
        return {
            "mjd": twin.mjd(),
            "exposures": twin.counters.exposures,
            "visits": twin.counters.visits,
            "world_seed": self.world.seed,
            "alerts_followed": sum(
                not math.isnan(a.first_followup_mjd) for a in twin.alerts.values()
            ),
        }


class EpisodeEnv:
    """What both envs expose of their running :class:`Episode` (``self.episode``)."""

    episode: Episode | None

    @property
    def world(self) -> World:
        """The world (truth) of the running episode."""
        return self.episode.world

    @property
    def _stepped(self) -> SteppedTwin:
        return self.episode.stepped


def draw_world(rng: np.random.Generator, scenario: Scenario, seed_worlds: bool,
               start_spread_days: int) -> tuple[int, Scenario]:  # fmt: skip
    """The world seed and the scenario of a new episode.

    ``seed_worlds``: a fresh weather/equipment seed from ``rng`` (else the scenario's).
    ``start_spread_days`` > 0: the first night is ``scenario.start`` plus a uniform
    0..spread-1 days, so a policy trained over a year sees every season (night length,
    the moon, which targets are up); 0 draws nothing, so the env's stream of worlds is
    what it was without the option."""
    world_seed = int(rng.integers(2**31 - 1)) if seed_worlds else scenario.seed
    if start_spread_days > 0:
        offset = timedelta(days=int(rng.integers(start_spread_days)))
        day = date.fromisoformat(scenario.start) + offset
        scenario = scenario.model_copy(update={"start": day.isoformat()})
    return world_seed, scenario


def check_spread(start_spread_days: object) -> int:
    """``start_spread_days`` as an int >= 0, or a ValueError naming the allowed values."""
    if (
        isinstance(start_spread_days, bool)
        or not isinstance(start_spread_days, int | np.integer)
        or start_spread_days < 0
    ):
        raise ValueError(f"start_spread_days must be an integer >= 0 (0: every episode starts "
                         f"on the scenario's date), got {start_spread_days!r}")  # fmt: skip
    return int(start_spread_days)


def empty_observation(space, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Zeros in every key of ``space`` and ``mask`` as the action mask (an episode's end,
    or a telescope with no decision yet)."""
    obs = {key: np.zeros(s.shape, dtype=np.float32) for key, s in space.spaces.items()}
    obs["action_mask"] = mask.copy()
    return obs


def replayable_state(env: Any, rebuilt: Sequence[str]) -> dict[str, Any]:
    """``env.__dict__`` without the running simulation (SimPy generators cannot be
    pickled) and what ``rebuilt`` names; the episode's world seed and actions stay, so
    :func:`replay` continues exactly where the original was (same seed, same run)."""
    state = {k: v for k, v in env.__dict__.items() if k not in ("episode", *rebuilt)}
    episode = env.__dict__.get("episode")
    if episode is not None:
        state["_replay"] = (episode.world_seed, episode.scenario.start, list(episode.actions))
    return state


def replay(env: Any, state: dict[str, Any]) -> None:
    """Restore an env pickled with :func:`replayable_state`: start its world again and
    step through the actions it had taken."""
    saved = state.pop("_replay", None)
    env.__dict__.update(state)
    env.episode = None
    if saved is not None:
        world_seed, start, actions = saved
        env._start(world_seed, env.scenario.model_copy(update={"start": start}))
        for action in actions:
            env.step(action)
