"""What the centre does with measurements: greedy avoids visits whose frames would be
rejected, and a persistent tracking flag gets the mount serviced."""

from __future__ import annotations

import numpy as np
import pandas as pd

from agents.baselines import _Baseline, greedy_rate
from twin.ops.run import run_scenario
from twin.pipeline.stage import Frame, StageResult
from twin.scenario import load_scenario

TWO_PROGRAMMES = """
name: strict-and-lenient
start: 2027-03-10
nights: 1
seed: 5
sites:
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
programmes:
  - name: strict
    priority: 4.0
    min_frame_quality: 0.5
    visits: 0
    cadence_days: 0.01
    plan: [{band: r, exptime_s: 240, count: 1}]
    targets:
      - {name: S-60, ra_deg: 60.0, dec_deg: -30.0}
      - {name: S-150, ra_deg: 150.0, dec_deg: -30.0}
      - {name: S-240, ra_deg: 240.0, dec_deg: -30.0}
      - {name: S-330, ra_deg: 330.0, dec_deg: -30.0}
  - name: lenient
    priority: 1.0
    visits: 0
    cadence_days: 0.001
    plan: [{band: r, exptime_s: 240, count: 1}]
    targets:
      - {name: L-75, ra_deg: 75.0, dec_deg: -30.0}
      - {name: L-165, ra_deg: 165.0, dec_deg: -30.0}
      - {name: L-255, ra_deg: 255.0, dec_deg: -30.0}
      - {name: L-345, ra_deg: 345.0, dec_deg: -30.0}
pipeline: {frame_size_pix: 32, processing_s: 0, max_repeats: 0}
"""


class Poor:
    """Every frame comes out at a score of 20: the telescope delivers far less than its
    monitors promise (say, a dirty mirror the scheduler cannot see)."""

    name, version = "poor", "test-1"

    def process(self, frame: Frame) -> StageResult:
        return StageResult(self.name, self.version, score=20.0, seeing_arcsec=2.0)


class RateArgmax(_Baseline):
    """Greedy's rate without the measurements: the reference greedy must beat."""

    name = "rate-argmax"

    def choose(self, conditions, feasible):
        return int(np.argmax(greedy_rate(conditions, feasible)))


def _run(tmp_path, policy, name):
    path = tmp_path / "two.yaml"
    path.write_text(TWO_PROGRAMMES)
    out = tmp_path / name
    result = run_scenario(load_scenario(path), out, policy, progress=False, plots=False,
                          stages=[Poor()])  # fmt: skip
    return result, pd.read_parquet(out / "pipeline.parquet")


def test_greedy_turns_to_the_programme_that_accepts_what_the_telescope_delivers(tmp_path):
    _, blind = _run(tmp_path, RateArgmax(), "blind")
    _, measured = _run(tmp_path, "greedy", "greedy")
    # Without measurements greedy keeps spending time on frames the centre rejects.
    strict = blind["program"] == "strict"
    assert strict.mean() > 0.4 and (~blind["accepted"]).sum() == strict.sum()
    # With them, once the first results are in it observes what will be accepted: the
    # stage's constant score makes the ratio noisy, so a few strict frames slip through.
    late = measured[measured["mjd_done"] > measured["mjd_received"].iloc[2]]
    assert len(late) > 50 and (late["program"] == "strict").mean() < 0.1
    assert (~measured["accepted"]).sum() < 0.2 * (~blind["accepted"]).sum()


class TrackingAlarm:
    """Flags every frame as trailed (the pipeline's tracking flag)."""

    name, version = "tracking-alarm", "test-1"

    def process(self, frame: Frame) -> StageResult:
        return StageResult(self.name, self.version, score=90.0, flags={"tracking": 0.99})


def test_a_persistent_tracking_flag_gets_the_mount_serviced(tmp_path):
    path = tmp_path / "faults.yaml"
    path.write_text(TWO_PROGRAMMES.replace("max_repeats: 0", "max_repeats: 0, service_min: 3")
                    + "equipment: {tracking_fault_rate_per_night: 3, "
                    "tracking_fault_mean_duration_min: 600}\n")  # fmt: skip
    scenario = load_scenario(path)
    out = tmp_path / "run"
    result = run_scenario(scenario, out, "greedy", progress=False, plots=False,
                          stages=[TrackingAlarm()])  # fmt: skip
    events = pd.read_parquet(out / "events.parquet")
    service = events[events["kind"] == "mount_service"]
    n_frames = len(pd.read_parquet(out / "pipeline.parquet"))
    assert len(service) == n_frames // scenario.pipeline.service_after
    assert result.metrics["run"]["pipeline"]["service_orders"] == len(service)
    cleared = service[service["detail"].str.endswith("fault cleared")]
    assert len(cleared) >= 1
    tracking = result.twin.world.telescopes[0].equipment.tracking
    obs = pd.read_parquet(out / "observations.parquet")
    jitter = scenario.equipment.tracking_jitter_arcsec
    checked = 0
    for t in cleared["mjd"]:
        assert not tracking.in_fault(np.array([t]))[0]
        k = np.searchsorted(tracking.start_fault_mjd, t, side="right")
        next_fault = tracking.start_fault_mjd[k] if k < tracking.start_fault_mjd.size else np.inf
        clean = obs[(obs["mjd_start"] >= t) & (obs["mjd_end"] < next_fault)]
        np.testing.assert_allclose(clean["tracking_error_arcsec"], jitter)
        checked += len(clean)
    assert checked > 0
