"""The transient stage on a twin frame (256²) with an injected supernova and a fake
real/bogus classifier: the transient comes back at its position, the reference is cached
in the run directory as FITS and read back to the same bits."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.transient.conftest import make_spec

SIZE = 256
MAG = 19.0


class FakeClassifier:
    """``predict_proba`` on the features alone: real when |Scorr| > 8 and brighter."""

    version = "fake-1"
    real_threshold = 0.5

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, triplets, features):
        self.calls += 1
        assert triplets.shape[1:] == (3, 63, 63) and len(triplets) == len(features)
        real = (features["scorr_abs"].to_numpy() > 8.0) & (features["sign"].to_numpy() > 0)
        return np.where(real, 0.9, 0.1)


@pytest.fixture(scope="module")
def frame_and_truth():
    from twin.imaging.fits import frame_header
    from twin.imaging.frames import render_arrays
    from twin.imaging.scene import frame_wcs
    from twin.imaging.spec import Transient
    from twin.ops.exposures import Exposure
    from twin.pipeline.spec import ReferenceSpec
    from twin.pipeline.stage import Frame
    from twin.pipeline.survey import reference_spec, site_calibration

    ra, dec = frame_wcs(make_spec(SIZE)).all_pix2world([[SIZE * 0.4 + 0.3, SIZE * 0.6 - 0.2]], 0)[0]
    spec = make_spec(SIZE, transient=Transient("AT-stage", float(ra), float(dec), MAG))
    detector, truth = render_arrays(spec)
    end_mjd = spec.mjd_start + spec.exptime_s / 86400.0
    exposure = Exposure(spec.obs_id, 1, 0, 0, 0, spec.band, spec.exptime_s, spec.mjd_start,
                        end_mjd, 0.0, 1, "t", spec.site)  # fmt: skip
    frame = Frame(exposure, detector.raw_adu, dict(frame_header(spec)),
                  reference_spec(spec, ReferenceSpec()), site_calibration(spec))  # fmt: skip
    return frame, truth[truth["type"] == "transient"].iloc[0]


def _context(run_dir):
    from twin.imaging.frames import RenderOptions
    from twin.pipeline.spec import ReferenceSpec
    from twin.pipeline.stage import StageContext

    return StageContext(RenderOptions(), ReferenceSpec(), run_dir)


@pytest.fixture(scope="module")
def processed(frame_and_truth, tmp_path_factory):
    from models.transient.stage import TransientStage

    run_dir = tmp_path_factory.mktemp("run")
    stage = TransientStage(FakeClassifier())
    stage.bind(_context(run_dir))
    frame, _ = frame_and_truth
    return stage, stage.process(frame), run_dir


def test_the_stage_is_a_pipeline_stage_that_finds_candidates():
    from models.transient.stage import TransientStage
    from twin.pipeline.stage import PipelineStage, produces_candidates

    stage = TransientStage(FakeClassifier())
    assert isinstance(stage, PipelineStage) and produces_candidates(stage)
    assert stage.name == "transient" and stage.version.endswith("+fake-1")


def test_the_injected_transient_comes_back_real_at_its_position(frame_and_truth, processed):
    _, truth = frame_and_truth
    stage, result, _ = processed
    assert stage.frames_failed == 0 and result.stage == "transient"
    real = [c for c in result.candidates if c.is_real]
    assert real, "the supernova was not found"
    best = min(real, key=lambda c: np.hypot(c.x_pix - truth["x_pix"], c.y_pix - truth["y_pix"]))
    assert np.hypot(best.x_pix - truth["x_pix"], best.y_pix - truth["y_pix"]) < 1.0
    assert best.sign == 1 and best.scorr > 10.0 and best.real_prob == pytest.approx(0.9)
    assert best.mag == pytest.approx(MAG, abs=0.2) and 0 < best.mag_err < 0.1
    # Its sky position through the refined WCS: within 1" of the truth.
    sep = np.hypot((best.ra_deg - truth["ra_deg"]) * np.cos(np.radians(truth["dec_deg"])),
                   best.dec_deg - truth["dec_deg"]) * 3600.0  # fmt: skip
    assert sep < 1.0
    assert "scorr_abs" in best.features


def test_the_reference_is_cached_on_disk_as_fits_and_read_back_exactly(frame_and_truth, processed):
    from astropy.io import fits

    from models.transient.stage import TransientStage

    frame, _ = frame_and_truth
    _, first, run_dir = processed
    files = list((run_dir / "references").glob("*.fits"))
    assert len(files) == 1 and not list((run_dir / "references").glob("*.tmp"))
    with fits.open(files[0]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "VARIANCE", "MASK"]
        assert isinstance(hdul["SCI"], fits.CompImageHDU)  # tile-compressed
    again = TransientStage(FakeClassifier())
    again.bind(_context(run_dir))
    second = again.process(frame)
    assert again.references_rendered == 0  # read from the run directory
    assert second.candidates == first.candidates
    alone = TransientStage(FakeClassifier())  # no run directory: rendered, kept in memory
    alone.bind(_context(None))
    assert alone.process(frame).candidates == first.candidates
    assert alone.references_rendered == 1


def test_a_frame_without_its_field_s_reference_is_refused(frame_and_truth):
    from dataclasses import replace

    from models.transient.stage import TransientStage

    frame, _ = frame_and_truth
    with pytest.raises(ValueError, match="reference_spec"):
        TransientStage(FakeClassifier()).process(replace(frame, reference_spec=None))
