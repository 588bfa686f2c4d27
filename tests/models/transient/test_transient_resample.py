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


def rotated_wcs(size: int, angle_deg: float, shift=(0.0, 0.0), scale=1e-4) -> WCS:
    """A TAN grid rotated by ``angle_deg`` (a frame's solved WCS is never exactly north-up)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, -30.0]
    wcs.wcs.crpix = [0.5 * (size + 1) + shift[0], 0.5 * (size + 1) + shift[1]]
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    wcs.wcs.cd = (scale * np.array([[-c, s], [s, c]])).tolist()
    return wcs


def test_the_grid_map_equals_reproject_on_a_rotated_shifted_grid():
    """The default ``grid`` method against ``reproject_interp`` (every pixel's WCS): the
    same pixels to 1e-6 of the noise, the same mask; the map itself to 1e-6 px."""
    from astropy.wcs.utils import pixel_to_pixel

    from models.transient.resample import pixel_map

    rng = np.random.default_rng(2)
    size = 300  # ~0.1 deg across at 1.2"/px: the curvature a spline must follow
    data = rng.normal(1000.0, 30.0, (size + 40, size + 40))
    variance = rng.uniform(800.0, 1200.0, data.shape)
    mask = np.zeros(data.shape, dtype=bool)
    mask[100, 120] = True
    image = CalibratedImage(data, variance, mask, rotated_wcs(size + 40, 0.0, scale=3.3e-4),
                            25.0, 60.0)  # fmt: skip
    wcs_out = rotated_wcs(size, 0.7, shift=(3.3, -2.6), scale=3.3e-4)
    grid = resample(image, wcs_out, (size, size))
    exact = resample(image, wcs_out, (size, size), method="reproject")
    np.testing.assert_array_equal(grid.mask, exact.mask)
    good = ~exact.mask
    assert good.mean() > 0.95
    err = np.abs(grid.data_e - exact.data_e)[good] / np.sqrt(exact.variance_e2[good])
    assert err.max() < 1e-6
    y_in, x_in = pixel_map(image.wcs, wcs_out, (size, size))
    ys, xs = np.mgrid[0:size:7, 0:size:7]
    x_exact, y_exact = pixel_to_pixel(wcs_out, image.wcs, xs.ravel().astype(float),
                                      ys.ravel().astype(float))  # fmt: skip
    assert np.abs(x_in[ys, xs].ravel() - x_exact).max() < 1e-6
    assert np.abs(y_in[ys, xs].ravel() - y_exact).max() < 1e-6


def test_an_unknown_method_or_order_is_refused():
    import pytest

    image = CalibratedImage(np.zeros((16, 16)), np.ones((16, 16)), np.zeros((16, 16), bool),
                            grid_wcs(), 25.0, 60.0)  # fmt: skip
    with pytest.raises(ValueError, match="allowed: grid, reproject"):
        resample(image, grid_wcs(), (16, 16), method="fast")
    with pytest.raises(ValueError, match="allowed: bilinear"):
        resample(image, grid_wcs(), (16, 16), order="quintic")
