"""The CMA-ES candidate scorer: greedy at zero weights, trained weights that change the
schedule as intended, save/load through ``--policy PATH``, a tiny search, ``--against``."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents import evaluate as E
from agents.es_train import _starts, night_outcome, train_cmaes
from agents.scorer import SCORER_FEATURES, ScorerPolicy, load_scorer, save_scorer
from twin.cli import main
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "global-3site.yaml"
START = "2027-04-07"
SHIPPED = ROOT / "agents" / "trained" / "es-global-3site" / "scorer.json"


def _night(tmp_path, policy, seed=3, name="run"):
    sc = load_scenario(SCENARIO, nights=1, seed=seed, start=START)
    result = run_scenario(sc, tmp_path / name, policy, progress=False, plots=False)
    return pd.read_parquet(tmp_path / name / "observations.parquet"), result.metrics


def _weights(**named):
    return np.array([named.get(k, 0.0) for k in SCORER_FEATURES])


def test_zero_weights_are_greedy_decision_for_decision(tmp_path):
    greedy, _ = _night(tmp_path, "greedy", name="greedy")
    scorer, _ = _night(tmp_path, ScorerPolicy(_weights()), name="scorer")
    assert len(greedy) > 300
    pd.testing.assert_frame_equal(greedy, scorer)


def test_a_dominant_weight_decides(tmp_path):
    """With a huge weight on ln(quality) the scorer takes the best-quality feasible
    candidate at every decision (and so changes greedy's schedule)."""
    checked = []

    class Checked(ScorerPolicy):
        def decide(self, conditions):
            action = super().decide(conditions)
            c = conditions.candidates
            if c.feasible.any():
                best = np.log(np.maximum(c.quality[c.feasible], 1e-3)).max()
                checked.append(np.log(max(c.quality[action.candidate], 1e-3)) >= best - 1e-3)
            return action

    greedy, _ = _night(tmp_path, "greedy", name="greedy")
    picky, _ = _night(tmp_path, Checked(_weights(log_quality=1e4)), name="picky")
    assert len(checked) > 300 and all(checked)
    assert list(greedy["request_id"]) != list(picky["request_id"])


def test_first_alert_visits_come_first_when_weighted(tmp_path):
    """``alert_first_visit`` marks alert requests not yet observed: with a dominant weight
    the scorer takes one whenever one is feasible."""
    seen = []

    class Checked(ScorerPolicy):
        def decide(self, conditions):
            action = super().decide(conditions)
            c = conditions.candidates
            first = c.feasible & c.is_alert & (c.visits_done == 0)
            if first.any():
                seen.append(bool(first[action.candidate]))
            return action

    _night(tmp_path, Checked(_weights(alert_first_visit=100.0)), seed=6)
    assert len(seen) >= 2 and all(seen)


def test_alert_guard_keeps_greedys_first_follow_ups(tmp_path):
    """Even with weights that shun alerts, the guard takes an alert's first visit whenever
    greedy would take it at that decision; without the guard the same weights do not."""
    from agents.baselines import GreedyPolicy

    greedy = GreedyPolicy()

    def run(guard):
        checked = []

        class Checked(ScorerPolicy):
            def decide(self, conditions):
                action = super().decide(conditions)
                c = conditions.candidates
                feasible = np.flatnonzero(c.feasible)
                if feasible.size:
                    pick = feasible[greedy.choose(conditions, feasible)]
                    if c.is_alert[pick] and c.visits_done[pick] == 0:
                        checked.append(action.candidate == pick)
                return action

        policy = Checked(_weights(is_alert=-50.0), alert_guard=guard)
        _night(tmp_path, policy, seed=6, name=f"guard-{guard}")
        return checked

    guarded, unguarded = run(True), run(False)
    assert len(guarded) >= 2 and all(guarded)
    assert not all(unguarded)  # the guard is what keeps them


def test_objective_is_the_reported_science_value(tmp_path):
    w = _weights(log_quality=1.0, abs_hour_angle=-0.5)
    _, metrics = _night(tmp_path, ScorerPolicy(w), seed=4)
    science, followed = night_outcome(str(SCENARIO), START, 1, 4, w)
    assert science == pytest.approx(metrics["network"]["science_value"], rel=1e-9)
    assert followed == metrics["alerts"]["n_followed"]


def test_save_load_round_trip_through_the_policy_resolver(tmp_path):
    w = np.linspace(-1, 1, len(SCORER_FEATURES))
    path = save_scorer(tmp_path / "sc" / "scorer.json", w, command="skytwin train ...")
    for where in (path, path.parent):
        policy = resolve_policy(str(where))
        assert isinstance(policy, ScorerPolicy) and not policy.alert_guard
        np.testing.assert_array_equal(policy.weights, w)
    guarded = save_scorer(tmp_path / "g" / "scorer.json", w, alert_guard=True)
    assert load_scorer(guarded).alert_guard
    record = json.loads(path.read_text())
    assert list(record["weights"]) == list(SCORER_FEATURES)
    assert record["command"] == "skytwin train ..."


def test_bad_scorer_files_say_what_is_wrong(tmp_path):
    bad = tmp_path / "scorer.json"
    bad.write_text(json.dumps({"format": "other", "weights": {}}))
    with pytest.raises(ValueError, match="format"):
        load_scorer(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable scorer"):
        load_scorer(bad)
    with pytest.raises(ValueError, match="allowed: log_quality"):
        ScorerPolicy({"log_qualty": 1.0})
    with pytest.raises(ValueError, match="expected 15 weights"):
        ScorerPolicy(np.zeros(3))


def test_tiny_search_writes_its_outputs(tmp_path):
    out = tmp_path / "es"
    result = train_cmaes(SCENARIO, generations=2, seed=0, out_dir=out, population=3,
                         seeds_per_generation=1, start=START, workers=1,
                         validation_seeds=(7, 8), progress=False)  # fmt: skip
    lines = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [x["generation"] for x in lines] == [0, 1]
    assert all(x["greedy_science"] > 0 for x in lines)
    policy = load_scorer(out)
    np.testing.assert_allclose(policy.weights, result.weights)
    assert result.weights.any()  # the mean moved
    assert not result.weights[-2:].any()  # look-ahead weights are searched only on request
    v = json.loads((out / "validation.json").read_text())
    for metric in ("science_value", "alerts_followed"):
        d = v[metric]
        assert d["n"] == 2 and d["gain_low"] <= d["gain_mean"] <= d["gain_high"]
    assert (out / "training.png").stat().st_size > 10_000
    manifest = json.loads((out / "scorer.json").read_text())
    assert "--algo cma-es" in manifest["command"] and manifest["population"] == 3


def test_search_is_reproducible_whatever_the_pool(tmp_path):
    kwargs = dict(generations=1, seed=3, population=3, seeds_per_generation=2, start=START,
                  start_spread_days=365, validation_seeds=(9,), progress=False)  # fmt: skip
    one = train_cmaes(SCENARIO, out_dir=tmp_path / "a", workers=1, **kwargs)
    two = train_cmaes(SCENARIO, out_dir=tmp_path / "b", workers=2, **kwargs)
    np.testing.assert_array_equal(one.weights, two.weights)
    assert (tmp_path / "a" / "history.jsonl").read_text().split('"wall_s"')[0] == (
        tmp_path / "b" / "history.jsonl"
    ).read_text().split('"wall_s"')[0]


def test_training_dates_spread_over_the_year():
    dates = _starts("2027-01-01", 365, np.random.default_rng(0), 200)
    days = (np.array(dates, dtype="datetime64[D]") - np.datetime64("2027-01-01")).astype(int)
    assert days.min() >= 0 and days.max() <= 364
    assert np.histogram(days, bins=4, range=(0, 365))[0].min() >= 30  # every season
    assert dates == _starts("2027-01-01", 365, np.random.default_rng(0), 200)
    assert _starts("2027-04-07", 0, np.random.default_rng(0), 3) == ["2027-04-07"] * 3


def test_paired_difference_of_a_policy_with_itself_is_zero():
    ev = E.evaluate("greedy", SCENARIO, [1, 2], oracle=False)
    d = E.paired_difference(ev, ev)
    assert d["science_value"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 2}
    swapped = dataclasses.replace(ev, rows=ev.rows[::-1])
    with pytest.raises(ValueError, match="same seeds"):
        E.paired_difference(ev, swapped)


def test_cli_against_greedy_reports_the_paired_difference(tmp_path, capsys):
    path = save_scorer(tmp_path / "scorer.json", _weights(log_quality=2.0))
    out_json = tmp_path / "eval.json"
    argv = ["evaluate", "--policy", str(path), "--scenario", str(SCENARIO), "--seeds", "1..2",
            "--no-oracle", "--against", "greedy", "--json", str(out_json)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "minus greedy, seed by seed" in text
    record = json.loads(out_json.read_text())
    d = record["against"]["paired_difference"]["science_value"]
    rows, ref = record["rows"], record["against"]["rows"]
    diffs = [a["science_value"] - b["science_value"] for a, b in zip(rows, ref, strict=True)]
    assert d["mean"] == pytest.approx(np.mean(diffs))


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped scorer")
def test_shipped_scorer_runs_a_night_without_violations(tmp_path):
    _, metrics = _night(tmp_path, str(SHIPPED), seed=5)
    assert metrics["constraint_violations"]["count"] == 0
    assert metrics["network"]["exposures"] > 300


def test_a_lookahead_start_needs_the_lookahead_search(tmp_path):
    lookahead = ROOT / "agents" / "trained" / "es-lookahead-global-3site"
    with pytest.raises(ValueError, match="look-ahead weights"):
        train_cmaes(SCENARIO, generations=1, out_dir=tmp_path / "es", start=START, workers=1,
                    init_from=lookahead, progress=False)  # fmt: skip
