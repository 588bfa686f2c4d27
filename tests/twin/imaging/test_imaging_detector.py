"""Detector model: signal and noise levels, full well and bleeding, defects, cosmic rays."""

import math

import numpy as np
import pytest

from twin.imaging.detector import (
    ADC_MAX_ADU,
    apply_detector,
    bias_image,
    bleed,
    cosmic_ray_rate_per_cm2_s,
    detector_window,
    expected_cosmic_rays,
    flat_field,
    saturate_adu,
)
from twin.imaging.spec import FrameSpec
from twin.world.telescope import Detector, Telescope


def make_spec(npix: int = 256, nx: int | None = None, ny: int | None = None,
              detector: dict | None = None, **fields) -> FrameSpec:  # fmt: skip
    """A small camera (gain 2, read noise 6 e-, full well 60,000 e-, bias 500 ADU)."""
    det = {"nx_pix": npix, "ny_pix": npix, "pixel_size_um": 15.0, "gain_e_per_adu": 2.0,
           "read_noise_e": 6.0, "dark_current_e_per_s": 0.01, "full_well_e": 60000.0,
           "bias_adu": 500.0, **(detector or {})}  # fmt: skip
    telescope = Telescope(name="testcam", aperture_m=1.0, pixel_scale_arcsec=0.4,
                          detector=Detector(**det))  # fmt: skip
    base = dict(
        obs_id=1, site="test", site_height_m=2663.0, telescope=telescope, band="r",
        exptime_s=100.0, mjd_start=60000.0, ra_deg=150.0, dec_deg=-30.0,
        pointing_error_ra_arcsec=0.0, pointing_error_dec_arcsec=0.0, airmass=1.2,
        alt_deg=56.0, az_deg=180.0, sky_mag_arcsec2=21.0, seeing_fwhm_arcsec=1.0,
        defocus_fwhm_arcsec=0.0, tracking_error_arcsec=0.0, tracking_pa_deg=0.0,
        transparency=1.0, throughput=1.0, n_hot_pixels=0,
        n_bad_columns=0, moon_illum=0.0, moon_sep_deg=90.0, seed=1,
        nx=nx or npix, ny=ny or npix,
    )  # fmt: skip
    base.update(fields)
    return FrameSpec(**base)


def clean(spec, expected, seed=0, **kw):
    return apply_detector(expected, spec, np.random.default_rng(seed), flat=1.0,
                          cosmic_rays=False, **kw)  # fmt: skip


def test_mean_is_expected_over_gain_plus_bias():
    spec = make_spec()
    sky_e = 5000.0
    raw = clean(spec, np.full((256, 256), sky_e)).raw_adu.astype(float)
    expected_adu = (sky_e + 0.01 * spec.exptime_s) / 2.0
    assert raw.mean() - 500.0 == pytest.approx(expected_adu, rel=0.005)


def test_variance_is_poisson_plus_read_noise():
    spec = make_spec()
    sky_e = 3000.0
    raw = clean(spec, np.full((256, 256), sky_e)).raw_adu - bias_image(spec)
    electrons = sky_e + 0.01 * spec.exptime_s
    # Poisson + read noise in ADU², plus the ADC's rounding (1/12 ADU²).
    expected_var = electrons / 2.0**2 + (6.0 / 2.0) ** 2 + 1.0 / 12.0
    assert raw.var() == pytest.approx(expected_var, rel=0.03)


def test_bleeding_conserves_charge_and_saturates_at_saturate():
    spec = make_spec(detector={"gain_e_per_adu": 1.0, "full_well_e": 60000.0})
    assert saturate_adu(spec) == 60500.0
    yy, xx = np.mgrid[0:256, 0:256]
    star_e = 4.0e6
    sigma = 1.5
    star = star_e * np.exp(-((xx - 128.3) ** 2 + (yy - 127.6) ** 2) / (2 * sigma**2))
    expected = 100.0 + star / (2 * np.pi * sigma**2)
    result = clean(spec, expected)
    signal_e = result.raw_adu.astype(float) - bias_image(spec)  # gain 1
    total_in = expected.sum() + 0.01 * spec.exptime_s * expected.size
    assert result.bled_off_e == 0.0
    assert signal_e.sum() == pytest.approx(total_in, rel=0.002)
    sat = result.saturated
    # The charge of the over-full pixels ends up in full pixels: at least that many.
    assert sat.sum() >= 0.98 * expected[expected > 60000.0].sum() / 60000.0
    rows, cols = np.nonzero(sat)
    assert np.ptp(rows) > 3 * np.ptp(cols)  # a vertical bleed trail
    # Full pixels read the saturation level (plus read noise of 6 ADU), never more.
    assert np.abs(result.raw_adu[sat] - 60500.0).max() < 6 * 6.0
    assert result.raw_adu.max() <= 60500.0 + 6 * 6.0


def test_adc_clips_at_65535():
    spec = make_spec(detector={"gain_e_per_adu": 1.0, "full_well_e": 150000.0})
    assert saturate_adu(spec) == ADC_MAX_ADU
    expected = np.full((256, 256), 100.0)
    expected[100:103, 50:53] = 120000.0
    result = clean(spec, expected)
    assert result.raw_adu.dtype == np.uint16
    assert result.raw_adu[100:103, 50:53].min() == ADC_MAX_ADU
    assert result.saturated[100:103, 50:53].all()


