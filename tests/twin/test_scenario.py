"""Scenario validation: every error names the file, the field and what is allowed."""

from itertools import pairwise
from pathlib import Path

import pytest

from twin.errors import ConfigError
from twin.scenario import dump_scenario, load_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


BASE = """
name: t
start: 2027-03-01
sites:
  - site: {site}
    telescopes:
      - {{name: a, preset: {preset}{overrides}}}
"""


def test_shipped_default_scenario_loads():
    scenario = load_scenario(SCENARIOS / "global-3site.yaml", start="2027-01-10")
    assert [s.name for s in scenario.network] == ["cerro-pachon", "sutherland", "siding-spring"]
    assert scenario.start == "2027-01-10"
    lons = sorted(s.lon_deg for s in scenario.network)
    assert min(b - a for a, b in pairwise(lons)) > 60  # spread in longitude


@pytest.mark.parametrize(
    ("site", "preset", "overrides", "field", "allowed"),
    [
        ("atlantis", "1m", "", "sites.0.site", "allowed: cerro-pachon"),
        ("hanle", "9m", "", "sites.0.telescopes.0.preset", "allowed: 1m, 2m, 4m"),
        (
            "hanle",
            "1m",
            ", overrides: {aperture_m: -2}",
            "sites.0.telescopes.0.overrides.aperture_m",
            "greater than or equal to 0.05",
        ),
    ],
)
def test_bad_values_name_file_field_and_allowed(tmp_path, site, preset, overrides, field, allowed):
    path = _write(tmp_path, BASE.format(site=site, preset=preset, overrides=overrides))
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "bad.yaml" in message and field in message and allowed in message


def test_typo_in_a_field_name_is_caught(tmp_path):
    path = _write(tmp_path, BASE.format(site="hanle", preset="1m", overrides="") + "seeed: 3\n")
    with pytest.raises(ConfigError, match=r"seeed.*unknown field"):
        load_scenario(path)


def test_custom_site_latitude_out_of_range(tmp_path):
    text = """
name: t
sites:
  - custom: {name: x, lat_deg: 120, lon_deg: 10, height_m: 100, timezone: UTC,
             climate: {clear_fraction_by_month: [0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5],
                       seeing_median_arcsec: 1.0, humidity_median_pct: 50, wind_median_m_s: 5,
                       temperature_mean_c: 10}}
    telescopes: [{name: a}]
"""
    with pytest.raises(ConfigError, match=r"sites\.0\.custom\.lat_deg.*less than or equal to 90"):
        load_scenario(_write(tmp_path, text))


def test_replay_without_log_and_missing_log_file(tmp_path):
    base = BASE.format(site="hanle", preset="1m", overrides="")
    with pytest.raises(ConfigError, match=r"needs 'log'"):
        load_scenario(_write(tmp_path, base + "weather: {model: replay}\n"))
    with pytest.raises(ConfigError, match=r"weather\.log"):
        load_scenario(_write(tmp_path, base + "weather: {model: replay, log: nowhere.csv}\n"))


def test_resolved_scenario_round_trips(tmp_path):
    scenario = load_scenario(SCENARIOS / "global-3site.yaml")
    again = load_scenario(dump_scenario(scenario, tmp_path / "resolved.yaml"))
    assert again == scenario
    assert again.start != "tonight"


def test_replay_log_with_missing_column_fails_at_load(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "mjd,site,cloud_cover,humidity_pct,wind_m_s,temperature_c\n61000.0,hanle,0.1,20,3,5\n"
    )
    base = BASE.format(site="hanle", preset="1m", overrides="")
    with pytest.raises(ConfigError) as err:
        load_scenario(_write(tmp_path, base + "weather: {model: replay, log: log.csv}\n"))
    assert "log.csv" in str(err.value) and "seeing_fwhm_arcsec" in str(err.value)


def test_replay_log_without_the_scenarios_site(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "mjd,site,cloud_cover,seeing_fwhm_arcsec,humidity_pct,wind_m_s,temperature_c\n"
        "61000.0,la-palma,0.1,0.8,20,3,5\n61001.0,la-palma,0.2,0.9,25,4,6\n"
    )
    base = BASE.format(site="hanle", preset="1m", overrides="")
    with pytest.raises(ConfigError, match=r"no rows for the scenario's sites \['hanle'\]"):
        load_scenario(_write(tmp_path, base + "weather: {model: replay, log: log.csv}\n"))
