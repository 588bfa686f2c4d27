"""The exposure's PSF: its FWHM against the spec, trailing, and the sampled pixel tables."""

import math

import galsim
import numpy as np
import pytest

from twin.imaging.psf import (
    PixelPsfTable,
    expected_fwhm_arcsec,
    fwhm_arcsec,
    psf_for,
    star_fwhm_arcsec,
)
from twin.imaging.spec import FrameSpec
from twin.world.telescope import TELESCOPE_PRESETS, Detector, Telescope

# A 40-m aperture makes diffraction negligible: the PSF is the atmosphere and the defocus.
HUGE = Telescope(name="huge", aperture_m=40.0, pixel_scale_arcsec=0.2,
                 detector=Detector(nx_pix=64, ny_pix=64, pixel_size_um=15.0))  # fmt: skip


def make_spec(telescope: Telescope = HUGE, **fields) -> FrameSpec:
    base = dict(
        obs_id=1, site="test", site_height_m=2663.0, telescope=telescope, band="r",
        exptime_s=60.0, mjd_start=61000.0, ra_deg=10.0, dec_deg=-20.0,
        pointing_error_ra_arcsec=0.0, pointing_error_dec_arcsec=0.0, airmass=1.1,
        alt_deg=65.0, az_deg=0.0, sky_mag_arcsec2=21.0, seeing_fwhm_arcsec=1.0,
        defocus_fwhm_arcsec=0.0, tracking_error_arcsec=0.0, tracking_pa_deg=0.0,
        transparency=1.0, throughput=1.0, n_hot_pixels=0,
        n_bad_columns=0, moon_illum=0.0, moon_sep_deg=90.0, seed=1, nx=64, ny=64,
    )  # fmt: skip
    base.update(fields)
    return FrameSpec(**base)


@pytest.mark.parametrize("seeing", [0.6, 1.0, 2.0])
def test_fwhm_is_the_seeing_without_diffraction_or_defocus(seeing):
    assert expected_fwhm_arcsec(make_spec(seeing_fwhm_arcsec=seeing)) == pytest.approx(
        seeing, rel=0.01
    )


def test_gaussian_defocus_adds_about_in_quadrature():
    spec = make_spec(seeing_fwhm_arcsec=1.0, defocus_fwhm_arcsec=0.6)
    # Kolmogorov ⊗ Gaussian is not exactly quadrature: within 3 % of seeing ⊕ defocus.
    assert expected_fwhm_arcsec(spec) == pytest.approx(spec.image_fwhm_arcsec, rel=0.03)


def test_delivered_fwhm_includes_the_telescope_diffraction():
    ratios = []
    for preset in ("1m", "2m", "4m"):
        spec = make_spec(TELESCOPE_PRESETS[preset], seeing_fwhm_arcsec=1.0, defocus_fwhm_arcsec=0.3)
        ratios.append(expected_fwhm_arcsec(spec) / spec.image_fwhm_arcsec)
    # The Airy core widens seeing ⊕ defocus by 1.5-6 % at 1", more for smaller mirrors.
    assert 1.07 > ratios[0] > ratios[1] > ratios[2] > 1.0, ratios


def _moments(psf) -> galsim.Shear:
    return galsim.hsm.FindAdaptiveMom(psf.drawImage(nx=161, ny=161, scale=0.05)).observed_shape


def test_trailing_elongates_along_the_position_angle():
    # North is +y, east is -x: PA 0 stretches along y (e1 < 0), PA 90 along x (e1 > 0),
    # PA 45 along the y = -x diagonal (e2 < 0).
    north = _moments(psf_for(make_spec(tracking_error_arcsec=2.0, tracking_pa_deg=0.0)))
    east = _moments(psf_for(make_spec(tracking_error_arcsec=2.0, tracking_pa_deg=90.0)))
    north_east = _moments(psf_for(make_spec(tracking_error_arcsec=2.0, tracking_pa_deg=45.0)))
    assert north.e1 < -0.1 and east.e1 > 0.1 and north_east.e2 < -0.1
    assert abs(north.e2) < 0.01 and abs(north_east.e1) < 0.01


def test_annulus_defocus_is_a_donut():
    spec = make_spec(seeing_fwhm_arcsec=0.3, defocus_fwhm_arcsec=4.0)
    image = psf_for(spec, defocus_model="annulus").drawImage(nx=121, ny=121, scale=0.05).array
    assert image[60, 60] < 0.5 * image.max()  # the obscured centre is dark


def test_pixel_table_conserves_light_and_places_the_centroid():
    spec = make_spec(TELESCOPE_PRESETS["1m"])
    table = PixelPsfTable(psf_for(spec), 0.389, radius_px=40)
    assert table.encircled(40) == pytest.approx(1.0, abs=0.004)
    fx, fy = np.array([0.0, 0.3, -0.45, 0.5]), np.array([0.0, -0.2, 0.1, -0.5])
    stamps = table.stamps(fx, fy, 12).astype(float)
    offsets = np.arange(-12, 13)
    cx = (stamps.sum(axis=1) * offsets).sum(axis=1) / stamps.sum(axis=(1, 2))
    cy = (stamps.sum(axis=2) * offsets).sum(axis=1) / stamps.sum(axis=(1, 2))
    np.testing.assert_allclose(cx, fx, atol=0.02)  # the box cuts the wings a little
    np.testing.assert_allclose(cy, fy, atol=0.02)
    # The same star drawn by GalSim at that offset, pixel by pixel.
    direct = psf_for(spec).drawImage(nx=25, ny=25, scale=0.389, offset=(0.3, -0.2)).array
    np.testing.assert_allclose(stamps[1], direct, atol=2e-4 * direct.max() * 25)


def test_half_maximum_fwhm_of_a_drawn_star_recovers_the_expected_one():
    spec = make_spec(TELESCOPE_PRESETS["2m"], seeing_fwhm_arcsec=1.0, defocus_fwhm_arcsec=0.2)
    image = psf_for(spec).withFlux(1e5).drawImage(nx=41, ny=41, scale=0.27, offset=(0.2, -0.3))
    measured = star_fwhm_arcsec(image.array, 20.2, 19.7, 0.27)
    assert measured == pytest.approx(expected_fwhm_arcsec(spec, include_pixel=True), rel=0.02)
    gauss = galsim.Gaussian(fwhm=1.0).drawImage(nx=201, ny=201, scale=0.02, method="no_pixel")
    assert fwhm_arcsec(gauss.array, 0.02) == pytest.approx(1.0, rel=0.01)
    assert math.isfinite(star_fwhm_arcsec(image.array, 20.2, 19.7, 0.27, method="hsm"))
