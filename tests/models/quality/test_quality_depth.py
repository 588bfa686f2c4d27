"""The measured depth: m5, transparency and score from a frame's pixels, against the log.

Frames of a real run rendered in memory at 512² (the depth needs the whole frame's stars);
the log's ``m5`` and ``quality`` come from the exposure-time calculator, an independent
path from the pixels the measurement reads.
"""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.quality.depth import measure_depth, score_from_depth
from models.quality.frames import render_in_memory
from twin.imaging.frames import RunFrames
from twin.pipeline.stage import Frame


@pytest.fixture(scope="module")
def frames_512(run_frames):
    frames = RunFrames(run_frames.run_dir, size=512)
    obs = pd.read_parquet(run_frames.run_dir / "observations.parquet").set_index("obs_id")
    # Every 25th exposure: sites, bands and seeing of the whole night.
    ids = obs.index.to_numpy()[::25][:8]
    return frames, obs, [int(i) for i in ids]


def _render(frames, obs_id, **changes):
    spec = replace(frames.spec(obs_id), **changes)
    return spec, render_in_memory(spec, frames.options)


def test_depth_and_score_agree_with_the_exposure_time_calculator(frames_512):
    frames, obs, ids = frames_512
    m5_err, score_err = [], []
    for obs_id in ids:
        _spec, frame = _render(frames, obs_id)
        depth = measure_depth(frame.data_adu, frame.header)
        if math.isnan(depth["score"]):  # a 3.3' window at the Galactic pole: one star
            continue
        m5_err.append(depth["m5"] - obs.loc[obs_id, "m5"])
        score_err.append(depth["score"] - 100.0 * obs.loc[obs_id, "quality"])
    assert len(m5_err) >= 6
    assert abs(np.median(m5_err)) < 0.06  # no bias
    assert np.max(np.abs(m5_err)) < 0.15
    assert np.mean(np.abs(score_err)) < 6.0


def test_a_cloud_is_measured_as_the_light_it_took(frames_512):
    frames, _obs, ids = frames_512
    rich = ids[4]  # 100+ stars in the window
    clear_spec, clear = _render(frames, rich)
    _cloudy_spec, cloudy = _render(frames, rich, transparency=0.4)
    a = measure_depth(clear.data_adu, clear.header)
    b = measure_depth(cloudy.data_adu, cloudy.header)
    # Against the clear-sky calibration, which already holds the mirror's throughput.
    assert b["transparency"] == pytest.approx(0.4, rel=0.08)
    assert a["transparency"] == pytest.approx(clear_spec.transparency, rel=0.06)
    # The depth the exposure-time calculator gives the cloudy frame (the cloud dims the
    # sky too, so it costs less than 2.5 log10(1 / 0.4) = 1 mag).
    tw = frames.telescopes[clear_spec.telescope.name]
    etc_m5 = float(tw.quality.depth(clear_spec.band, clear_spec.exptime_s,
                                    airmass=np.asarray(clear_spec.airmass),
                                    seeing_fwhm_arcsec=np.asarray(clear_spec.image_fwhm_arcsec),
                                    sky_mag_arcsec2=np.asarray(clear_spec.sky_mag_arcsec2),
                                    transparency=np.asarray(0.4),
                                    throughput=clear_spec.throughput))  # fmt: skip
    assert b["m5"] == pytest.approx(etc_m5, abs=0.1)
    assert a["m5"] - b["m5"] > 0.4
    assert b["score"] < 0.3 * a["score"]


def test_the_truth_cards_are_not_read(frames_512):
    """Changing every truth card of the header changes nothing measured."""
    frames, _obs, ids = frames_512
    _spec, frame = _render(frames, ids[1])
    header = dict(frame.header)
    lied = dict(header)
    for key in ("SEEING", "DEFOCUS", "IMGFWHM", "TRACKERR", "SKYMAG", "SKYLEVEL",
                "PNTERRRA", "PNTERRDE", "TRUERA", "TRUEDEC"):  # fmt: skip
        lied[key] = 0.0 if key not in ("TRUERA", "TRUEDEC") else 1.0
    assert measure_depth(frame.data_adu, lied) == measure_depth(frame.data_adu, header)


