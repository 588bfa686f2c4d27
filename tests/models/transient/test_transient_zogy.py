"""ZOGY against theory on images whose PSFs and noise are known exactly."""

import numpy as np
import pytest

from models.transient.detect import count_peaks, find_candidates
from models.transient.psf import gaussian_psf
from models.transient.zogy import flux_ratio_from_zero_points, zogy
from tests.models.transient.synthetic import gaussian_sources, observe, star_field

FWHM_NEW, FWHM_REF = 3.3, 2.4
RATIO = 6.0  # the reference collects 6 electrons per electron of the new image


def noise_pair(size: int, seed: int):
    rng = np.random.default_rng(seed)
    zeros = np.zeros((size, size))
    new, var_new = observe(rng, zeros, sky_e=400.0)
    ref, var_ref = observe(rng, zeros, sky_e=2400.0)
    return new, var_new, ref, var_ref


def run(new, ref, var_new=None, var_ref=None, sky_new=405.0**0.5, sky_ref=2405.0**0.5):
    return zogy(
        new,
        ref,
        gaussian_psf(FWHM_NEW, 14),
        gaussian_psf(FWHM_REF, 14),
        sigma_new_e=sky_new,
        sigma_ref_e=sky_ref,
        flux_ratio=RATIO,
        variance_new_e2=var_new,
        variance_ref_e2=var_ref,
    )


def test_scorr_of_two_noise_frames_has_unit_variance():
    new, var_new, ref, var_ref = noise_pair(384, seed=1)
    result = run(new, ref, var_new, var_ref)
    good = ~result.mask
    assert np.std(result.scorr[good]) == pytest.approx(1.0, abs=0.05)
    assert np.std(result.d[good]) == pytest.approx(1.0, abs=0.05)
    assert abs(np.mean(result.scorr[good])) < 0.05


def test_pure_noise_gives_at_most_one_false_5sigma_peak_per_mpix():
    peaks, pixels = 0, 0
    for seed in (2, 3):
        new, var_new, ref, var_ref = noise_pair(768, seed)
        result = run(new, ref, var_new, var_ref)
        peaks += count_peaks(result.scorr, result.mask, 5.0)
        pixels += int((~result.mask).sum())
    assert peaks / (pixels / 1e6) <= 1.0


def test_an_injected_point_source_is_found_at_its_position_and_flux():
    rng = np.random.default_rng(4)
    shape = (256, 256)
    xs, ys, flux = star_field(rng, shape, 40)
    x0, y0, flux0 = 120.3, 140.7, 4000.0
    new_e = gaussian_sources(shape, np.r_[xs, x0], np.r_[ys, y0], np.r_[flux, flux0], FWHM_NEW)
    ref_e = gaussian_sources(shape, xs, ys, RATIO * flux, FWHM_REF)
    new, var_new = observe(rng, new_e, 400.0)
    ref, var_ref = observe(rng, ref_e, 2400.0)
    result = run(new, ref, var_new, var_ref)
    found = find_candidates(result)
    best = found.iloc[0]
    assert best["scorr"] > 20 and best["sign"] == 1
    assert np.hypot(best["x_pix"] - x0, best["y_pix"] - y0) < 0.25
    assert best["flux_e"] == pytest.approx(flux0, abs=max(3 * best["flux_err_e"], 0.05 * flux0))
    # The stars, in both images with matched fluxes, leave nothing at 5σ.
    assert len(found) == 1


def test_the_source_noise_term_lowers_scorr_on_bright_stars():
    rng = np.random.default_rng(5)
    shape = (192, 192)
    xs, ys, flux = np.array([96.2]), np.array([95.6]), np.array([3e6])
    new, var_new = observe(rng, gaussian_sources(shape, xs, ys, flux, FWHM_NEW), 400.0)
    ref, var_ref = observe(rng, gaussian_sources(shape, xs, ys, RATIO * flux, FWHM_REF), 2400.0)
    background_only = run(new, ref)
    with_sources = run(new, ref, var_new, var_ref)
    core = np.s_[90:102, 90:102]
    assert np.abs(with_sources.scorr[core]).max() < np.abs(background_only.scorr[core]).max()
    assert np.abs(with_sources.scorr[core]).max() < 5.0


def test_flux_ratio_from_zero_points():
    assert flux_ratio_from_zero_points(25.0, 60.0, 25.0, 480.0) == pytest.approx(8.0)
    assert flux_ratio_from_zero_points(25.0, 60.0, 26.0, 60.0) == pytest.approx(10**0.4)


def test_different_grids_are_refused():
    with pytest.raises(ValueError, match="resample first"):
        zogy(
            np.zeros((64, 64)),
            np.zeros((64, 32)),
            gaussian_psf(3.0),
            gaussian_psf(3.0),
            sigma_new_e=1.0,
            sigma_ref_e=1.0,
        )
