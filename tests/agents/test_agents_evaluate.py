"""``skytwin evaluate``: seeds, the t interval, per-seed metrics, the oracle fraction."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from agents import evaluate as E
from twin.cli import main
from twin.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "global-3site.yaml"

SMALL = """
name: eval-small
start: "2027-03-10"
nights: 1
seed: 1
sites:
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
  - site: siding-spring
    telescopes: [{name: siding-spring-1m, preset: 1m}]
weather: {model: stochastic}
programmes:
  - name: survey
    share: 1.0
    survey: {ra_min_deg: 150, ra_max_deg: 170, dec_min_deg: -32, dec_max_deg: -28, fov_deg: 1.0}
    plan: [{band: r, exptime_s: 60}]
    constraints: {max_airmass: 1.8}
    cadence_days: 2
    visits: 0
alerts:
  rate_per_day: 2.0
"""


SEEDS = [("1..3", [1, 2, 3]), ("4", [4]), ("1,5,9", [1, 5, 9]), ("0..1,7", [0, 1, 7])]


@pytest.mark.parametrize(("text", "seeds"), SEEDS)
def test_parse_seeds(text, seeds):
    assert E.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["a..b", "3..1", "", "1..x"])
def test_bad_seeds_are_refused_with_the_forms_allowed(text):
    with pytest.raises(ConfigError, match="seeds"):
        E.parse_seeds(text)


def test_interval_is_students_t():
    x = [3.0, 5.0, 4.0, 8.0]
    got = E.interval([*x, None, math.nan])
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2.0
    assert got["n"] == 4 and got["mean"] == pytest.approx(5.0)
    assert (got["low"], got["high"]) == pytest.approx((5.0 - half, 5.0 + half))
    assert E.interval([2.0]) == {"mean": 2.0, "low": 2.0, "high": 2.0, "n": 1}
    assert E.interval([None])["n"] == 0


def test_evaluate_collects_each_seed(tmp_path):
    ev = E.evaluate("greedy", SCENARIO, [1, 2], oracle=False)
    assert [r["seed"] for r in ev.rows] == [1, 2]
    assert ev.start == "2027-04-07"  # 'tonight' in the file: the training date
    for row in ev.rows:
        assert row["science_value"] > 0 and row["exposures"] > 0
        assert row["constraint_violations"] == 0
        assert "oracle_bound" not in row
    assert ev.rows[0]["science_value"] != ev.rows[1]["science_value"]
    s = ev.summary["science_value"]
    assert s["low"] <= s["mean"] <= s["high"] and s["n"] == 2


def test_fraction_of_the_oracle(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    ev = E.evaluate("greedy", path, [3], oracle=True, oracle_time_limit_s=3.0)
    row = ev.rows[0]
    assert row["oracle_bound"] >= row["science_value"] > 0
    assert row["fraction_of_oracle"] == pytest.approx(row["science_value"] / row["oracle_bound"])
    assert "fraction_of_oracle" in E.format_evaluation(ev)


def test_cli_prints_mean_and_interval(tmp_path, capsys):
    out_json = tmp_path / "eval.json"
    argv = ["evaluate", "--policy", "greedy", "--scenario", str(SCENARIO), "--seeds", "1..2",
            "--no-oracle", "--json", str(out_json)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "greedy on global-3site.yaml: 2 seed(s)" in text
    assert "95% interval" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("science_value"))
    mean, low, high = (float(v) for v in line.replace("[", " ").replace("]", " ")
                       .replace(",", " ").split()[1:4])  # fmt: skip
    assert low <= mean <= high
    record = json.loads(out_json.read_text())
    assert [r["seed"] for r in record["rows"]] == [1, 2]


def test_cli_bad_seeds_exit_2(capsys):
    assert main(["evaluate", "--policy", "greedy", "--seeds", "x"]) == 2
    assert "A..B" in capsys.readouterr().err
