"""The twin one decision at a time: the inverted control the learning envs need.

A Gymnasium env does not hand the twin a policy; it asks "who decides next, and what do
they see?" and later answers. :class:`SteppedTwin` runs the SimPy event loop until some
telescope reaches a decision point, parks that telescope on a SimPy event and returns
its :class:`~twin.ops.conditions.Conditions`; :meth:`SteppedTwin.act` resumes it with the
action. Telescopes that reach decisions at the same simulated time queue up and are
served in order, so the single-agent and multi-agent envs drive the same engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.ops.conditions import Action, Conditions, Observe, Wait
from twin.ops.network import CONFLICT_WAIT_S, NetworkTwin, TelescopeRun
from twin.ops.world import World


class _NullTable:
    def append(self, row: tuple) -> None:
        pass

    def write_columns(self, columns: dict) -> None:
        pass

    def flush(self) -> None:
        pass


class NullRecorder:
    """Discards the run's tables (training does not need them; metrics come from counters)."""

    def __getitem__(self, name: str) -> _NullTable:
        return _NullTable()

    def end_day(self, day: int) -> None:
        pass

    def discard(self) -> None:
        pass


class _External:
    """Placeholder policy: decisions are taken outside, through SteppedTwin."""

    name = "external"

    def reset(self, seed: np.random.SeedSequence) -> None:
        pass

    def decide(self, conditions: Conditions) -> Action:  # pragma: no cover - never called
        raise RuntimeError("decisions of a SteppedTwin are taken with SteppedTwin.act")


@dataclass
class Decision:
    unit: TelescopeRun
    conditions: Conditions


class SteppedTwin:
    """A NetworkTwin advanced decision by decision.

    ``recorder`` defaults to discarding tables; pass a :class:`~twin.ops.recorder.Recorder`
    to keep them. ``observer(unit, exposure)`` is called after every exposure. ``stages``
    (pipeline stages, :mod:`twin.pipeline`) run on every frame, as in ``skytwin run
    --pipeline``, so the decisions see ``Conditions.measured``.
    """

    def __init__(self, world: World, recorder=None, observer=None, stages=None) -> None:
        self.world = world
        self.twin = NetworkTwin(world, _External(), recorder or NullRecorder())
        self.twin.decisions = []
        self.twin.record_truth = recorder is not None
        if observer is not None:
            self.twin.add_observer(observer)
        if stages:
            from twin.pipeline.loop import SitePipeline

            self.twin.pipeline = SitePipeline(self.twin, list(stages), world.scenario.pipeline)
        self.twin.start()
        self.current: Decision | None = None
        self._claimed_at, self._claimed = -1.0, set()  # requests chosen at this instant

    @property
    def mjd(self) -> float:
        return self.twin.mjd()

    def next_decision(self) -> Decision | None:
        """Advance to the next decision point (None: the run has ended)."""
        if self.current is not None:
            return self.current
        env, queue, end_s = self.twin.env, self.twin.decisions, self.twin.end_s
        while not queue:
            if env.peek() >= end_s:
                return None
            env.step()
        unit, conditions, _event = queue[0]
        self.current = Decision(unit, conditions)
        return self.current

    def next_decisions(self) -> list[Decision]:
        """Advance to the next decision point and return every decision pending at that
        simulated time, in the order :meth:`act` serves them (empty: the run has ended).

        The events left at the same instant are run first, so every telescope that
        reaches a decision at this time is in the list: the multi-agent envs let them
        choose together. Answer them with ``next_decision()`` / ``act()`` in turn.
        """
        if self.next_decision() is None:
            return []
        env = self.twin.env
        while env.peek() <= env.now:
            env.step()
        rest = self.twin.decisions[1:]
        return [self.current, *(Decision(unit, conditions) for unit, conditions, _ in rest)]

    def act(self, action: Action) -> bool:
        """Answer the current decision; the telescope resumes when the loop next steps.

        Returns False when ``action`` observes a request that a telescope deciding at
        this same instant has already chosen: its Conditions were built before that
        choice, so the engine cannot yet see it taken. The telescope then waits
        ``CONFLICT_WAIT_S`` instead (counted in ``twin.counters.conflicts``) and decides
        again, so callers must not credit the visit.
        """
        if self.current is None:
            raise RuntimeError("no decision is waiting: call next_decision() first")
        _, conditions, event = self.twin.decisions.pop(0)
        accepted = True
        cand = conditions.candidates
        if isinstance(action, Observe) and 0 <= action.candidate < len(cand):
            row = int(cand.request_index[action.candidate])
            now = self.twin.env.now
            if self._claimed_at != now:
                self._claimed_at, self._claimed = now, set()
            if row in self._claimed:
                self.twin.counters.conflicts += 1
                action, accepted = Wait(CONFLICT_WAIT_S), False
            else:
                self._claimed.add(row)
        event.succeed(action)
        self.current = None
        return accepted
