"""The classical side inputs and the drawn-PSF seeing label, on frames with known truth."""

import math
from dataclasses import replace

import numpy as np
import pytest

from models.quality.classical import (
    CLASSICAL_NAMES,
    N_CLASSICAL,
    classical_features,
    measure_raw,
    sky_to_pixel,
)
from models.quality.dataset import DEFOCUS_MODEL, image_fwhm_label
from models.quality.frames import render_in_memory


def _render(run_frames, **changes):
    spec = replace(run_frames.specs(max_frames=1)[0], faults=(), **changes)
    options = replace(run_frames.options, defocus_model=DEFOCUS_MODEL)
    return spec, render_in_memory(spec, options, trail_rate_per_hour_deg2=0.0)


def test_wcs_puts_the_reference_point_on_crpix():
    header = {"CRVAL1": 150.0, "CRVAL2": -30.0, "CRPIX1": 128.5, "CRPIX2": 100.5,
              "CD1_1": -1e-4, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-4}  # fmt: skip
    x, y = sky_to_pixel(np.array([150.0]), np.array([-30.0]), header)
    assert np.allclose([x[0], y[0]], [127.5, 99.5])
    # North is +y, east (larger RA) is -x.
    x2, y2 = sky_to_pixel(np.array([150.0]), np.array([-30.0 + 1e-3]), header)
    assert abs(x2[0] - 127.5) < 1e-6 and abs(y2[0] - 109.5) < 1e-3
    x3, _ = sky_to_pixel(np.array([150.0 + 1e-3 / math.cos(math.radians(30))]),
                         np.array([-30.0]), header)  # fmt: skip
    assert x3[0] < 127.5


def test_features_are_finite_and_sized(run_frames):
    _, frame = _render(run_frames)
    values = classical_features(frame.data_adu, frame.header)
    assert values.shape == (N_CLASSICAL,) == (len(CLASSICAL_NAMES),)
    assert np.isfinite(values).all()
    flat = np.full((48, 48), 1000, np.uint16)  # nothing detected: still finite
    assert np.isfinite(classical_features(flat, frame.header)).all()


def test_zero_point_offset_reads_the_cloud(run_frames):
    """Catalogue photometry: −2.5 log10 T, from pixels and the clear-sky zero point."""
    offsets = {}
    for transparency in (1.0, 0.5):
        _, frame = _render(run_frames, transparency=transparency)
        offsets[transparency] = measure_raw(frame.data_adu, frame.header)["zp_offset"]
    if not all(math.isfinite(v) for v in offsets.values()):
        pytest.skip("no catalogue star matched in this field")
    assert abs(offsets[1.0]) < 0.1
    assert abs(offsets[0.5] - 2.5 * math.log10(2.0)) < 0.15


def test_tracking_stretches_every_source_the_same_way(run_frames):
    e = {}
    for length in (0.0, 4.0):
        _, frame = _render(run_frames, tracking_error_arcsec=length, seeing_fwhm_arcsec=0.8)
        e[length] = measure_raw(frame.data_adu, frame.header)["e_coherent"]
    assert e[4.0] > e[0.0] + 0.1


def test_seeing_label_is_the_drawn_fwhm(run_frames):
    """Without defocus it is the atmosphere and the Airy core; with the annulus defocus it
    is below the quadrature sum the log carries."""
    from twin.imaging.psf import expected_fwhm_arcsec

    spec, frame = _render(
        run_frames, seeing_fwhm_arcsec=0.6, defocus_fwhm_arcsec=1.0, tracking_error_arcsec=0.0
    )
    label = image_fwhm_label(frame.header, spec.telescope)
    exact = expected_fwhm_arcsec(spec, defocus_model=DEFOCUS_MODEL)
    assert abs(label - exact) < 0.02 * exact
    assert label < spec.image_fwhm_arcsec
