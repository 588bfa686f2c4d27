"""The in-loop pipeline on a tiny world: frames equal the post-run render, a rejected
frame's visit is repeated, results cross the link, the run is the same bit for bit."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.errors import ConfigError
from twin.imaging.frames import RunFrames, render_arrays
from twin.ops.run import run_scenario
from twin.pipeline.registry import resolve_stages
from twin.pipeline.stage import Frame, PipelineStage, StageResult
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
TINY = """
name: tiny-pipeline
start: 2027-03-10
nights: 1
seed: 5
sites:
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
programmes:
  - name: monitoring
    min_frame_quality: 0.5
    visits: 1
    plan: [{band: r, exptime_s: 30, count: 2}]
    targets:
      - {name: NGC 2070, ra_deg: 84.676, dec_deg: -69.101}
      - {name: M83, ra_deg: 204.254, dec_deg: -29.866}
      - {name: NGC 3372, ra_deg: 161.265, dec_deg: -59.867}
pipeline: {frame_size_pix: 64, processing_s: 10}
"""


class Recording:
    """A stage that keeps every frame and rejects the frames of its first visit."""

    name, version = "recording", "test-1"

    def __init__(self) -> None:
        self.frames: dict[int, Frame] = {}

    def process(self, frame: Frame) -> StageResult:
        self.frames[frame.exposure.obs_id] = frame
        score = 10.0 if frame.exposure.visit_id == 1 else 80.0
        return StageResult(self.name, self.version, score=score, seeing_arcsec=1.0,
                           flags={"cloud": 0.9 if score < 50 else 0.1})  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("sc") / "tiny.yaml"
    path.write_text(TINY)
    scenario = load_scenario(path)
    stage = Recording()
    out = tmp_path_factory.mktemp("run") / "run"
    result = run_scenario(scenario, out, "greedy", progress=False, plots=False, stages=[stage])
    return scenario, stage, result, out


def test_the_recording_stage_is_a_pipeline_stage():
    assert isinstance(Recording(), PipelineStage)


def test_a_frame_rendered_in_the_loop_equals_the_post_run_render(tiny):
    scenario, stage, _, out = tiny
    frames = RunFrames(out, size=scenario.pipeline.frame_size_pix)
    assert len(stage.frames) >= 4
    for obs_id, frame in list(stage.frames.items())[:3]:
        detector, _ = render_arrays(frames.spec(obs_id), frames.options)
        np.testing.assert_array_equal(frame.data_adu, detector.raw_adu)
        assert frame.data_adu.shape == (64, 64)
        assert frame.header["OBS_ID"] == obs_id and frame.header["GALAXIES"] == "parametric"


def test_pipeline_table_has_a_row_per_frame_received_over_the_link(tiny):
    scenario, stage, _, out = tiny
    pipe = pd.read_parquet(out / "pipeline.parquet")
    obs = pd.read_parquet(out / "observations.parquet")
    assert sorted(pipe["obs_id"]) == sorted(obs["obs_id"]) == sorted(stage.frames)
    merged = pipe.merge(obs[["obs_id", "mjd_end"]], on="obs_id")
    readout_s = 28.0  # the 1m preset
    delay_s = (merged["mjd_done"] - merged["mjd_end"]) * 86400.0
    np.testing.assert_allclose(delay_s, readout_s + scenario.pipeline.processing_s, atol=1e-3)
    assert (merged["mjd_received"] > merged["mjd_done"]).all()  # the link's latency
    assert set(pipe["stage"]) == {"recording"} and set(pipe["model_version"]) == {"test-1"}
    assert math.isnan(pipe["flag_trail"].iloc[0])  # not measured by this stage


def test_a_rejected_frame_makes_the_centre_repeat_its_visit(tiny):
    _, _, result, out = tiny
    pipe = pd.read_parquet(out / "pipeline.parquet")
    events = pd.read_parquet(out / "events.parquet")
    obs = pd.read_parquet(out / "observations.parquet")
    first = pipe[pipe["visit_id"] == 1]
    assert len(first) == 2 and not first["accepted"].any() and (first["action"] == "repeat").all()
    assert pipe[pipe["visit_id"] != 1]["accepted"].all()
    assert (events["kind"] == "frame_rejected").sum() == 2
    repeated = events[events["kind"] == "visit_repeated"]
    assert len(repeated) == 1  # once per visit, not per frame
    request = first["request_id"].iloc[0]
    assert repeated["ref"].iloc[0] == request
    visits = obs[obs["request_id"] == request]["visit_id"].unique()
    assert len(visits) == 2  # visits: 1, and it was observed again
    pipeline = result.metrics["run"]["pipeline"]
    assert pipeline["frames"] == len(pipe) and pipeline["rejected"] == 2
    assert pipeline["visits_repeated"] == 1


def test_the_centre_measured_the_telescope_from_its_frames(tiny):
    _, _, result, _ = tiny
    measured = result.twin.pipeline.measured["pachon-1m"]
    assert measured.seeing_arcsec == 1.0 and measured.score == 80.0


def test_conditions_show_only_measurements_that_reached_the_centre(tmp_path):
    from agents.baselines import GreedyPolicy

    seen = []

    class Spy(GreedyPolicy):
        def decide(self, conditions):
            seen.append((conditions.mjd, dict(conditions.measured)))
            return super().decide(conditions)

    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    run_scenario(load_scenario(path), tmp_path / "run", Spy(), progress=False, plots=False,
                 stages=[Recording()])  # fmt: skip
    pipe = pd.read_parquet(tmp_path / "run" / "pipeline.parquet")
    assert not seen[0][1]  # nothing measured before the first frame
    later = [(mjd, m) for mjd, m in seen if m]
    assert later
    for mjd, measured in later:
        frame = measured["pachon-1m"]
        assert frame.mjd <= mjd  # received before the decision
        row = pipe[pipe["obs_id"] == frame.obs_id].iloc[0]
        assert row["mjd_received"] == frame.mjd and row["score"] == frame.score


def test_a_run_with_a_pipeline_is_the_same_twice(tiny, tmp_path):
    scenario, _, _, out = tiny
    again = tmp_path / "again"
    run_scenario(scenario, again, "greedy", progress=False, plots=False, stages=[Recording()])
    for name in ("observations", "events", "timeline", "pipeline"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"),
                                      pd.read_parquet(again / f"{name}.parquet"))  # fmt: skip


def test_without_a_pipeline_the_run_writes_no_pipeline_table(tmp_path):
    scenario = load_scenario(ROOT / "scenarios" / "single-site.yaml", start="2027-03-10")
    run_scenario(scenario, tmp_path / "run", "greedy", progress=False, plots=False)
    assert not (tmp_path / "run" / "pipeline.parquet").exists()


def test_unknown_stage_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown stage"):
        resolve_stages(["no-such-stage"])
    with pytest.raises(ConfigError, match="twice"):
        resolve_stages(["quality", "quality"])


def test_the_twin_imports_and_runs_without_torch(tmp_path):
    """A finder that refuses ``torch`` makes any ``import torch`` fail, as if not installed."""
    code = (
        "import sys, importlib.abc\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is not installed (test)')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from twin.scenario import load_scenario\n"
        "from twin.ops.run import run_scenario\n"
        f"s = load_scenario({str(ROOT / 'scenarios' / 'single-site.yaml')!r}, "
        "start='2027-03-10')\n"
        f"r = run_scenario(s, {str(tmp_path / 'run')!r}, 'greedy', progress=False, plots=False)\n"
        "assert r.metrics['run']['exposures'] > 100\n"
        "assert 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


class FocusAlarm:
    """Flags ``focus`` on every frame, as a model would on a drifting telescope."""

    name, version = "focus-alarm", "test-1"

    def process(self, frame: Frame) -> StageResult:
        return StageResult(self.name, self.version, score=90.0, flags={"focus": 0.99})


def test_a_persistent_focus_flag_makes_the_telescope_refocus(tmp_path):
    path = tmp_path / "drift.yaml"
    path.write_text(
        TINY + "equipment: {focus_temp_coeff_um_per_c: 300, "
        "refocus_interval_h: 12, refocus_threshold_c: 20}\n"
    )
    scenario = load_scenario(path)
    out = tmp_path / "run"
    result = run_scenario(scenario, out, "greedy", progress=False, plots=False,
                          stages=[FocusAlarm()])  # fmt: skip
    events = pd.read_parquet(out / "events.parquet")
    refocus = events[events["kind"] == "refocus"]
    pipe = pd.read_parquet(out / "pipeline.parquet")
    n_frames = len(pipe)
    assert len(refocus) == n_frames // scenario.pipeline.refocus_after
    assert result.metrics["run"]["pipeline"]["refocus_orders"] == len(refocus)
    # After the order reaches the telescope its focus is reset (residual 0 µm).
    tw = result.twin.world.telescopes[0]
    t = float(refocus["mjd"].iloc[0])
    assert float(tw.equipment.focus.offset_um(t)) == pytest.approx(0.0, abs=1e-9)
    obs = pd.read_parquet(out / "observations.parquet")
    before = obs[obs["mjd_start"] < t]["focus_offset_um"].abs()
    just_after = obs[obs["mjd_start"] >= t].head(1)["focus_offset_um"].abs()
    assert float(just_after.iloc[0]) < float(before.iloc[-1])


class RejectFirstVisit:
    """Rejects the first visit's frames; reports each frame's obs_id as its seeing."""

    name, version = "reject-first", "test-1"

    def process(self, frame: Frame) -> StageResult:
        score = 10.0 if frame.exposure.visit_id == 1 else 80.0
        return StageResult(self.name, self.version, score=score,
                           seeing_arcsec=frame.exposure.obs_id / 100.0)  # fmt: skip


def test_a_rejection_during_its_visit_repeats_the_visit_once_it_ends(tmp_path):
    """With 60-s exposures and no processing time, the first frame's result reaches the
    centre while the visit is still exposing: the repeat waits for the visit's end (else
    the visit, recorded after it, would cancel it)."""
    path = tmp_path / "long.yaml"
    path.write_text(TINY.replace("exptime_s: 30, count: 2", "exptime_s: 60, count: 4")
                    .replace("processing_s: 10", "processing_s: 0"))  # fmt: skip
    out = tmp_path / "run"
    result = run_scenario(load_scenario(path), out, "greedy", progress=False, plots=False,
                          stages=[RejectFirstVisit()])  # fmt: skip
    pipe = pd.read_parquet(out / "pipeline.parquet")
    obs = pd.read_parquet(out / "observations.parquet")
    events = pd.read_parquet(out / "events.parquet")
    first = obs[obs["visit_id"] == 1]
    assert len(first) == 4
    first_result = pipe[pipe["obs_id"] == first["obs_id"].min()]["mjd_received"].iloc[0]
    assert first_result < first["mjd_end"].max()  # it arrived mid-visit
    repeated = events[events["kind"] == "visit_repeated"]
    assert len(repeated) == 1
    assert repeated["mjd"].iloc[0] >= first["mjd_end"].max()  # applied at the visit's end
    request = first["request_id"].iloc[0]
    assert obs[obs["request_id"] == request]["visit_id"].nunique() == 2  # visited again
    # The centre's measurement is the last frame it received, not any frame.
    last = pipe.sort_values("mjd_received").iloc[-1]
    measured = result.twin.measured["pachon-1m"]
    assert measured.obs_id == last["obs_id"]
    assert measured.seeing_arcsec == pytest.approx(last["obs_id"] / 100.0)