def test_bleed_spills_along_the_column_and_reports_losses():
    charge = np.full((20, 3), 10.0)
    charge[10, 1] = 5 * 100.0
    total = charge.sum()
    assert bleed(charge, 100.0) == 0.0
    assert charge.sum() == pytest.approx(total)
    assert (charge[:, [0, 2]] == 10.0).all()  # neighbours untouched
    assert (charge[8:13, 1] == 100.0).all()  # 400 e- excess: 2 pixels up, 2 down, partly
    edge = np.zeros((4, 1))
    edge[0, 0] = 1000.0
    # 900 e- excess: the upward half leaves the column at once, the downward half fills the
    # three pixels below (300 e-) and the remaining 150 e- leave at the other end.
    assert bleed(edge, 100.0) == pytest.approx(450.0 + 150.0)
    assert (edge == 100.0).all()


def test_bad_columns_are_stuck_high_or_low():
    columns = [10, 77, 130, 200, 251]
    spec = make_spec(bad_columns=np.array(columns))
    result = clean(spec, np.full((256, 256), 2000.0))
    table = result.bad_columns
    assert sorted(table["x_pix"]) == columns
    assert set(table["state"]) <= {"high", "low"}
    high_level = 60000.0 / 2.0 + 500.0
    for x, state in zip(table["x_pix"], table["state"], strict=True):
        level = np.median(result.raw_adu[:, x])
        assert level == pytest.approx(high_level if state == "high" else 500.0, abs=10.0)
    # Drawn from the telescope when the equipment model gives none: persistent.
    drawn = make_spec(n_bad_columns=4)
    a = clean(drawn, np.zeros((256, 256)), seed=1).bad_columns
    b = clean(drawn, np.zeros((256, 256)), seed=2).bad_columns
    assert len(a) == 4 and a.equals(b)


def test_hot_pixels_at_given_positions_and_window_shift():
    positions = np.array([[133, 135], [228, 328], [378, 131], [5, 5]])  # detector (row, col)
    spec = make_spec(npix=512, nx=256, ny=256, exptime_s=300.0, hot_pixels=positions)
    assert detector_window(spec) == (128, 128)
    result = clean(spec, np.full((256, 256), 500.0))
    hot = result.hot_pixels.sort_values("y_pix")
    assert list(zip(hot["y_pix"], hot["x_pix"], strict=True)) == [(5, 7), (100, 200), (250, 3)]
    assert hot["dark_e_per_s"].between(0.5, 50.0).all()
    background = np.median(result.raw_adu)
    noise_adu = math.sqrt(500.0 + 3.0) / 2.0
    excess = result.raw_adu[hot["y_pix"], hot["x_pix"]] - background
    assert (excess > hot["electrons"].to_numpy() / 2.0 - 5 * noise_adu).all()
    assert (excess > 5 * noise_adu).all()
    assert result.hot_pixel_mask.sum() == 3


def test_cosmic_ray_count_matches_the_rate():
    spec = make_spec(detector={"pixel_size_um": 50.0}, exptime_s=3600.0)
    area_cm2 = (256 * 50e-4) ** 2
    lam = expected_cosmic_rays(spec)
    assert lam == pytest.approx(cosmic_ray_rate_per_cm2_s(2663.0) * area_cm2 * 3600.0)
    assert 150 < lam < 500
    result = apply_detector(np.zeros((256, 256)), spec, np.random.default_rng(3), flat=1.0)
    cr = result.cosmic_rays
    assert abs(len(cr) - lam) < 4 * math.sqrt(lam)
    assert 1000 < cr.loc[cr["kind"] == "track", "electrons"].median() < 10000
    # Their charge is in the frame: sum above bias ≈ dark + cosmic rays.
    signal_e = (result.raw_adu - bias_image(spec)).sum() * 2.0
    dark_e = 0.01 * 3600.0 * 256 * 256
    assert signal_e - dark_e == pytest.approx(cr["electrons"].sum(), rel=0.05)


def test_cosmic_ray_rate_rises_with_altitude():
    sea = cosmic_ray_rate_per_cm2_s(0.0)
    assert sea == pytest.approx(1.5 / 60.0)
    assert 1.8 < cosmic_ray_rate_per_cm2_s(2663.0) / sea < 2.3
    assert cosmic_ray_rate_per_cm2_s(4200.0) > cosmic_ray_rate_per_cm2_s(2663.0)


def test_flat_field_is_persistent_and_shaped_like_optics():
    full = make_spec(npix=512)
    flat = flat_field(full)
    assert flat.mean() == pytest.approx(1.0, abs=0.002)
    centre, corner = flat[236:276, 236:276].mean(), flat[:40, :40].mean()
    assert 0.02 < centre - corner < 0.06  # vignetting: a few % to the corners
    high_pass = flat[1:, :] - flat[:-1, :]
    assert high_pass.std() / math.sqrt(2) == pytest.approx(0.005, rel=0.1)  # PRNU
    window = make_spec(npix=512, nx=200, ny=100, seed=99)
    row0, col0 = detector_window(window)
    np.testing.assert_array_equal(flat_field(window), flat[row0 : row0 + 100, col0 : col0 + 200])


def test_same_rng_gives_same_frame():
    spec = make_spec(n_hot_pixels=20, n_bad_columns=1)
    expected = np.full((256, 256), 1000.0)
    a = apply_detector(expected, spec, np.random.default_rng(5))
    b = apply_detector(expected, spec, np.random.default_rng(5))
    np.testing.assert_array_equal(a.raw_adu, b.raw_adu)
    assert a.cosmic_rays.equals(b.cosmic_rays)


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="resize the spec"):
        apply_detector(np.zeros((10, 10)), make_spec(), np.random.default_rng(0))
