"""Measured quality in the scheduler's units, and greedy's use of it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agents.baselines import GreedyPolicy
from twin.ops.conditions import Candidates, MeasuredFrame
from twin.ops.measured import MAX_AGE_MIN, expected_quality, expected_rejected, quality_ratio

MJD = 61_000.3


def _candidates(quality, program_index, priority):
    n = len(quality)
    f = np.ones(n)
    q = np.asarray(quality, float)
    p = np.asarray(priority, float)
    return Candidates(
        np.arange(n), p, np.asarray(program_index), np.zeros(n, bool), f * 60, f * 180, f, f,
        f * 0, f * 90, f * 30, f * 300, q, p * q, f * 5, -np.ones(n, int), np.zeros(n, int),
        np.ones(n, bool),
    )  # fmt: skip


def _conditions(measured=None, floor=(0.5, 0.0), quality=(0.8, 0.6), program=(0, 1),
                priority=(3.0, 1.0), age_min=5.0):  # fmt: skip
    frames = {}
    if measured is not None:
        score, expected = measured
        frames["t1"] = MeasuredFrame(MJD - age_min / 1440.0, 7, score, 1.2, (), expected)
    return SimpleNamespace(
        mjd=MJD, telescope=SimpleNamespace(name="t1"), measured=frames,
        candidates=_candidates(quality, program, priority),
        program_min_quality=np.asarray(floor, float),
        program_share_target=np.array([0.5, 0.5]), program_share_used=np.array([0.5, 0.5]),
    )  # fmt: skip


def test_the_ratio_is_measured_over_expected_and_neutral_without_a_fresh_measurement():
    assert quality_ratio(_conditions((40.0, 0.8))) == pytest.approx(0.5)
    assert quality_ratio(_conditions()) == 1.0
    assert quality_ratio(_conditions((40.0, 0.8), age_min=MAX_AGE_MIN + 1)) == 1.0
    assert quality_ratio(_conditions((float("nan"), 0.8))) == 1.0
    assert quality_ratio(_conditions((40.0, float("nan")))) == 1.0
    assert quality_ratio(_conditions((1.0, 0.01))) == 1.0  # expected too little to tell
    assert quality_ratio(_conditions((0.0, 0.8))) == pytest.approx(0.05)  # clipped
    np.testing.assert_allclose(expected_quality(_conditions((40.0, 0.8))), [0.4, 0.3])


def test_candidates_below_their_programme_threshold_are_expected_rejected():
    np.testing.assert_array_equal(expected_rejected(_conditions()), [False, False])
    np.testing.assert_array_equal(expected_rejected(_conditions((40.0, 0.8))), [True, False])
    none = _conditions((40.0, 0.8), floor=(0.0, 0.0))
    np.testing.assert_array_equal(expected_rejected(none), [False, False])


def test_greedy_skips_a_visit_whose_frames_the_centre_would_reject():
    greedy = GreedyPolicy()
    feasible = np.array([0, 1])
    assert greedy.choose(_conditions(), feasible) == 0  # higher priority x quality
    assert greedy.choose(_conditions((40.0, 0.8)), feasible) == 1  # 0 would be rejected
    # Every candidate rejected: greedy still observes its best.
    both = _conditions((10.0, 0.8), floor=(0.5, 0.5))
    assert greedy.choose(both, feasible) == 0