def test_the_depth_does_not_come_from_the_zero_point_cards(frames_512):
    """MAGZERO holds the true transparency; the depth must come from the stars instead:
    a cloudy frame whose cards claim a clear sky (or a zero point 0.3 mag off) measures
    the same m5."""
    frames, _obs, ids = frames_512
    _spec, frame = _render(frames, ids[4], transparency=0.5)
    header = dict(frame.header)
    honest = measure_depth(frame.data_adu, header)
    clear_claim = dict(header, TRANSPAR=1.0)  # MAGZERO now reads as a clear-sky zero point
    off = dict(header, MAGZERO=header["MAGZERO"] + 0.3)
    for lie in (clear_claim, off):
        lied = measure_depth(frame.data_adu, lie)
        assert lied["m5"] == pytest.approx(honest["m5"], abs=0.02)
        assert lied["score"] == pytest.approx(honest["score"], abs=1.0)
    assert honest["transparency"] == pytest.approx(0.5, rel=0.08)


def test_the_reference_depth_is_the_telescopes_calibration(frames_512):
    frames, _obs, ids = frames_512
    spec = frames.spec(ids[0])
    tw = frames.telescopes[spec.telescope.name]
    assert spec.m5_ref_mag == tw.quality.m5_ref(spec.band, spec.exptime_s)
    _spec, frame = _render(frames, ids[0])
    assert frame.header["M5REF"] == pytest.approx(spec.m5_ref_mag)
    assert score_from_depth(spec.m5_ref_mag, frame.header) == pytest.approx(100.0)
    assert score_from_depth(spec.m5_ref_mag - 0.5, frame.header) == pytest.approx(
        100.0 * 10 ** (-0.4), rel=1e-9
    )
    no_ref = {k: v for k, v in frame.header.items() if k != "M5REF"}
    assert math.isnan(score_from_depth(spec.m5_ref_mag, no_ref))


def test_an_empty_frame_gives_no_depth_and_the_stage_keeps_the_cnns_score(frames_512):
    pytest.importorskip("torch")
    from models.quality.depth import DepthQualityStage
    from twin.pipeline.registry import resolve_stage

    frames, _obs, ids = frames_512
    _spec, frame = _render(frames, ids[0], transparency=0.002)  # nothing but sky
    depth = measure_depth(frame.data_adu, frame.header)
    assert math.isnan(depth["score"]) and math.isnan(depth["m5"])
    stage = resolve_stage("quality-depth")
    assert isinstance(stage, DepthQualityStage)
    result = stage.process(Frame(exposure=None, data_adu=frame.data_adu, header=frame.header))
    cnn = stage.cnn.process(Frame(exposure=None, data_adu=frame.data_adu, header=frame.header))
    assert result.score == cnn.score and result.flags == cnn.flags
    assert result.model_version.endswith("+depth-2")


def test_the_stage_reports_the_measured_depth_and_cloud(frames_512):
    pytest.importorskip("torch")
    from models.quality.depth import cloud_probability
    from twin.pipeline.registry import resolve_stage

    frames, _obs, ids = frames_512
    stage = resolve_stage("quality-depth")
    for transparency, cloudy in ((1.0, False), (0.4, True)):
        _spec, frame = _render(frames, ids[4], transparency=transparency)
        depth = measure_depth(frame.data_adu, frame.header)
        result = stage.process(Frame(exposure=None, data_adu=frame.data_adu,
                                     header=frame.header))  # fmt: skip
        cnn = stage.cnn.process(Frame(exposure=None, data_adu=frame.data_adu,
                                      header=frame.header))  # fmt: skip
        assert result.score == depth["score"] != cnn.score
        assert result.seeing_arcsec == depth["fwhm_arcsec"]
        assert result.flags["cloud"] == cloud_probability(depth["transparency"])
        assert ("cloud" in result.active_flags()) is cloudy
        assert {k: v for k, v in result.flags.items() if k != "cloud"} == {
            k: v for k, v in cnn.flags.items() if k != "cloud"
        }
