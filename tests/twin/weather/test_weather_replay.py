"""Replay of a weather log: exact round trip, and bad logs refused with a useful message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.errors import ConfigError
from twin.weather import OutOfSpanError, ReplayWeather, StochasticWeather, write_csv
from twin.weather.fields import transparency_from_cloud
from twin.world.sites import SITES

START_MJD = 60676.0


@pytest.fixture(scope="module")
def run() -> StochasticWeather:
    return StochasticWeather([SITES["la-palma"], SITES["mauna-kea"]], START_MJD, 3.0, seed=9)


def _log(**columns) -> pd.DataFrame:
    base = {
        "mjd": [START_MJD, START_MJD + 0.5],
        "site": ["teide", "teide"],
        "cloud_cover": [0.0, 1.0],
        "seeing_fwhm_arcsec": [0.6, 1.0],
        "humidity_pct": [20.0, 40.0],
        "wind_m_s": [3.0, 5.0],
        "temperature_c": [10.0, 12.0],
    }
    base.update(columns)
    return pd.DataFrame({k: v for k, v in base.items() if v is not None})


def test_round_trip_through_csv(run, tmp_path):
    path = write_csv(run.to_frame(), tmp_path / "log.csv")
    replay = ReplayWeather.from_csv(path)
    grid = run.mjd_grid
    for site in ("la-palma", "mauna-kea"):
        original, replayed = run.sample(site, grid), replay.sample(site, grid)
        for name in original:
            assert np.array_equal(original[name], replayed[name]), name
        between = grid[:-1] + 0.3 * np.diff(grid)
        assert np.allclose(
            run.sample(site, between)["humidity_pct"], replay.sample(site, between)["humidity_pct"]
        )
    assert replay.at("mauna-kea", grid[7]) == run.at("mauna-kea", grid[7])


def test_interpolates_and_derives_transparency(tmp_path):
    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    replay = ReplayWeather.from_csv(path)
    state = replay.at("teide", START_MJD + 0.25)
    assert state.cloud_cover == pytest.approx(0.5)
    assert state.seeing_fwhm_arcsec == pytest.approx(0.8)
    recorded = replay.sample("teide", np.array([START_MJD, START_MJD + 0.5]))
    assert recorded["transparency"] == pytest.approx(transparency_from_cloud(np.array([0.0, 1.0])))
    assert state.transparency == pytest.approx(recorded["transparency"].mean())
    with pytest.raises(OutOfSpanError, match="teide"):
        replay.at("teide", START_MJD + 0.6)


def test_iso_times_are_converted(tmp_path):
    path = tmp_path / "log.csv"
    _log(mjd=None, time_utc=["2025-01-01T00:00:00", "2025-01-01T12:00:00"]).to_csv(
        path, index=False
    )
    replay = ReplayWeather.from_csv(path)
    assert replay.times_mjd("teide").tolist() == pytest.approx([START_MJD, START_MJD + 0.5])


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "no_seeing.csv"
    _log(seeing_fwhm_arcsec=None).to_csv(path, index=False)
    with pytest.raises(ConfigError) as error:
        ReplayWeather.from_csv(path)
    assert "no_seeing.csv" in str(error.value)
    assert error.value.field == "seeing_fwhm_arcsec"
    assert "seeing_fwhm_arcsec" in str(error.value)


def test_unknown_site_lists_allowed_sites(tmp_path):
    path = tmp_path / "bad_site.csv"
    _log(site=["teide", "tiede"]).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="'tiede'") as error:
        ReplayWeather.from_csv(path)
    assert error.value.field == "site"
    assert "line 3" in str(error.value)
    for name in SITES:
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        (
            "humidity_pct",
            ["20", "wet"],
            r"line 3: 'wet' is not a number; required: 0 <= value <= 100",
        ),
        ("humidity_pct", [20.0, 120.0], r"line 3: 120 out of range; allowed: 0 <= value <= 100"),
        ("seeing_fwhm_arcsec", [0.0, 1.0], r"line 2: 0 out of range; allowed: 0 < value <= 10"),
        ("cloud_cover", [0.2, ""], r"line 3: '' is not a number"),
        ("mjd", [START_MJD, START_MJD], r"two rows at MJD"),
    ],
)
def test_bad_values_are_refused(tmp_path, column, values, message):
    path = tmp_path / "bad_value.csv"
    _log(**{column: values}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=message) as error:
        ReplayWeather.from_csv(path)
    assert error.value.field == column
    assert "bad_value.csv" in str(error.value)


def test_structural_problems_are_refused(tmp_path):
    path = tmp_path / "no_time.csv"
    _log(mjd=None).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="mjd \\(or time_utc\\)"):
        ReplayWeather.from_csv(path)
    with pytest.raises(ConfigError, match="at least two rows"):
        ReplayWeather.from_frame(_log().iloc[:1])
    with pytest.raises(ConfigError, match="not found"):
        ReplayWeather.from_csv(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="allowed: la-palma"):
        ReplayWeather.from_frame(_log(), sites=[SITES["la-palma"]])
    bad_time = tmp_path / "bad_time.csv"
    _log(mjd=None, time_utc=["2025-01-01T00:00:00", "yesterday"]).to_csv(bad_time, index=False)
    with pytest.raises(ConfigError, match="line 3: 'yesterday' is not a time"):
        ReplayWeather.from_csv(bad_time)
