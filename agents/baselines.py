"""Baseline schedulers: random, greedy and priority dispatch.

All three choose among the candidates the constraint engine marks feasible, so every
comparison is like for like; they differ only in how they rank them.

- ``random``: uniform among feasible candidates (the floor any scheduler must beat).
- ``greedy``: the highest expected value per unit of telescope time, counting the slew:
  ``value x share_factor / (slew_s + visit_s)``, where ``value`` is priority times the
  expected quality and ``share_factor`` nudges programmes toward their time share
  (between 1/2 and 2: the ratio of target share to share used so far).
- ``priority``: dispatch by priority, as astroplan's PriorityScheduler orders blocks;
  equal priorities go to the candidate that sets soonest (it will be lost first), then
  to the shorter slew.

When nothing is feasible each waits ``idle_wait_s`` (the twin wakes it earlier when a new
request reaches the site).
"""

from __future__ import annotations

import numpy as np

from twin.ops.conditions import Conditions, Observe, Wait


class _Baseline:
    name = "baseline"

    def __init__(self, idle_wait_s: float = 300.0) -> None:
        self.idle_wait_s = idle_wait_s

    def reset(self, seed: np.random.SeedSequence) -> None:
        self.rng = np.random.default_rng(seed)

    def decide(self, conditions: Conditions) -> Observe | Wait:
        feasible = np.flatnonzero(conditions.candidates.feasible)
        if feasible.size == 0:
            return Wait(self.idle_wait_s)
        return Observe(int(feasible[self.choose(conditions, feasible)]))

    def choose(self, conditions: Conditions, feasible: np.ndarray) -> int:
        raise NotImplementedError


class RandomPolicy(_Baseline):
    name = "random"

    def choose(self, conditions: Conditions, feasible: np.ndarray) -> int:
        return int(self.rng.integers(feasible.size))


def share_factor(conditions: Conditions, program_index: np.ndarray) -> np.ndarray:
    """Target share / used share of each candidate's programme, clipped to [0.5, 2]."""
    target = conditions.program_share_target[program_index]
    used = conditions.program_share_used[program_index]
    return np.clip(target / np.maximum(used, 1e-3), 0.5, 2.0)


class GreedyPolicy(_Baseline):
    name = "greedy"

    def choose(self, conditions: Conditions, feasible: np.ndarray) -> int:
        return int(np.argmax(greedy_rate(conditions, feasible)))


def greedy_rate(conditions: Conditions, feasible: np.ndarray,
                share: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Greedy's score of the ``feasible`` rows: ``value x share_factor / (slew_s + visit_s)``
    (``share``: their share factors, if already computed)."""
    c = conditions.candidates
    if share is None:
        share = share_factor(conditions, c.program_index[feasible])
    return c.value[feasible] * share / (c.slew_s[feasible] + c.visit_s[feasible])


class PriorityPolicy(_Baseline):
    name = "priority"

    def choose(self, conditions: Conditions, feasible: np.ndarray) -> int:
        c = conditions.candidates
        # lexsort: last key is primary.
        order = np.lexsort((c.slew_s[feasible], c.setting_h[feasible], -c.priority[feasible]))
        return int(order[0])
