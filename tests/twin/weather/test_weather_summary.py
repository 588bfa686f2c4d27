"""Climate summary, plots, saved traces, the ideal source and the factory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.errors import ConfigError
from twin.weather import (
    IdealWeather,
    ReplayWeather,
    StochasticWeather,
    WeatherSource,
    climate_summary,
    dome_closure,
    make_weather,
    plot_weather,
    write_csv,
    write_traces,
)
from twin.weather.timebase import local_solar_hour
from twin.world.sites import SITES

START_MJD = 60676.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _night(site, mjd):
    hour = local_solar_hour(mjd, site.lon_deg)
    return (hour >= 20) | (hour < 4)


@pytest.fixture(scope="module")
def decade() -> StochasticWeather:
    sites = [SITES["cerro-pachon"], SITES["hanle"]]
    return StochasticWeather(sites, START_MJD, 10 * 365.25, seed=4, step_min=60.0)


def test_summary_compares_configured_and_measured(decade):
    summary = climate_summary(decade, decade.sites, night_mask=_night)
    assert summary["site"].tolist() == ["cerro-pachon", "hanle"]
    measured, configured = summary["clear_fraction_measured"], summary["clear_fraction_configured"]
    assert np.allclose(measured, configured, atol=0.04)
    assert np.allclose(
        configured, [s.climate.clear_fraction_annual for s in decade.sites], atol=0.01
    )
    seeing = summary["seeing_median_measured_arcsec"] / summary["seeing_median_configured_arcsec"]
    assert np.allclose(seeing, 1.0, atol=0.05)
    assert summary["n_samples"].tolist() == pytest.approx([decade.mjd_grid.size / 3] * 2, rel=0.01)
    assert summary["dome_closed_fraction"].between(0.01, 0.5).all()
    everything = climate_summary(decade, decade.sites)
    assert (everything["n_samples"] == decade.mjd_grid.size).all()


def test_ideal_weather_is_always_open_and_clear():
    site = SITES["mauna-kea"]
    ideal = IdealWeather([site])
    assert isinstance(ideal, WeatherSource)
    mjd = START_MJD + np.arange(100) / 24.0
    samples = ideal.sample(site.name, mjd)
    assert np.all(samples["transparency"] == 1.0) and np.all(samples["cloud_cover"] == 0.0)
    closed, intervals = dome_closure(mjd, samples)
    assert not closed.any() and intervals == []
    state = ideal.at(site.name, 12345.0)
    assert state.is_clear and state.seeing_fwhm_arcsec == site.climate.seeing_median_arcsec
    summary = climate_summary(ideal, [site], mjd=mjd)
    assert summary["clear_fraction_measured"].item() == 1.0
    assert summary["dome_closed_fraction"].item() == 0.0
    with pytest.raises(ConfigError, match="pass mjd="):
        climate_summary(ideal, [site])


@pytest.mark.parametrize(("names", "days"), [(["teide"], 1.0), (list(SITES)[:3], 60.0)])
def test_plot_writes_a_png(tmp_path, names, days):
    weather = StochasticWeather([SITES[n] for n in names], START_MJD, days, seed=1, step_min=30.0)
    path = plot_weather(weather.to_frame(), tmp_path / "plots" / "weather.png")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_traces_round_trip(tmp_path, fmt):
    frame = StochasticWeather([SITES["teide"]], START_MJD, 1.0, seed=1).to_frame()
    path = write_traces(frame, tmp_path, fmt=fmt)
    assert path.name == f"weather.{fmt}"
    back = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    assert np.array_equal(
        back["seeing_fwhm_arcsec"].to_numpy(), frame["seeing_fwhm_arcsec"].to_numpy()
    )
    assert back["dome_closed"].tolist() == frame["dome_closed"].tolist()
    with pytest.raises(ConfigError, match="allowed: parquet, csv"):
        write_traces(frame, tmp_path, fmt="xlsx")


def test_make_weather_kinds(tmp_path):
    sites = [SITES["teide"]]
    stochastic = make_weather("stochastic", sites, START_MJD, 2.0, seed=1)
    assert isinstance(stochastic, StochasticWeather)
    assert isinstance(make_weather("ideal", sites, START_MJD, 2.0, seed=1), IdealWeather)
    log = write_csv(stochastic.to_frame(), tmp_path / "log.csv")
    replay = make_weather("replay", sites, START_MJD, 2.0, seed=1, log_path=log)
    assert isinstance(replay, ReplayWeather)
    assert replay.at("teide", START_MJD + 1.0) == stochastic.at("teide", START_MJD + 1.0)
    with pytest.raises(ConfigError, match="allowed: stochastic, ideal, replay"):
        make_weather("sunny", sites, START_MJD, 2.0, seed=1)
    with pytest.raises(ConfigError, match="log_path"):
        make_weather("replay", sites, START_MJD, 2.0, seed=1)
