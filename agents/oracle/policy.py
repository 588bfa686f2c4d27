""":class:`OraclePolicy`: replays the oracle's plan in the twin, greedy where it has nothing
to do.

Part of :mod:`agents.oracle` (the formulation is in its docstring).
"""

from __future__ import annotations

import math

import numpy as np

from agents.baselines import GreedyPolicy
from agents.oracle.milp import OracleResult, oracle_bound
from agents.oracle.slots import S_PER_DAY
from twin.ops.conditions import Conditions, Observe, Wait
from twin.ops.world import World
from twin.scenario import Scenario

ALERT_MATCH_DEG = 0.1
"""How close (deg) a candidate must stand to an alert target to be taken for it."""


class OraclePolicy:
    """Replays the oracle's plan in the twin; greedy where the plan has nothing to do.

    Description: plans are solved once per night (:func:`oracle_bound`), the first time a
    telescope decides in it. At each decision, among the feasible candidates planned at
    this telescope from ``lookback_slots`` slots ago to ``lookahead_slots`` ahead and not
    yet taken, it takes the best by greedy's rate (value per second, slew included);
    with none, greedy (:class:`agents.baselines.GreedyPolicy`) among the feasible
    candidates no telescope has planned for later; with none of those either, it waits
    for its next planned visit. Planned visits left more than ``lookback_slots`` behind
    are given up (the plan ignores slews, so a telescope falls behind it).

    The oracle needs the World (the truth). :class:`~twin.ops.network.NetworkTwin` calls
    :meth:`bind` with it before ``reset``; it can also be given at construction
    (``world=``, or ``scenario=`` to draw it from the run's seed at ``reset``) and
    ``results=`` replays saved plans (``{night: OracleResult}``). Without a world it is
    greedy. This policy sees the truth: it is a reference, not a fair competitor, and
    its runs are reproducible only when the MILP finishes within ``time_limit_s`` (a
    plan found at a time limit depends on the machine's speed).

    Arguments:

    | name            | unit | default | meaning                                     |
    |-----------------|------|---------|---------------------------------------------|
    | world           |      | None    | the run's World (else bound by the twin)    |
    | scenario        |      | None    | draw the World at ``reset`` instead         |
    | slot_min        | min  | 5       | the oracle's slot length                    |
    | time_limit_s    | s    | 60      | budget of each night's plan                 |
    | lookahead_slots |      | 2       | planned visits taken this many slots early  |
    | lookback_slots  |      | 3       | and until this many slots late              |
    | idle_wait_s     | s    | 300     | wait when nothing is feasible               |
    | oracle_kwargs   |      | None    | more keyword arguments of ``oracle_bound``  |
    | results         |      | None    | plans already solved, by night              |
    """

    name = "oracle"

    def __init__(
        self,
        world: World | None = None,
        scenario: Scenario | None = None,
        slot_min: float = 5.0,
        time_limit_s: float = 60.0,
        lookahead_slots: int = 2,
        lookback_slots: int = 3,
        idle_wait_s: float = 300.0,
        oracle_kwargs: dict | None = None,
        results: dict[int, OracleResult] | None = None,
    ) -> None:
        self.world = world
        self.scenario = scenario
        self.slot_min = slot_min
        self.time_limit_s = time_limit_s
        self.lookahead_slots = lookahead_slots
        self.lookback_slots = lookback_slots
        self.idle_wait_s = idle_wait_s
        self.oracle_kwargs = oracle_kwargs or {}
        self.results: dict[int, OracleResult] = dict(results or {})
        self._greedy = GreedyPolicy(idle_wait_s)
        self._pending: dict[tuple[int, str], list[list]] = {}
        self._alert_ids: dict[int, str] = {}

    def bind(self, world: World) -> None:
        """Give the policy the run's World (the twin calls this before ``reset``)."""
        self.world = world
        self._pending.clear()
        self._alert_ids.clear()

    def reset(self, seed: np.random.SeedSequence) -> None:
        self._greedy.reset(seed)
        if self.world is None and self.scenario is not None:
            entropy = seed.entropy if isinstance(seed.entropy, int) else None
            self.bind(World(self.scenario, entropy))

    def decide(self, conditions: Conditions) -> Observe | Wait:
        c = conditions.candidates
        feasible = np.flatnonzero(c.feasible)
        if feasible.size == 0:
            return Wait(self.idle_wait_s)
        night = self._night(conditions)
        if night is None:
            return Observe(int(feasible[self._greedy.choose(conditions, feasible)]))
        pending = self._plan(night, conditions.telescope.name)
        ids = [self._request_id(conditions, int(k)) for k in feasible]
        slot_d = self.slot_min / 1440.0
        lo = conditions.mjd - self.lookback_slots * slot_d
        hi = conditions.mjd + self.lookahead_slots * slot_d
        due = {item[1]: item for item in pending if lo <= item[0] <= hi}
        pool = np.array([k for k, rid in zip(feasible, ids, strict=True) if rid in due])
        if pool.size == 0:
            later = [item for item in pending if item[0] > hi]
            planned = {
                item[1]
                for (n, _), items in self._pending.items()
                if n == night
                for item in items
                if item[0] > lo
            }
            pool = np.array([k for k, rid in zip(feasible, ids, strict=True) if rid not in planned])
            if pool.size == 0:  # keep the planned visits for their time
                next_s = (min(item[0] for item in later) - hi) * S_PER_DAY if later else 0.0
                return Wait(min(self.idle_wait_s, max(60.0, next_s)))
        k = int(pool[self._greedy.choose(conditions, pool)])
        chosen = ids[int(np.flatnonzero(feasible == k)[0])]
        if chosen in due:
            pending.remove(due[chosen])
        return Observe(k)

    # -- helpers ---------------------------------------------------------------------------
    def _night(self, conditions: Conditions) -> int | None:
        if self.world is None:
            return None
        for tw in self.world.telescopes:
            if tw.name == conditions.telescope.name:
                for win in tw.site.nights:
                    if win.start_mjd <= conditions.mjd < win.end_mjd:
                        return win.night
        return None

    def _plan(self, night: int, telescope: str) -> list[list]:
        if night not in self.results:
            self.results[night] = oracle_bound(
                self.world, night, self.slot_min, self.time_limit_s, **self.oracle_kwargs
            )
        if (night, telescope) not in self._pending:
            result = self.results[night]
            for name, items in result.plan.items():
                self._pending[(night, name)] = [
                    [t, result.requests[row].request_id] for t, row in items
                ]
        return self._pending.setdefault((night, telescope), [])

    def _request_id(self, conditions: Conditions, k: int) -> str:
        """The request id of candidate ``k``: the world's requests are the queue's first
        rows; alert requests are told apart by priority and where their target stands."""
        row = int(conditions.candidates.request_index[k])
        if row < len(self.world.requests):
            return self.world.requests[row].request_id
        if row not in self._alert_ids:
            self._alert_ids[row] = self._match_alert(conditions, k)
        return self._alert_ids[row]

    def _match_alert(self, conditions: Conditions, k: int) -> str:
        """The oracle's alert request with the candidate's priority whose target stands
        where the candidate's does: the engine gives the altitude after the slew and the
        azimuth at the decision."""
        c = conditions.candidates
        site = next(s for s in self.world.sites if s.site.name == conditions.telescope.site)
        after_slew = conditions.mjd + float(c.slew_s[k]) / S_PER_DAY
        best, best_d = f"row-{int(c.request_index[k])}", ALERT_MATCH_DEG
        n_world = len(self.world.requests)
        extra = {r.request_id: r for res in self.results.values() for r in res.requests[n_world:]}
        for request in extra.values():
            if not math.isclose(request.priority, float(c.priority[k])):
                continue
            alt, _, _ = site.visibility.altaz(request.ra_deg, request.dec_deg, after_slew)
            _, az, _ = site.visibility.altaz(request.ra_deg, request.dec_deg, conditions.mjd)
            d_az = (float(az) - float(c.az_deg[k]) + 180.0) % 360.0 - 180.0
            d = math.hypot(float(alt) - float(c.alt_deg[k]), d_az * math.cos(math.radians(alt)))
            if d < best_d:
                best, best_d = request.request_id, d
        return best
