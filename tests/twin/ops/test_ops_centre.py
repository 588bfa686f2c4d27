"""The centre skips an alert exposure's depth when its detection could change nothing.

A detection report acts only while the alert is undetected, or when it confirms from
another site while nothing is confirmed; both are set once and never cleared. So the
loop asks :meth:`Centre.detection_matters` first, and a run is the same as one that
computes every alert exposure's detection.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from agents.baselines import GreedyPolicy
from twin.ops.centre import AlertState, Centre
from twin.ops.network import NetworkTwin
from twin.ops.run import run_scenario
from twin.ops.stepping import NullRecorder
from twin.ops.world import World
from twin.scenario import load_scenario

DENSE = Path(__file__).resolve().parents[3] / "scenarios" / "dense-8site.yaml"


@pytest.fixture(scope="module")
def centre() -> Centre:
    scenario = load_scenario(DENSE, nights=1, seed=2)
    return NetworkTwin(World(scenario), GreedyPolicy(), NullRecorder()).centre


def test_detection_matters_until_detected_then_for_a_confirmation_only(centre):
    alert = next(iter(centre.alerts.values())).alert
    followup = SimpleNamespace(request_id=f"{alert.alert_id}-followup")
    confirm = SimpleNamespace(request_id=f"{alert.alert_id}-confirm")
    state = AlertState(alert)
    assert centre.detection_matters(state, followup, "teide")
    state.detected_mjd, state.detected_site = 61000.1, "teide"
    assert not centre.detection_matters(state, followup, "teide")
    assert not centre.detection_matters(state, followup, "la-palma")
    assert not centre.detection_matters(state, confirm, "teide")  # its own detection
    assert centre.detection_matters(state, confirm, "la-palma")
    state.confirmed_mjd = 61000.2
    assert not centre.detection_matters(state, confirm, "la-palma")


def test_detection_never_matters_when_the_pipeline_detects(centre):
    state = AlertState(next(iter(centre.alerts.values())).alert)
    centre.detection, saved = "stage", centre.detection
    try:
        assert not centre.detection_matters(state, SimpleNamespace(request_id="x"), "teide")
    finally:
        centre.detection = saved


def test_a_run_equals_one_computing_every_detection(tmp_path, monkeypatch):
    def tables(out: Path) -> dict[str, pd.DataFrame]:
        scenario = load_scenario(DENSE, nights=2, seed=4)
        run_scenario(scenario, out, "greedy", progress=False, plots=False)
        return {t: pd.read_parquet(out / f"{t}.parquet") for t in ("events", "alerts")}

    skipped = tables(tmp_path / "skipping")
    events = skipped["events"]
    assert (events["kind"] == "alert_detected").sum() > 0
    assert (events["kind"] == "alert_confirmed").sum() > 0
    monkeypatch.setattr(Centre, "detection_matters", lambda self, *a: self.detection == "m5")
    every = tables(tmp_path / "every")
    for name, frame in every.items():
        pd.testing.assert_frame_equal(skipped[name], frame, check_exact=True, obj=name)
