"""Slew times against hand-computed figures.

The 1m preset: v = 3 deg/s per axis, a = 1 deg/s², settle 5 s, dome 4 deg/s, filter
change 10 s, so the trapezoid/triangle boundary is at v²/a = 9 deg.
"""

import math

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.ops.slew import axis_move_time_s, azimuth_distance_deg, slew_time_s
from twin.world.telescope import TELESCOPE_PRESETS, Dome

TEL = TELESCOPE_PRESETS["1m"]


def test_axis_long_move_is_trapezoid():
    # 40 deg >= 9 deg: 40/3 cruising + 3/1 for the two ramps.
    assert axis_move_time_s(40.0, 3.0, 1.0) == pytest.approx(40.0 / 3.0 + 3.0, rel=1e-12)


def test_axis_short_move_is_triangle():
    # 4 deg < 9 deg: 2 sqrt(4/1) = 4 s, peak speed 2 deg/s < 3.
    assert axis_move_time_s(4.0, 3.0, 1.0) == pytest.approx(4.0, rel=1e-12)


def test_axis_continuous_at_boundary():
    v, a = 1.5, 0.5
    d_c = v * v / a  # 4.5 deg, where both formulas give 2 v/a = 6 s
    t = axis_move_time_s([d_c * (1 - 1e-9), d_c, d_c * (1 + 1e-9)], v, a)
    np.testing.assert_allclose(t, 6.0, rtol=1e-8)


def test_axis_zero_and_negative():
    assert axis_move_time_s(0.0, 3.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="absolute distance"):
        axis_move_time_s(-1.0, 3.0, 1.0)


def test_azimuth_wraps_the_short_way():
    assert azimuth_distance_deg(350.0, 10.0) == pytest.approx(20.0)
    assert azimuth_distance_deg(10.0, 350.0) == pytest.approx(20.0)
    np.testing.assert_allclose(
        azimuth_distance_deg(0.0, [0.0, 90.0, 180.0, 270.0]), [0, 90, 180, 90]
    )


def test_slew_long_altitude_move():
    # alt 30 -> 70: 40/3 + 3 = 16.333 s, + 5 s settle.
    assert slew_time_s(TEL, 30.0, 100.0, 70.0, 100.0) == pytest.approx(40 / 3 + 3 + 5, rel=1e-9)


def test_slew_short_move():
    # alt 4 deg (triangle, 4 s) and az 1 deg (2 s; dome 0.25 s): 4 + 5 settle.
    assert slew_time_s(TEL, 50.0, 100.0, 54.0, 101.0) == pytest.approx(9.0, rel=1e-9)


def test_slew_azimuth_wrap():
    # 350 -> 10 is 20 deg: mount 20/3 + 3 = 9.667 s > dome 20/4 = 5 s; + 5 settle.
    assert slew_time_s(TEL, 60.0, 350.0, 60.0, 10.0) == pytest.approx(20 / 3 + 3 + 5, rel=1e-9)


def test_slew_dome_limited():
    # 4m preset (mount 1.5 deg/s, a 0.5, settle 10) with a 0.5 deg/s dome, az 90 deg:
    # mount 90/1.5 + 1.5/0.5 = 63 s, dome 90/0.5 = 180 s, + 10 settle = 190 s.
    slow = TELESCOPE_PRESETS["4m"].model_copy(update={"dome": Dome(rotation_speed_deg_s=0.5)})
    assert slew_time_s(slow, 45.0, 0.0, 45.0, 90.0) == pytest.approx(190.0, rel=1e-9)
    # With the preset's 2 deg/s dome (45 s) the mount limits: 63 + 10.
    assert slew_time_s(TELESCOPE_PRESETS["4m"], 45.0, 0.0, 45.0, 90.0) == pytest.approx(73.0)


def test_filter_change_dominates_tiny_slew():
    # 0.5 deg: 2 sqrt(0.5) + 5 = 6.41 s < 10 s filter change.
    tiny = 2 * math.sqrt(0.5) + 5
    assert slew_time_s(TEL, 50.0, 100.0, 50.5, 100.0) == pytest.approx(tiny)
    assert slew_time_s(TEL, 50.0, 100.0, 50.5, 100.0, "g", "r") == pytest.approx(10.0)
    # A long slew hides the filter change.
    assert slew_time_s(TEL, 30.0, 100.0, 70.0, 100.0, "g", "r") == pytest.approx(40 / 3 + 8)


def test_zero_move():
    assert slew_time_s(TEL, 50.0, 100.0, 50.0, 100.0) == 0.0
    assert slew_time_s(TEL, 50.0, 100.0, 50.0, 460.0, "r", "r") == 0.0
    assert slew_time_s(TEL, 50.0, 100.0, 50.0, 100.0, "g", "r") == pytest.approx(10.0)


def test_unknown_band_raises():
    with pytest.raises(ConfigError, match="unknown band"):
        slew_time_s(TEL, 50.0, 100.0, 50.0, 100.0, "g", "Halpha")


def test_broadcast_matches_scalar_loop():
    rng = np.random.default_rng(1)
    n = 1000
    alt = rng.uniform(20.0, 90.0, n)
    az = rng.uniform(0.0, 360.0, n)
    bands = rng.choice(TEL.bands, n)
    alt[:5], az[:5] = 55.0, 123.0  # a few zero moves
    t = slew_time_s(TEL, 55.0, 123.0, alt, az, "r", bands)
    assert t.shape == (n,)
    loop = [slew_time_s(TEL, 55.0, 123.0, alt[i], az[i], "r", bands[i]) for i in range(n)]
    np.testing.assert_allclose(t, loop, rtol=1e-12)
    assert np.all(t >= 0.0)
