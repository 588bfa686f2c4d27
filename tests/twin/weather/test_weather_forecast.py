"""Forecasts: error grows with lead time, deterministic per issue, truth kept private."""

from __future__ import annotations

import numpy as np
import pytest

from twin.weather import Forecast, StochasticWeather
from twin.world.sites import SITES

START_MJD = 60676.0
LEADS_H = np.array([0.0, 3.0, 6.0, 12.0, 24.0, 48.0])


@pytest.fixture(scope="module")
def truth() -> StochasticWeather:
    return StochasticWeather([SITES["la-palma"], SITES["siding-spring"]], START_MJD, 65.0, seed=1)


def _errors(truth, forecast, site):
    """RMS forecast error per lead: cloud cover and ln(seeing), over 200 issues."""
    issues = START_MJD + np.arange(200) * 0.25
    cloud, seeing = [], []
    for issued in issues:
        targets = issued + LEADS_H / 24.0
        predicted = forecast.predict(site, targets, issued)
        actual = truth.sample(site, targets)
        cloud.append(predicted["cloud_cover"] - actual["cloud_cover"])
        seeing.append(np.log(predicted["seeing_fwhm_arcsec"] / actual["seeing_fwhm_arcsec"]))
    rms = lambda e: np.sqrt(np.mean(np.square(e), axis=0))  # noqa: E731
    return rms(cloud), rms(seeing)


@pytest.mark.parametrize("site", ["la-palma", "siding-spring"])
def test_error_grows_with_lead_time(truth, site):
    cloud_rms, seeing_rms = _errors(truth, Forecast(truth, seed=3), site)
    growing = LEADS_H <= 12.0  # beyond ~10 h both errors reach their caps
    assert np.all(np.diff(cloud_rms[growing]) > 0), cloud_rms
    assert np.all(np.diff(seeing_rms[growing]) > 0), seeing_rms
    assert cloud_rms[0] < 0.08  # lead 0: close to the measured value
    assert cloud_rms[-1] > 3 * cloud_rms[0]
    assert cloud_rms[-1] == pytest.approx(cloud_rms[-2], rel=0.2)  # saturated
    assert seeing_rms[0] == pytest.approx(0.10, abs=0.03)
    assert seeing_rms[3] == pytest.approx(0.40, abs=0.08)  # capped: 0.10 + 0.03 h > 0.40
    assert seeing_rms[-1] == pytest.approx(0.40, abs=0.08)


def test_deterministic_per_issue_and_independent_of_query(truth):
    forecast = Forecast(truth, seed=3)
    targets = START_MJD + 1.0 + np.arange(12) / 24.0
    first = forecast.predict("la-palma", targets, START_MJD + 1.0)
    again = Forecast(truth, seed=3).predict("la-palma", targets[::-1], START_MJD + 1.0 + 7 / 1440)
    assert np.array_equal(first["cloud_cover"], again["cloud_cover"][::-1])
    single = forecast.predict("la-palma", targets[5:6], START_MJD + 1.0)
    assert single["seeing_fwhm_arcsec"][0] == first["seeing_fwhm_arcsec"][5]
    later = forecast.predict("la-palma", targets, START_MJD + 1.0 + 1 / 24)
    other_seed = Forecast(truth, seed=4).predict("la-palma", targets, START_MJD + 1.0)
    assert not np.array_equal(first["seeing_fwhm_arcsec"], later["seeing_fwhm_arcsec"])
    assert not np.array_equal(first["seeing_fwhm_arcsec"], other_seed["seeing_fwhm_arcsec"])


def test_truth_is_not_handed_out(truth):
    forecast = Forecast(truth, seed=3)
    public = [getattr(forecast, name) for name in dir(forecast) if not name.startswith("_")]
    assert not any(value is truth for value in public)
    targets = START_MJD + 2.0 + np.arange(6) / 24.0
    predicted = forecast.predict("la-palma", targets, START_MJD + 2.0)
    actual = truth.sample("la-palma", targets)
    assert not np.array_equal(predicted["seeing_fwhm_arcsec"], actual["seeing_fwhm_arcsec"])


def test_values_stay_physical_and_lead_is_bounded(truth):
    forecast = Forecast(truth, seed=3, max_lead_h=24.0)
    targets = START_MJD + 3.0 + np.arange(24) / 24.0
    predicted = forecast.predict("siding-spring", targets, START_MJD + 3.0)
    assert np.all((predicted["cloud_cover"] >= 0) & (predicted["cloud_cover"] <= 1))
    assert np.all((predicted["humidity_pct"] >= 0) & (predicted["humidity_pct"] <= 100))
    assert np.all(predicted["wind_m_s"] >= 0)
    with pytest.raises(ValueError, match="max_lead_h"):
        forecast.predict("siding-spring", np.array([START_MJD + 5.0]), START_MJD + 3.0)


@pytest.mark.parametrize(
    "fields", [("seeing_fwhm_arcsec", "transparency"), ("transparency",), ("wind_m_s",),
               ("temperature_c", "cloud_cover", "humidity_pct"), ()],
)  # fmt: skip
def test_asking_for_some_fields_gives_the_same_values(truth, fields):
    forecast = Forecast(truth, seed=3)
    targets = START_MJD + 2.0 + np.arange(9) / 8.0
    full = forecast.predict("siding-spring", targets, START_MJD + 2.0)
    some = Forecast(truth, seed=3).predict("siding-spring", targets, START_MJD + 2.0, fields)
    assert list(some) == [f for f in full if f in fields]
    for name in fields:
        assert some[name].tobytes() == full[name].tobytes(), name


def test_unknown_forecast_field_is_refused(truth):
    with pytest.raises(ValueError, match=r"unknown forecast fields.*allowed: "):
        Forecast(truth, seed=3).predict(
            "la-palma", np.array([START_MJD + 1.0]), START_MJD, ("fog",)
        )
