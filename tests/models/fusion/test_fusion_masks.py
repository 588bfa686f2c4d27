"""Masks: a bad pixel in one frame leaks no NaN; the frames left make the pixels near it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.fusion import METHODS, AlignedFrame, flux_scale_from_zero_point
from models.fusion.photometry import psf_flux
from models.fusion.stamps import gaussian_psf


def damaged(stack):
    """Frame 1 gets a NaN bad column and a NaN pixel; a 5×5 box is masked in every frame."""
    frames, clean = [], []
    for j, s in enumerate(stack):
        mask = np.zeros(s.frame.shape, bool)
        mask[90:95, 60:65] = True
        data = s.frame.data_e.copy()
        if j == 1:
            mask[:, 120] = True
            mask[100, 100] = True
            data[mask] = np.nan
        frames.append(replace(s.frame, data_e=data, mask=mask))
        clean.append(replace(s.noiseless, mask=mask))
    return frames, clean


@pytest.mark.parametrize("method", sorted(METHODS))
def test_masked_pixels_leak_no_nan_and_stay_calibrated(twin_stack, method):
    frames, clean = damaged(twin_stack)
    coadd = METHODS[method](frames)
    truth = METHODS[method](clean)
    assert np.isfinite(coadd.image).all()
    assert not np.isnan(coadd.variance).any()
    # Masked in every frame: no data, said so.
    assert coadd.mask[90:95, 60:65].all()
    assert (coadd.image[coadd.mask] == 0).all() and np.isinf(coadd.variance[coadd.mask]).all()
    # Frame 1's column: the other two frames make it, with an honest variance.
    column = coadd.frames_in[60:130, 120]
    assert (column == 0b101).all()
    assert not coadd.mask[60:130, 120].any()
    pull = ((coadd.image - truth.image) / coadd.sigma)[60:130, 110:131]
    # PSF-matched noise is correlated over the 2.4" PSF: ~30 independent samples here.
    assert np.std(pull) == pytest.approx(1.0, abs=0.25 if method == "psf-matched" else 0.08)


def test_the_frames_left_keep_the_flux_scale_near_a_masked_pixel():
    """A star on a pixel masked in one of two frames: the proper coadd of the other keeps
    its flux, measured with the PSF of the frames that made it (``psf_at``)."""
    size, x, y = 96, 48.3, 47.6
    frames = []
    for fwhm, scale in ((2.5, 1.0), (5.0, 0.6)):
        psf = gaussian_psf(fwhm, 41)
        image = np.zeros((size, size))
        yy, xx = np.mgrid[0:size, 0:size]
        # Gaussian star at (x, y), integrated over pixels.
        from scipy import special

        sig = fwhm / 2.3548200450309493
        gx = np.diff(special.ndtr((np.arange(size + 1) - 0.5 - x) / sig))
        gy = np.diff(special.ndtr((np.arange(size + 1) - 0.5 - y) / sig))
        image = 500.0 * scale * np.outer(gy, gx)
        mask = np.zeros((size, size), bool)
        frames.append(AlignedFrame(image, np.full((size, size), 4.0), mask, psf, scale))
    frames[1] = replace(frames[1], mask=frames[1].mask | (np.hypot(xx - 48, yy - 48) < 2))
    for method, fn in METHODS.items():
        coadd = fn(frames)
        assert coadd.frames_in[48, 48] == 0b01, method
        flux = psf_flux(coadd.image, coadd.psf_at(x, y), x, y, ~coadd.mask)
        assert flux == pytest.approx(500.0, rel=0.01), method


def test_frames_must_share_a_grid_and_have_odd_psfs():
    psf = gaussian_psf(2.0, 11)
    ok = AlignedFrame(np.zeros((8, 8)), np.ones((8, 8)), np.zeros((8, 8), bool), psf, 1.0)
    with pytest.raises(ValueError, match="one shape"):
        AlignedFrame(np.zeros((8, 8)), np.ones((8, 9)), np.zeros((8, 8), bool), psf, 1.0)
    with pytest.raises(ValueError, match="odd square"):
        AlignedFrame(np.zeros((8, 8)), np.ones((8, 8)), np.zeros((8, 8), bool), psf[:10, :10], 1.0)
    other = replace(
        ok, data_e=np.zeros((9, 9)), variance_e2=np.ones((9, 9)), mask=np.zeros((9, 9), bool)
    )
    with pytest.raises(ValueError, match="resample"):
        METHODS["ivw"]([ok, other])


def test_flux_scale_from_zero_point_puts_a_magzero_source_at_one_unit():
    # magzero_e 24 (1 e-/s at AB 24), 60 s: a 25th-magnitude source gives 60/2.512 e-.
    assert flux_scale_from_zero_point(24.0, 60.0, 25.0) == pytest.approx(60.0 / 10**0.4)
