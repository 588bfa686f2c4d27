"""Comparing runs: both runs' numbers side by side, a clear error for a missing metrics.json."""

import json

import pytest

from twin.errors import ConfigError
from twin.reports.compare import COMPARE_FIELDS, compare_runs, format_compare


def _metrics(policy, seed, exposures, open_fraction, latency_min):
    return {
        "run": {"scenario": "s", "policy": policy, "seed": seed, "nights": 7, "wall_s": 3.0},
        "network": {
            "exposures": exposures,
            "science_value": 10.5 * exposures,
            "open_shutter_fraction": open_fraction,
            "hours": {"weather": 12.25, "failure": 0.0, "slew": 3.5, "readout": 1.75},
        },
        "alerts": {
            "latency_median_min": latency_min,
            "latency_p90_min": None,
            "fraction_followed": 0.75,
        },
        "constraint_violations": {"count": 0},
    }


@pytest.fixture
def two_runs(tmp_path):
    dirs = []
    for name, m in [
        ("greedy-s1", _metrics("greedy", 1, 1234, 0.4125, 17.5)),
        ("ppo-s1", _metrics("ppo", 1, 987, 0.38, 9.25)),
    ]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
        dirs.append(tmp_path / name)
    return dirs


def test_compare_rows_hold_each_runs_numbers(two_runs):
    rows = compare_runs(two_runs)
    assert [r["run"] for r in rows] == ["greedy-s1", "ppo-s1"]
    assert list(rows[0]) == list(COMPARE_FIELDS)
    assert rows[0]["open_shutter_pct"] == pytest.approx(41.25)
    assert (rows[1]["policy"], rows[1]["exposures"], rows[1]["nights"]) == ("ppo", 987, 7)
    assert rows[1]["alert_latency_median_min"] == 9.25 and rows[1]["alert_latency_p90_min"] is None


def test_format_compare_is_transposed_with_both_runs(two_runs):
    text = format_compare(compare_runs(two_runs))
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "greedy-s1", "ppo-s1"]
    assert len(lines) == 2 + len(COMPARE_FIELDS) - 1
    exposures = next(line for line in lines if line.startswith("exposures"))
    assert exposures.split() == ["exposures", "1234", "987"]
    value = next(line for line in lines if line.startswith("science_value"))
    assert value.split() == ["science_value", "12957", "10364"]
    latency = next(line for line in lines if line.startswith("alert_latency_p90_min"))
    assert latency.split()[1:] == ["-", "-"]
    open_pct = next(line for line in lines if line.startswith("open_shutter_pct"))
    assert open_pct.split()[1:] == ["41.25", "38"] and "12.25" in text


def test_missing_metrics_names_the_path(tmp_path, two_runs):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"metrics\.json") as err:
        compare_runs([two_runs[0], tmp_path / "empty"])
    assert str(tmp_path / "empty") in str(err.value) and "write_metrics" in str(err.value)


def test_same_folder_names_are_told_apart(tmp_path, two_runs):
    other = tmp_path / "elsewhere" / "greedy-s1"
    other.mkdir(parents=True)
    (other / "metrics.json").write_text((two_runs[0] / "metrics.json").read_text())
    rows = compare_runs([two_runs[0], other])
    assert rows[0]["run"] != rows[1]["run"]
