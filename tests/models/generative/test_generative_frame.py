"""A frame whose bright galaxies come from the shipped diffusion model passes the twin's
independent-measurement tests unchanged: star FWHM = the delivered seeing, aperture
photometry = the header zero point, SEP background = the sky model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import sep

import twin  # noqa: F401
from models.generative.generator import GalaxyGenerator
from models.generative.source import DiffusionGalaxyStamps
from twin.imaging.detector import apply_detector, bias_image, flat_field
from twin.imaging.fits import read_frame, write_frame
from twin.imaging.render import psf_fwhm_px, render_expected

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "twin" / "imaging"))
import test_imaging_measured as measured

MAG_LIMIT_I = 18.5
"""Fewer banked galaxies than the renderer's default (i < 20), so the test takes seconds."""


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """``test_imaging_measured``'s frame, its galaxies from the generator (4 DDIM steps)."""
    spec = measured.make_spec()
    source = DiffusionGalaxyStamps(psf_fwhm_px(spec) * spec.pixel_scale_arcsec,
                                   bank_dir=tmp_path_factory.mktemp("bank"),
                                   generator=GalaxyGenerator(steps=4),
                                   mag_limit_i=MAG_LIMIT_I)  # fmt: skip
    rendered = render_expected(spec, stamp_source=source)
    galaxies = rendered.truth[rendered.truth["type"] == "galaxy"].to_dict("records")
    banked = sum(f is not None for f in source.lookup(galaxies))
    assert banked >= 3  # the brightest galaxies of the frame, the rest parametric
    detector = apply_detector(rendered.image_e, spec, np.random.default_rng(spec.seed))
    path = write_frame(tmp_path_factory.mktemp("f") / "f.fits", detector.raw_adu, spec,
                       rendered.truth, detector=detector)  # fmt: skip
    raw, header, truth = read_frame(path)
    data = (raw.astype(float) - bias_image(spec)) / flat_field(spec)
    mask = detector.saturated | detector.hot_pixel_mask | detector.bad_column_mask
    background = sep.Background(data, mask=mask)
    sub = data - background.back()
    return spec, header, truth, data, sub, mask, background


def test_star_fwhm(frame):
    measured.test_measured_fwhm_matches_the_delivered_seeing(frame)


def test_zero_point(frame):
    measured.test_aperture_photometry_gives_the_header_zero_point(frame)


def test_background(frame):
    measured.test_background_matches_the_sky_model(frame)
