"""The stochastic weather reproduces each site's configured climate, and is reproducible.

Statistical tolerances come from the sampling noise of the model itself: with a cloud
memory of 1.5 days, a calendar month's clear fraction measured over N years scatters by
about 0.13 / sqrt(N) (0.04 for 10 years: too close to the 0.05 tolerance for 48 checks;
0.013 for 100), so the climate checks use a 100-year run at a 2-hour step (cheap:
~440 000 steps, under a second).
"""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.weather import OutOfSpanError, StochasticWeather, WeatherSource
from twin.weather.stochastic import SYNOPTIC_CLOUD_WEIGHT
from twin.weather.timebase import calendar_month, local_solar_hour
from twin.world.sites import SITES

START_MJD = 60676.0  # 2025-01-01
CLIMATE_SITES = ["la-palma", "teide", "siding-spring", "devasthal"]


@pytest.fixture(scope="module")
def century() -> StochasticWeather:
    sites = [SITES[name] for name in CLIMATE_SITES]
    return StochasticWeather(sites, START_MJD, 100 * 365.25, seed=2024, step_min=120.0)


@pytest.fixture(scope="module")
def century_samples(century) -> dict[str, dict[str, np.ndarray]]:
    return {name: century.sample(name, century.mjd_grid) for name in CLIMATE_SITES}


@pytest.mark.parametrize("name", CLIMATE_SITES)
def test_monthly_clear_fraction_matches_climate(century, century_samples, name):
    month = calendar_month(century.mjd_grid)
    clear = century_samples[name]["cloud_cover"] < 0.25
    measured = np.array([clear[month == m].mean() for m in range(1, 13)])
    configured = np.array(SITES[name].climate.clear_fraction_by_month)
    assert np.max(np.abs(measured - configured)) < 0.05, np.round(measured - configured, 3)


@pytest.mark.parametrize("name", CLIMATE_SITES)
def test_annual_clear_fraction_and_seeing_median(century_samples, name):
    climate = SITES[name].climate
    samples = century_samples[name]
    clear_fraction = np.mean(samples["cloud_cover"] < 0.25)
    assert clear_fraction == pytest.approx(climate.clear_fraction_annual, abs=0.03)
    seeing_median = np.median(samples["seeing_fwhm_arcsec"])
    assert seeing_median == pytest.approx(climate.seeing_median_arcsec, rel=0.05)


@pytest.mark.parametrize("name", CLIMATE_SITES)
def test_humidity_wind_temperature_around_climate(century_samples, name):
    climate = SITES[name].climate
    samples = century_samples[name]
    assert np.median(samples["humidity_pct"]) == pytest.approx(climate.humidity_median_pct, abs=5.0)
    assert np.median(samples["wind_m_s"]) == pytest.approx(climate.wind_median_m_s, rel=0.05)
    assert np.mean(samples["temperature_c"]) == pytest.approx(climate.temperature_mean_c, abs=0.3)


def test_values_stay_in_physical_ranges(century_samples):
    for samples in century_samples.values():
        assert np.all((samples["cloud_cover"] >= 0) & (samples["cloud_cover"] <= 1))
        assert np.all((samples["transparency"] >= 0.05) & (samples["transparency"] <= 1))
        assert np.all((samples["humidity_pct"] >= 0) & (samples["humidity_pct"] <= 100))
        assert np.all(samples["wind_m_s"] >= 0)
        assert np.all(samples["seeing_fwhm_arcsec"] > 0)


def test_nearby_sites_share_weather_distant_ones_do_not(century_samples):
    la_palma = century_samples["la-palma"]["cloud_cover"]
    teide = century_samples["teide"]["cloud_cover"]
    siding_spring = century_samples["siding-spring"]["cloud_cover"]
    assert np.corrcoef(la_palma, teide)[0, 1] > 0.5
    assert abs(np.corrcoef(la_palma, siding_spring)[0, 1]) < 0.1


