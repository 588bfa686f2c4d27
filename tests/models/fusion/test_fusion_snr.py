"""Point-source SNR: the proper coadd adds SNR² over frames; the others fall short."""

from __future__ import annotations

import numpy as np
import pytest

from models.fusion import inverse_variance_coadd, proper_coadd, psf_matched_coadd
from models.fusion.photometry import coadd_flux_sigma, frame_flux_sigma, matched_filter_sigma
from models.fusion.stamps import otf


def snr2_sum(frames) -> float:
    return sum(frame_flux_sigma(f) ** -2 for f in frames)


def test_proper_coadd_adds_snr2_exactly_on_gaussian_frames(gaussian_stack):
    frames, _, _ = gaussian_stack([2.0, 4.0, 6.0], [10.0, 8.0, 5.0], [1.0, 0.7, 1.2])
    coadd = proper_coadd(frames)
    assert coadd_flux_sigma(coadd, frames) ** -2 / snr2_sum(frames) == pytest.approx(1, abs=2e-3)


def test_proper_coadd_psf_and_normalisation_are_zackay_ofek_eq_10(gaussian_stack):
    frames, clean, _ = gaussian_stack([2.0, 5.0], [10.0, 6.0], [1.0, 0.5])
    coadd = proper_coadd(frames)
    f_r = np.sqrt(sum(f.flux_scale_e**2 / f.sigma_e**2 for f in frames))
    assert coadd.flux_norm == pytest.approx(f_r)
    size = coadd.psf.shape[0]
    expected = (
        np.sqrt(
            sum(f.flux_scale_e**2 * np.abs(otf(f.psf, size)) ** 2 / f.sigma_e**2 for f in frames)
        )
        / f_r
    )
    assert np.abs(otf(coadd.psf, size)) == pytest.approx(expected, abs=2e-4)
    # R = image · F_R has unit white noise on a white-noise sky.
    noise = coadd.image - proper_coadd(clean).image
    r = (noise * coadd.flux_norm)[~coadd.mask]
    assert np.std(r) == pytest.approx(1.0, abs=0.03)


def test_measured_snr2_of_the_proper_coadd_matches_the_sum(twin_stack):
    """On twin frames, from the noise itself (coadd − noiseless coadd), not the formula."""
    frames = [s.frame for s in twin_stack]
    coadd = proper_coadd(frames)
    truth = proper_coadd([s.noiseless for s in twin_stack])
    measured = matched_filter_sigma(coadd.image - truth.image, coadd.psf, ~coadd.mask)
    assert measured**-2 / snr2_sum(frames) == pytest.approx(1.0, abs=0.1)


def test_proper_beats_best_frame_and_ivw_on_twin_frames(twin_stack):
    frames = [s.frame for s in twin_stack]
    sum2 = snr2_sum(frames)
    best2 = max(frame_flux_sigma(f) ** -2 for f in frames)
    proper2 = coadd_flux_sigma(proper_coadd(frames), frames) ** -2
    ivw2 = coadd_flux_sigma(inverse_variance_coadd(frames), frames) ** -2
    matched2 = coadd_flux_sigma(psf_matched_coadd(frames), frames) ** -2
    assert proper2 / sum2 == pytest.approx(1.0, abs=0.02)
    assert proper2 > 1.2 * best2
    assert proper2 > 1.1 * ivw2
    assert ivw2 > matched2  # matching to 2.4" throws the 0.9" frame's resolution away
