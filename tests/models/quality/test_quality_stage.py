"""The stages on frames with one obvious problem each: the shipped CNN and the SEP baseline.

Frames are rendered in memory from a real run's spec with one condition forced, the way
the dataset forces them (:func:`models.quality.dataset.perturb`), with severe values.
"""

import json
import math
from dataclasses import replace

import pytest

from models.quality.baseline import ClassicalQualityStage
from models.quality.dataset import DEFOCUS_MODEL
from models.quality.frames import render_in_memory
from twin.pipeline.stage import FLAG_NAMES, Frame, PipelineStage

torch = pytest.importorskip("torch")

from models.quality.stage import WEIGHTS_DIR, QualityStage  # noqa: E402


def _frame(run_frames, trail_rate=None, **changes):
    spec = run_frames.specs(max_frames=1)[0]
    spec = replace(spec, **changes)
    options = replace(run_frames.options, defocus_model=DEFOCUS_MODEL)
    frame = render_in_memory(spec, options, trail_rate_per_hour_deg2=trail_rate)
    return Frame(exposure=None, data_adu=frame.data_adu, header=frame.header), frame


@pytest.fixture(scope="module")
def problem_frames(run_frames):
    trailed, rendered = _frame(run_frames, trail_rate=3e5)
    assert (rendered.truth["type"] == "trail").any(), "forced trail rate drew no trail"
    return {
        "cloud": _frame(run_frames, transparency=0.15)[0],
        "trail": trailed,
        "focus": _frame(run_frames, defocus_fwhm_arcsec=3.0)[0],
    }


@pytest.fixture(scope="module")
def stage():
    return QualityStage()


def test_weights_load_with_weights_only_and_match_the_manifest():
    from models.quality.train import sha256

    state = torch.load(WEIGHTS_DIR / "quality.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    assert manifest["sha256"] == sha256(WEIGHTS_DIR / "quality.pt")
    assert "skytwin models train quality" in manifest["train_command"]
    assert (WEIGHTS_DIR / "quality.pt").stat().st_size < 5e6


@pytest.mark.parametrize("flag", ["cloud", "trail"])
def test_the_cnn_flags_the_problem(stage, problem_frames, flag):
    result = stage.process(problem_frames[flag])
    assert set(result.flags) == set(FLAG_NAMES)
    assert flag in result.active_flags(), result.flags
    assert math.isfinite(result.score) and 0 <= result.score <= 100
    assert math.isfinite(result.seeing_arcsec) and result.seeing_arcsec > 0


def test_the_cnn_flags_the_defocused_frame_as_blurred(stage, problem_frames):
    result = stage.process(problem_frames["focus"])
    assert {"focus", "bad_seeing"} & set(result.active_flags()), result.flags
    assert result.score < 30 and result.seeing_arcsec > 1.5


def test_the_cnn_tells_focus_from_seeing(stage, problem_frames):
    # The shipped weights flag this 3" defocus (deterministic); on the held-out set the
    # focus flag's AUC is only 0.73 (weights/evaluation.json), so this is one frame.
    assert "focus" in stage.process(problem_frames["focus"]).active_flags()


@pytest.mark.parametrize("flag", ["cloud", "trail", "focus"])
def test_the_sep_baseline_flags_the_problem(problem_frames, flag):
    result = ClassicalQualityStage().process(problem_frames[flag])
    assert flag in result.active_flags(), result.flags


def test_stages_follow_the_protocol_and_are_deterministic(stage, problem_frames):
    """Speed is measured in benchmarks/pipeline.py, not here (a timed test fails on a busy
    machine and passes on a fast one, whatever the code does)."""
    assert isinstance(stage, PipelineStage) and stage.name == "quality"
    assert isinstance(ClassicalQualityStage(), PipelineStage)
    frame = problem_frames["cloud"]
    results = [stage.process(frame) for _ in range(5)]
    assert all(v == results[0].flags[k] for r in results for k, v in r.flags.items())
