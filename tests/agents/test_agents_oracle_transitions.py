"""The least slew of the slew-aware bound, against the twin's own slew model."""

import numpy as np
import pytest

from agents.oracle.transitions import (
    SKY_TURN_DEG_PER_S,
    changeover_s,
    least_gap_s,
    least_slew_s,
    max_slew_s,
)
from agents.oracle.variables import exit_changeover
from twin.astro.almanac import enu_vectors
from twin.ops.slew import slew_time_s
from twin.programme.requests import Constraints, ExposurePlan, Request
from twin.world.telescope import TELESCOPE_PRESETS as PRESETS


@pytest.mark.parametrize("preset", ["1m", "2m", "4m"])
def test_least_slew_is_below_every_move_of_that_angle(preset):
    """For 20,000 random pairs of pointings, the twin's slew (less the settle) is never
    shorter than the least slew of their great-circle angle, and comes within 25 % of it
    for some: the bound is neither wrong nor vacuous."""
    telescope = PRESETS[preset]
    rng = np.random.default_rng(3)
    alt0, alt1 = rng.uniform(15, 90, (2, 20_000))
    az0, az1 = rng.uniform(0, 360, (2, 20_000))
    cos = np.sum(enu_vectors(alt0, az0) * enu_vectors(alt1, az1), axis=-1)
    theta = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    moves = (
        np.array(
            [
                slew_time_s(telescope, a, z, b, w)
                for a, z, b, w in zip(alt0, az0, alt1, az1, strict=True)
            ]
        )
        - telescope.mount.settle_s
    )
    least = least_slew_s(telescope, theta)
    assert np.all(least <= moves + 1e-9)
    assert np.min(moves / least) < 1.25
    assert max_slew_s(telescope) >= moves.max() + telescope.mount.settle_s - 1e-9


def test_least_slew_is_subadditive_and_rises():
    """Why a chain of moves (aborted visits between two visits) is charged no more than
    one move over the whole angle."""
    telescope = PRESETS["4m"]
    a = np.geomspace(1e-4, 179.0, 400)
    h = least_slew_s(telescope, a)
    assert np.all(np.diff(h) > 0.0)
    x, y = np.meshgrid(a[::7], a[::7])
    total = x + y
    inside = total <= 180.0
    assert np.all(
        least_slew_s(telescope, x)[inside] + least_slew_s(telescope, y)[inside]
        >= least_slew_s(telescope, total[inside]) - 1e-9
    )


def _request(name, ra, dec, bands, visits=1, cadence=None):
    return Request(
        request_id=name,
        program="p",
        target_id=name,
        priority=1.0,
        ra_deg=ra,
        dec_deg=dec,
        plan=tuple(ExposurePlan(band=b, exptime_s=30.0) for b in bands),
        constraints=Constraints(),
        visits=visits,
        cadence_days=cadence,
    )


def test_changeover_by_the_band_a_visit_ends_in():
    """Two far-apart targets and a repeatable third: a visit ending in the next visit's
    first band pays the settle and the slew to its nearest successor; a visit ending in
    another band at least the filter change; a repeatable target may follow itself."""
    telescope = PRESETS["1m"]
    reqs = [
        _request("a", 10.0, -30.0, ["g", "r"]),
        _request("b", 70.0, -30.0, ["g", "r"]),
        _request("m", 200.0, -60.0, ["r", "r"], visits=0, cadence=0.1),
    ]
    after = changeover_s(telescope, reqs, np.array([False, False, True]))
    settle, change = telescope.mount.settle_s, telescope.filter_change_s
    # a ends in r: its successors start with g (b, ~52 deg away) or r (m, far): the
    # g-successor costs the filter change or the slew, whichever is longer.
    assert after["r"][0] >= max(change, settle)
    assert after["g"][0] > settle + 10.0  # ends in g: b is 52 deg away
    # m may follow itself: just the settle when it ends in r.
    assert after["r"][2] == pytest.approx(settle)
    assert after["g"][2] >= change


def test_least_gap_is_the_root_of_the_sky_turning_during_the_gap():
    """G = h(theta1 - omega G) + settle: at the root the gap just covers what is left of
    the angle, and 0 deg leaves the settle alone."""
    telescope = PRESETS["2m"]
    theta1 = np.array([0.0, 0.5, 5.0, 40.0, 170.0])
    gap = least_gap_s(telescope, theta1)
    left = np.maximum(theta1 - SKY_TURN_DEG_PER_S * gap, 0.0)
    settle = telescope.mount.settle_s
    assert gap[0] == pytest.approx(settle, abs=1e-6)
    np.testing.assert_allclose(gap, least_slew_s(telescope, left) + settle, atol=1e-6)
    assert np.all(gap <= least_slew_s(telescope, theta1) + settle)
    # Below the root (the upper end of a bisection bracket of it), within a millisecond.
    angles = np.random.default_rng(1).uniform(0.0, 180.0, 2000)
    lo, hi = np.zeros_like(angles), angles / SKY_TURN_DEG_PER_S + settle
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        left = np.maximum(angles - SKY_TURN_DEG_PER_S * mid, 0.0)
        above = mid >= least_slew_s(telescope, left) + settle
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    found = least_gap_s(telescope, angles)
    assert np.all(found <= hi) and np.all(found >= lo - 1e-3)


def test_a_cut_visit_is_charged_the_lesser_of_its_two_possible_last_bands():
    """A visit of g, r, i cut after its first exposure may end in g, or in r if the filter
    changed before the cut; one complete ends in i."""
    changeover = {"g": np.array([1.0, 9.0]), "r": np.array([5.0, 2.0]), "i": np.array([3.0, 4.0])}
    rows = np.array([0, 1])
    bands = ("g", "r", "i")
    np.testing.assert_array_equal(exit_changeover(bands, 1, changeover, rows), [1.0, 2.0])
    np.testing.assert_array_equal(exit_changeover(bands, 2, changeover, rows), [3.0, 2.0])
    np.testing.assert_array_equal(exit_changeover(bands, 3, changeover, rows), [3.0, 4.0])
    np.testing.assert_array_equal(exit_changeover(bands, 2, {}, rows), [0.0, 0.0])