def test_transparency_falls_with_cloud(century_samples):
    samples = century_samples["la-palma"]
    clear = samples["cloud_cover"] < 0.25
    overcast = samples["cloud_cover"] > 0.9
    assert samples["transparency"][clear].min() > 0.85
    assert samples["transparency"][overcast].max() < 0.25


def _nightly_means(weather, name, lon_deg):
    mjd = weather.mjd_grid
    values = weather.sample(name, mjd)["cloud_cover"]
    hour = local_solar_hour(mjd, lon_deg)
    night = (hour >= 20) | (hour < 4)
    night_id = np.floor(mjd[night] + lon_deg / 360 - 0.5)
    ids, index = np.unique(night_id, return_inverse=True)
    means = np.bincount(index, values[night]) / np.bincount(index)
    month = calendar_month(ids)
    monthly = np.array([means[month == m].mean() for m in range(1, 13)])
    return means - monthly[month - 1]  # remove the seasonal cycle of cloudiness


def _lag_corr(x, lag):
    return np.corrcoef(x[:-lag], x[lag:])[0, 1]


def _expected_latent_corr(persistence_days, timescale_h, lag_days, step_days=1 / 48):
    """Exact correlation of nightly means of the latent cloud variable (8-h nights)."""
    w = SYNOPTIC_CLOUD_WEIGHT
    times = np.arange(0, 8 / 24, step_days)
    dt = times[:, None] - times[None, :]

    def rho(tau):
        tau = np.abs(tau)
        return w * np.exp(-tau / persistence_days) + (1 - w) * np.exp(-tau * 24 / timescale_h)

    return rho(lag_days + dt).mean() / rho(dt).mean()


def test_cloud_persists_from_night_to_night():
    site = SITES["la-palma"]
    weather = StochasticWeather([site], START_MJD, 20 * 365.25, seed=7, step_min=30.0)
    anomaly = _nightly_means(weather, site.name, site.lon_deg)
    climate = site.climate
    expected = _expected_latent_corr(climate.cloud_persistence_days, climate.cloud_timescale_h, 1)
    lag1, lag2 = _lag_corr(anomaly, 1), _lag_corr(anomaly, 2)
    # Clipping the latent variable into 0..1 cloud cover loses ~13 % of the correlation
    # (over 10 seeds: 0.394 +- 0.013 for an expected latent 0.452).
    assert 0.75 * expected < lag1 < expected + 0.03
    assert 0 < lag2 < lag1

    stormy = site.model_copy(
        update={"climate": climate.model_copy(update={"cloud_persistence_days": 5.0})}
    )
    longer = StochasticWeather([stormy], START_MJD, 20 * 365.25, seed=7, step_min=30.0)
    assert _lag_corr(_nightly_means(longer, site.name, site.lon_deg), 1) > lag1 + 0.15


def test_diurnal_and_seasonal_cycles(century, century_samples):
    mjd = century.mjd_grid
    month = calendar_month(mjd)
    for name in ("la-palma", "siding-spring"):
        site = SITES[name]
        samples = century_samples[name]
        hour = local_solar_hour(mjd, site.lon_deg)
        afternoon = (hour >= 13) & (hour < 17)
        before_dawn = (hour >= 3) & (hour < 6)
        temperature = samples["temperature_c"]
        humidity = samples["humidity_pct"]
        amplitude = site.climate.temperature_diurnal_amplitude_c
        assert temperature[afternoon].mean() - temperature[before_dawn].mean() > amplitude
        assert humidity[before_dawn].mean() > humidity[afternoon].mean() + 3.0
        july_minus_january = temperature[month == 7].mean() - temperature[month == 1].mean()
        seasonal = site.climate.temperature_seasonal_amplitude_c
        assert july_minus_january == pytest.approx(np.sign(site.lat_deg) * 1.8 * seasonal, rel=0.2)


