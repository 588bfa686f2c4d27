"""The command line end to end: tonight, a year of weather, and clear errors."""

import json
from pathlib import Path

import pandas as pd
import pytest

from twin.cli import main

DEFAULT = str(Path(__file__).parents[3] / "scenarios" / "global-3site.yaml")


def test_tonight_writes_report_plot_and_traces(tmp_path, capsys):
    assert main(["tonight", DEFAULT, "--date", "2027-06-21", "--out", str(tmp_path)]) == 0
    rows = {r["site"]: r for r in json.loads((tmp_path / "tonight.json").read_text())}
    assert set(rows) == {"cerro-pachon", "sutherland", "siding-spring"}
    for row in rows.values():  # austral winter solstice: long nights
        assert 9.5 < row["dark_hours"] < 11.5
        assert 0.0 <= row["forecast_clear_fraction"] <= 1.0
        assert 0 < row["targets_up_hours"]["Galactic Centre"] <= row["dark_hours"] + 0.1
    assert (tmp_path / "tonight.png").stat().st_size > 20_000
    assert (tmp_path / "scenario.yaml").exists()
    assert "Outputs in" in capsys.readouterr().out


def test_weather_year_matches_the_configured_climate(tmp_path, capsys):
    code = main(["weather", "la-palma,hanle", "--days", "365", "--seed", "3",
                 "--start", "2027-01-01", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    summary = pd.read_csv(tmp_path / "climate_summary.csv").set_index("site")
    for site in ("la-palma", "hanle"):
        row = summary.loc[site]
        assert abs(row.clear_fraction_measured - row.clear_fraction_configured) < 0.08
        assert row.seeing_median_measured_arcsec == pytest.approx(
            row.seeing_median_configured_arcsec, rel=0.05
        )
    traces = pd.read_parquet(tmp_path / "weather.parquet")
    assert set(traces.site) == {"la-palma", "hanle"}
    assert traces.mjd.max() - traces.mjd.min() == pytest.approx(365, abs=0.1)
    assert (tmp_path / "weather.png").exists()


def test_unknown_site_exits_2_with_allowed_names(capsys):
    assert main(["weather", "atlantis", "--days", "3"]) == 2
    err = capsys.readouterr().err
    assert "unknown site 'atlantis'" in err and "allowed: cerro-pachon" in err


def test_bad_scenario_exits_2_naming_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nsites: [{site: hanle, telescopes: [{name: a, preset: 1m}]}]\nnights: -3\n"
    )
    assert main(["tonight", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "nights" in err and "greater than or equal to 1" in err


def test_python_dash_m_twin_is_the_same_command():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "twin", "sites"], capture_output=True, text=True, check=True
    )
    assert "cerro-pachon" in out.stdout and "hanle" in out.stdout
