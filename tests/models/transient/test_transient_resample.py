"""Resampling: pixels, variance and mask move together; outside the input is masked."""

import numpy as np
from astropy.wcs import WCS

from models.transient.image import CalibratedImage
from models.transient.resample import resample


def grid_wcs(crpix_shift=(0.0, 0.0)) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [64.5 + crpix_shift[0], 64.5 + crpix_shift[1]]
    wcs.wcs.cd = [[-1e-4, 0.0], [0.0, 1e-4]]
    return wcs


def test_an_integer_shift_moves_pixels_variance_and_mask_exactly():
    rng = np.random.default_rng(0)
    data = rng.normal(100.0, 5.0, (128, 128))
    variance = rng.uniform(20.0, 30.0, (128, 128))
    mask = np.zeros((128, 128), dtype=bool)
    mask[50, 60] = True
    image = CalibratedImage(data, variance, mask, grid_wcs(), 25.0, 60.0)
    out = resample(image, grid_wcs((3.0, 2.0)), (128, 128))  # out[y, x] = in[y - 2, x - 3]
    inner = np.s_[10:-10, 10:-10]
    shifted = np.s_[8:-12, 7:-13]
    keep = ~out.mask[inner]
    np.testing.assert_allclose(out.data_e[inner][keep], data[shifted][keep], rtol=1e-9)
    np.testing.assert_allclose(out.variance_e2[inner][keep], variance[shifted][keep], rtol=1e-9)
    assert out.mask[52, 63] and not out.mask[70, 70]
    assert out.mask[:2].all() and out.mask[:, :3].all()  # no input there
    assert out.wcs is not image.wcs and out.magzero_e == 25.0 and out.exptime_s == 60.0


def test_a_half_pixel_shift_keeps_the_flux_and_the_noise_level():
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 10.0, (128, 128))
    image = CalibratedImage(
        data, np.full((128, 128), 100.0), np.zeros((128, 128), bool), grid_wcs(), 25.0, 60.0
    )
    out = resample(image, grid_wcs((0.5, 0.5)), (128, 128))
    good = ~out.mask
    assert abs(out.data_e[good].mean()) < 0.3
    np.testing.assert_allclose(out.variance_e2[good], 100.0, rtol=1e-6)
    # Interpolation averages neighbours: the per-pixel scatter drops (module docstring).
    assert 5.0 < out.data_e[good].std() < 10.0