def test_humidity_rises_with_cloud_and_monsoon(century, century_samples):
    samples = century_samples["la-palma"]
    cloudy = samples["cloud_cover"] > 0.7
    clear = samples["cloud_cover"] < 0.25
    assert samples["humidity_pct"][cloudy].mean() > samples["humidity_pct"][clear].mean() + 10
    month = calendar_month(century.mjd_grid)
    devasthal = century_samples["devasthal"]["humidity_pct"]
    assert devasthal[month == 7].mean() > devasthal[month == 11].mean() + 10


def _short(seed, names=("la-palma", "teide"), days=20.0):
    return StochasticWeather([SITES[n] for n in names], START_MJD, days, seed=seed)


def test_same_seed_same_frame_different_seed_different():
    first, again, other = _short(11).to_frame(), _short(11).to_frame(), _short(12).to_frame()
    numeric = [c for c in first.columns if c != "site"]
    for column in numeric:
        assert np.array_equal(first[column].to_numpy(), again[column].to_numpy()), column
    assert np.array_equal(first["site"].to_numpy(), again["site"].to_numpy())
    assert not np.array_equal(first["cloud_cover"].to_numpy(), other["cloud_cover"].to_numpy())
    assert not np.array_equal(first["seeing_fwhm_arcsec"], other["seeing_fwhm_arcsec"])


def test_seed_sequence_accepted_and_not_consumed():
    seq = np.random.SeedSequence(11)
    a = StochasticWeather([SITES["la-palma"]], START_MJD, 2.0, seed=seq)
    b = StochasticWeather([SITES["la-palma"]], START_MJD, 2.0, seed=seq)
    c = StochasticWeather([SITES["la-palma"]], START_MJD, 2.0, seed=11)
    grid = a.mjd_grid
    assert np.array_equal(
        a.sample("la-palma", grid)["cloud_cover"], b.sample("la-palma", grid)["cloud_cover"]
    )
    assert np.array_equal(
        a.sample("la-palma", grid)["cloud_cover"], c.sample("la-palma", grid)["cloud_cover"]
    )


def test_appending_a_site_or_days_keeps_existing_traces():
    alone = _short(5, names=("la-palma",), days=10.0)
    with_more = _short(5, names=("la-palma", "teide"), days=30.0)
    grid = alone.mjd_grid
    a, b = alone.sample("la-palma", grid), with_more.sample("la-palma", grid)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_queries_interpolate_inside_span_and_refuse_outside():
    weather = _short(3, days=2.0)
    assert isinstance(weather, WeatherSource)
    grid = weather.mjd_grid
    mid = 0.5 * (grid[10] + grid[11])
    seeing = weather.sample("teide", grid[10:12])["seeing_fwhm_arcsec"]
    assert weather.at("teide", mid).seeing_fwhm_arcsec == pytest.approx(seeing.mean())
    assert (
        weather.at("teide", grid[5]).cloud_cover == weather.sample("teide", grid)["cloud_cover"][5]
    )
    with pytest.raises(OutOfSpanError, match="outside the weather span"):
        weather.sample("teide", np.array([grid[0], grid[-1] + 0.01]))
    with pytest.raises(ConfigError, match="la-palma, teide"):
        weather.at("mauna-kea", grid[0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"days": 0.0}, "days"), ({"step_min": -1.0}, "step_min"), ({"sites": []}, "sites")],
)
def test_bad_arguments_are_config_errors(kwargs, field):
    arguments = {"sites": [SITES["teide"]], "start_mjd": START_MJD, "days": 1.0, "seed": 1}
    with pytest.raises(ConfigError, match=field):
        StochasticWeather(**{**arguments, **kwargs})


def test_frame_has_long_format_with_dome_state():
    frame = _short(2, days=3.0).to_frame()
    assert list(frame.columns) == [
        "mjd", "site", "cloud_cover", "transparency", "seeing_fwhm_arcsec",
        "humidity_pct", "wind_m_s", "temperature_c", "dome_closed",
    ]  # fmt: skip
    assert sorted(frame["site"].unique()) == ["la-palma", "teide"]
    assert frame["dome_closed"].dtype == bool
