"""Bad programmes stop before anything runs, naming the file, the field and what is allowed."""

from __future__ import annotations

import json

import pytest
import yaml

from twin.cli import main
from twin.errors import ConfigError
from twin.scenario import load_scenario

BASE = {
    "name": "t", "start": "2027-03-10", "nights": 1, "seed": 1,
    "sites": [{"site": "cerro-pachon", "telescopes": [{"name": "a", "preset": "1m"}]}],
    "programmes": [{"name": "tc", "plan": [{"band": "r", "exptime_s": 60}],
                    "requests": [{"request_id": "x", "ra_deg": 10, "dec_deg": -30}]}],
}  # fmt: skip


def write(tmp_path, data):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def error_for(tmp_path, data) -> ConfigError:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    return info.value


def test_valid_programme_loads(tmp_path):
    assert load_scenario(write(tmp_path, BASE)).programmes[0].name == "tc"


def test_unknown_site(tmp_path):
    data = {**BASE, "sites": [{"site": "atlantis", "telescopes": [{"name": "a"}]}]}
    err = error_for(tmp_path, data)
    assert err.field == "sites.0.site" and "cerro-pachon" in err.problem


def test_window_in_the_past(tmp_path):
    data = json.loads(json.dumps(BASE))
    data["programmes"][0]["requests"][0]["windows"] = [{"start_mjd": 60000, "end_mjd": 60001}]
    err = error_for(tmp_path, data)
    assert err.field == "programmes.0.requests.0.windows.0.end_mjd"
    assert "before the scenario starts" in err.problem


def test_negative_exposure(tmp_path):
    data = json.loads(json.dumps(BASE))
    data["programmes"][0]["plan"][0]["exptime_s"] = -5
    err = error_for(tmp_path, data)
    assert err.field == "programmes.0.plan.0.exptime_s"
    assert "greater than or equal to 0.1" in err.problem


def test_typo_in_a_field_name(tmp_path):
    data = json.loads(json.dumps(BASE))
    data["programmes"][0]["requests"][0]["max_airmas"] = 2
    err = error_for(tmp_path, data)
    assert err.field == "programmes.0.requests.0.max_airmas"
    assert "unknown field" in err.problem


def test_band_no_telescope_has(tmp_path):
    data = json.loads(json.dumps(BASE))
    data["programmes"][0]["plan"][0]["band"] = "Halpha"
    err = error_for(tmp_path, data)
    assert err.field == "programmes.0.plan.0.band" and "'r'" in err.problem


def test_request_for_a_site_not_in_the_network(tmp_path):
    data = json.loads(json.dumps(BASE))
    data["programmes"][0]["requests"][0]["sites"] = ["la-palma"]
    err = error_for(tmp_path, data)
    assert err.field == "programmes.0.requests.0.sites.0" and "cerro-pachon" in err.problem


def test_cli_run_stops_with_exit_2_before_running(tmp_path, capsys):
    data = json.loads(json.dumps(BASE))
    data["programmes"][0]["plan"][0]["exptime_s"] = -5
    out = tmp_path / "run"
    assert main(["run", str(write(tmp_path, data)), "--out", str(out), "--quiet"]) == 2
    assert "exptime_s" in capsys.readouterr().err
    assert not out.exists()


def test_cli_run_and_compare(tmp_path, capsys):
    path = write(tmp_path, BASE)
    for policy in ("greedy", "priority"):
        code = main(["run", str(path), "--policy", policy, "--out", str(tmp_path / policy),
                     "--quiet", "--no-plots"])  # fmt: skip
        assert code == 0
    printed = capsys.readouterr().out
    assert "constraint violations: 0" in printed and "Run directory" in printed
    assert main(["compare", str(tmp_path / "greedy"), str(tmp_path / "priority")]) == 0
    table = capsys.readouterr().out
    assert "greedy" in table and "priority" in table and "science_value" in table
