"""PSF measured from a rendered frame's stars against the twin's own PSF."""

import numpy as np
import pytest

from models.transient.psf import gaussian_psf, measure_psf
from models.transient.stars import background, detect_sources
from twin.imaging.psf import expected_fwhm_arcsec


def test_measured_psf_has_the_twins_fwhm(pair):
    spec, new, _, _, _ = pair
    back = background(new)
    psf = measure_psf(new.data_e - back, detect_sources(new, back_e=back), mask=new.mask)
    expected_pix = expected_fwhm_arcsec(spec, include_pixel=True) / spec.pixel_scale_arcsec
    assert psf.fwhm_pix == pytest.approx(expected_pix, rel=0.06)
    assert psf.stamp.sum() == pytest.approx(1.0)
    assert psf.n_stars >= 5 and psf.stamp.shape[0] % 2 == 1
    centre = psf.radius_px
    assert np.unravel_index(np.argmax(psf.stamp), psf.stamp.shape) == (centre, centre)


def test_gaussian_psf_is_normalised_and_has_its_fwhm():
    psf = gaussian_psf(3.0)
    assert psf.stamp.sum() == pytest.approx(1.0)
    assert psf.fwhm_pix == pytest.approx(3.0) and psf.radius_px == 12


def test_too_few_stars_is_an_error_that_says_what_to_do(pair):
    _, new, _, _, _ = pair
    sources = detect_sources(new).head(2)
    with pytest.raises(ValueError, match="gaussian_psf"):
        measure_psf(new.data_e, sources)


def test_a_brighter_star_has_a_wider_halo_and_faint_ones_none():
    import pandas as pd

    from models.transient.psf import Psf, halo_mask

    yy, xx = np.mgrid[-12:13, -12:13]
    moffat = (1.0 + (xx**2 + yy**2) / 4.0) ** -2.0  # wings a Gaussian lacks
    psf = Psf(moffat / moffat.sum(), 3.0, 0)
    stars = pd.DataFrame(
        {"x_pix": [60.0, 190.0, 120.0], "y_pix": [60.0, 190.0, 40.0], "flux_e": [1e6, 1e8, 1e3]}
    )
    halo = halo_mask(stars, psf, sigma_e=20.0, shape=(256, 256))
    r_faint_star = np.count_nonzero(halo[60]) / 2
    r_bright_star = np.count_nonzero(halo[190]) / 2
    assert psf.radius_px < r_faint_star < r_bright_star
    assert not halo[40, 120]  # 10³ e: nothing beyond its stamp


def test_candidates_carry_the_halo_flag(difference):
    assert difference.candidates["in_halo"].dtype == bool
    assert difference.halo.shape == difference.zogy.scorr.shape
    assert 0.0 < difference.halo.mean() < 0.2
