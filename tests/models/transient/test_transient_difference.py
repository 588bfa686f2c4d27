"""The chain on a rendered frame and its template: the transient found, Scorr on empty sky,
and the same pair through properimage."""

import numpy as np
import pytest

from models.transient.crosscheck import compare_maps, empty_sky, robust_std
from models.transient.detect import count_peaks


def transient_truth(truth):
    return truth[truth["type"] == "transient"].iloc[0]


def test_the_injected_transient_is_found_at_its_position_and_flux(pair, difference):
    _, _, _, truth, _ = pair
    row = transient_truth(truth)
    best = difference.candidates[difference.candidates["sign"] > 0].iloc[0]
    assert np.hypot(best["x_pix"] - row["x_pix"], best["y_pix"] - row["y_pix"]) < 0.5
    assert best["scorr"] > 15.0
    tolerance = max(3.0 * best["flux_err_e"], 0.1 * row["flux_e"])
    assert best["flux_e"] == pytest.approx(row["flux_e"], abs=tolerance)


def test_scorr_has_unit_variance_on_empty_sky(pair, difference):
    _, new, _, truth, _ = pair
    empty = empty_sky(truth, new.shape) & ~difference.zogy.mask
    assert empty.mean() > 0.2
    scorr = difference.zogy.scorr[empty]
    assert np.std(scorr) == pytest.approx(1.0, abs=0.05)
    assert robust_std(scorr) == pytest.approx(1.0, abs=0.05)
    assert count_peaks(difference.zogy.scorr, ~empty) <= 1  # empty sky: no 5σ false alarm


def test_the_chain_reports_its_steps(difference):
    assert set(difference.timings_s) == {"registration", "resample", "psf", "zogy", "detect"}
    assert difference.flux_ratio == pytest.approx(8.0, rel=0.01)  # 8 exposures, same sky
    assert difference.psf_ref.fwhm_pix < difference.psf_new.fwhm_pix  # 0.9" against 1.1"+


def test_d_and_scorr_agree_with_properimage_on_a_synthetic_pair():
    pytest.importorskip("properimage")
    from models.transient.crosscheck import properimage_subtract
    from models.transient.image import CalibratedImage
    from models.transient.psf import gaussian_psf
    from models.transient.zogy import zogy
    from tests.models.transient.synthetic import gaussian_sources, observe, star_field

    rng = np.random.default_rng(7)
    shape = (256, 256)
    xs, ys, flux = star_field(rng, shape, 40)
    new_e = gaussian_sources(shape, np.r_[xs, 130.4], np.r_[ys, 110.2], np.r_[flux, 6000.0], 3.3)
    ref_e = gaussian_sources(shape, xs, ys, 6.0 * flux, 2.4)
    new, var_new = observe(rng, new_e, 400.0)
    ref, var_ref = observe(rng, ref_e, 2400.0)
    ours = zogy(
        new,
        ref,
        gaussian_psf(3.3, 14),
        gaussian_psf(2.4, 14),
        sigma_new_e=405**0.5,
        sigma_ref_e=2405**0.5,
        flux_ratio=6.0,
        variance_new_e2=var_new,
        variance_ref_e2=var_ref,
    )
    clean = np.zeros(shape, dtype=bool)  # nothing is bad: its own border handling, ours ours
    d, scorr = properimage_subtract(
        CalibratedImage(new + 400.0, var_new, clean, None, 25.0, 60.0),
        CalibratedImage(ref + 2400.0, var_ref, clean, None, 25.0, 60.0),
        clean,
    )
    empty = np.ones(shape, dtype=bool)
    near = gaussian_sources(shape, xs, ys, np.ones_like(xs), 3.3) > 1e-4
    empty &= ~near & ~ours.mask
    d_cmp, s_cmp = compare_maps(ours.d, d, empty), compare_maps(ours.scorr, scorr, empty)
    assert d_cmp["pearson_r"] > 0.98 and s_cmp["pearson_r"] > 0.95
    assert d_cmp["theirs_std"] == pytest.approx(1.0, abs=0.05)  # their D is unit too
    # The transient in D, each map in units of its own empty-sky σ. (In Scorr theirs stands
    # ~30 % higher: its source-noise term, (N + 1) ⊗ k², is not on the scale of its S.)
    peak = np.s_[108:113, 128:133]
    assert d[peak].max() * d_cmp["theirs_scale"] == pytest.approx(ours.d[peak].max(), rel=0.05)
    assert scorr[peak].max() * s_cmp["theirs_scale"] > 5.0
