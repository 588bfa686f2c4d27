"""Dome closure: closes at the limits, reopens only with margin and after a minimum time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from twin.weather import DomeRules, dome_closure

STEP_DAY = 10.0 / 1440.0  # 10-minute grid


def _weather(n=60, humidity=50.0, wind=5.0, cloud=0.1):
    mjd = 60676.0 + np.arange(n) * STEP_DAY
    samples = {
        "humidity_pct": np.full(n, humidity),
        "wind_m_s": np.full(n, wind),
        "cloud_cover": np.full(n, cloud),
    }
    return mjd, samples


def test_humid_spell_closes_and_hysteresis_keeps_closed():
    mjd, samples = _weather()
    samples["humidity_pct"][10:20] = 90.0  # above 85: close
    samples["humidity_pct"][20:40] = 82.0  # below 85 but not below 80: stay closed
    closed, intervals = dome_closure(mjd, samples)
    expected = np.zeros(mjd.size, bool)
    expected[10:40] = True
    assert np.array_equal(closed, expected)
    assert intervals == [(mjd[10], mjd[40])]


def test_minimum_closed_time():
    mjd, samples = _weather()
    samples["humidity_pct"][10] = 95.0  # one humid sample, then dry again
    closed, intervals = dome_closure(mjd, samples, DomeRules(min_closed_min=20.0))
    assert np.flatnonzero(closed).tolist() == [10, 11]
    assert intervals[0][1] - intervals[0][0] == pytest.approx(20.0 / 1440.0)


@pytest.mark.parametrize(("field", "value"), [("wind_m_s", 16.0), ("cloud_cover", 0.8)])
def test_wind_and_cloud_close_the_dome(field, value):
    mjd, samples = _weather()
    samples[field][30:35] = value
    closed, intervals = dome_closure(mjd, samples)
    assert closed[30:35].all() and not closed[:30].any() and not closed[35:].any()
    assert len(intervals) == 1


def test_closed_at_start_and_still_closed_at_end():
    mjd, samples = _weather(humidity=95.0)
    closed, intervals = dome_closure(mjd, samples)
    assert closed.all()
    assert intervals == [(mjd[0], math.inf)]


def test_repeated_closures_are_all_reported():
    mjd, samples = _weather(n=200)
    for start in (10, 80, 150):
        samples["wind_m_s"][start : start + 5] = 20.0
    _, intervals = dome_closure(mjd, samples)
    assert [mjd.tolist().index(close) for close, _ in intervals] == [10, 80, 150]


def test_rules_are_validated():
    with pytest.raises(ValidationError, match="humidity_reopen_margin_pct"):
        DomeRules(humidity_max_pct=4.0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        DomeRules(humidity_limit=80.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        dome_closure(np.array([1.0, 1.0]), _weather(n=2)[1])
