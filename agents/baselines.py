"""Baseline schedulers: random, greedy and priority dispatch.

All three choose among the candidates the constraint engine marks feasible, so every
comparison is like for like; they differ only in how they rank them.

- ``random``: uniform among feasible candidates (the floor any scheduler must beat).
- ``greedy``: the highest expected value per unit of telescope time, counting the slew:
  ``value x share_factor / (slew_s + visit_s)``, where ``value`` is priority times the
  expected quality and ``share_factor`` nudges programmes toward their time share
  (between 1/2 and 2: the ratio of target share to share used so far). With a pipeline
  on, greedy also uses what the network measured on this telescope's own frames (see
  :class:`GreedyPolicy`).
- ``priority``: dispatch by priority, as astroplan's PriorityScheduler orders blocks;
  equal priorities go to the candidate that sets soonest (it will be lost first), then
  to the shorter slew.

When nothing is feasible each waits ``idle_wait_s`` (the twin wakes it earlier when a new
request reaches the site).
"""

from __future__ import annotations

import numpy as np

from twin.ops.conditions import Conditions, Observe, Wait
from twin.ops.measured import expected_rejected


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
    """The highest ``value x share_factor / (slew_s + visit_s)`` (:func:`greedy_rate`).

    How it uses measured quality (a pipeline on, ``Conditions.measured``): the expected
    quality of every candidate is corrected by the telescope's measured/expected ratio of
    its latest frame in the last 30 minutes (:func:`twin.ops.measured.quality_ratio`:
    the quality stage's score over what the monitors promised for that frame: a drifted
    focus, a tracking fault or a cloud the all-sky camera missed pull it below 1).
    Candidates whose corrected quality is below their programme's ``min_frame_quality``
    are skipped while another candidate is feasible: the centre would reject their frames
    and repeat the visit, so the time is better spent on a programme that accepts them.
    The ratio is one factor for all of this telescope's candidates, so on its own it does
    not reorder them; it acts through the thresholds. When every candidate is expected to
    be rejected greedy still observes the best (the score is a measurement, not a
    certainty). Without a pipeline the ratio is 1 and no programme has a threshold:
    greedy is exactly the rate's argmax.
    """

    name = "greedy"

    def choose(self, conditions: Conditions, feasible: np.ndarray) -> int:
        rate = greedy_rate(conditions, feasible)
        rejected = expected_rejected(conditions, feasible)
        if rejected.any() and not rejected.all():
            rate = np.where(rejected, -np.inf, rate)
        return int(np.argmax(rate))


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
