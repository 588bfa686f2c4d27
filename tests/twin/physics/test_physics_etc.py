"""Exposure-time calculator: a worked example by hand, inverses, and physical scalings."""

import math

import numpy as np
import pytest

from twin.physics import (
    REFERENCE_HEIGHT_M,
    delivered_seeing_arcsec,
    exptime_for_snr,
    m5,
    n_eff_pixels,
    peak_pixel_electrons,
    peak_pixel_fraction,
    saturation_mag,
    sky_electrons_per_pixel,
    snr,
    source_electrons,
)
from twin.world.telescope import TELESCOPE_PRESETS, Detector, Filter, Telescope

ONE_M = TELESCOPE_PRESETS["1m"]
FOUR_M = TELESCOPE_PRESETS["4m"]

# The worked example: "1m" preset, r band, 60 s, airmass 1.2, 1.2" seeing, sky 21.0
# mag/arcsec^2, transparency 1, a 20.0 mag star, at the extinction reference height
# (k_r = 0.13 exactly). Every number below is plain arithmetic, independent of twin.
EXAMPLE = dict(
    exptime_s=60.0,
    airmass=1.2,
    seeing_fwhm_arcsec=1.2,
    sky_mag_arcsec2=21.0,
    transparency=1.0,
    height_m=REFERENCE_HEIGHT_M,
)
# Telescope: D = 1.0 m, linear central obscuration 0.4.
AREA_CM2 = math.pi / 4.0 * 100.0**2 * (1.0 - 0.4**2)  # = 6597.34 cm^2
# Two mirrors at 0.90, r filter 0.93, r QE 0.90.
THROUGHPUT = 0.90**2 * 0.93 * 0.90  # = 0.677970
# Photons s^-1 cm^-2 per unit ln(lambda) from AB = 0: 3631 Jy / h.
PHOTONS_AB0 = 3631e-23 / 6.62607015e-27  # = 5.479870e6
# r band: 140 nm wide at 622 nm, so d ln(lambda) = 140 / 622.
DLNL = 140.0 / 622.0  # = 0.225080
RATE_AB0 = PHOTONS_AB0 * AREA_CM2 * THROUGHPUT * DLNL  # = 5.516803e9 e-/s from m = 0
ZP = 2.5 * math.log10(RATE_AB0)  # = 24.354219 (AB mag giving 1 e-/s above the air)
EXTINCTION = 0.13 * 1.2  # k X = 0.156 mag
SOURCE_E = 60.0 * 10 ** (-0.4 * (20.0 - ZP + EXTINCTION))  # = 2867.073 e-
SKY_E_PER_PIX = 60.0 * 10 ** (-0.4 * (21.0 - ZP)) * 0.389**2  # = 199.4059 e-/pix
# 4 pi sigma^2 = pi / (2 ln 2) FWHM^2 = 2.2662 FWHM^2, plus pi/3 for pixelisation.
N_EFF = math.pi / (2 * math.log(2)) * (1.2 / 0.389) ** 2 + math.pi / 3  # = 22.6126 pix
DARK_E = 0.002 * 60.0  # = 0.12 e-/pix
READ2 = 8.0**2  # = 64 e-^2/pix
BACKGROUND_VAR = N_EFF * (SKY_E_PER_PIX + DARK_E + READ2)  # = 5959.007 e-^2
SNR = SOURCE_E / math.sqrt(SOURCE_E + BACKGROUND_VAR)  # = 2867.07 / 93.947 = 30.51791
# m5: S^2 = 25 (S + N) -> S = (25 + sqrt(625 + 100 N)) / 2 = 398.675 e-,
# m5 = ZP - k X + 2.5 log10(t / S) = 24.354219 - 0.156 - 2.056171 = 22.142048.
S5 = (25.0 + math.sqrt(625.0 + 100.0 * BACKGROUND_VAR)) / 2.0
M5 = ZP - EXTINCTION + 2.5 * math.log10(60.0 / S5)


def test_worked_example_inputs_are_the_preset():
    assert ONE_M.aperture_m == 1.0 and ONE_M.obscuration == 0.4
    assert (ONE_M.mirror_reflectivity, ONE_M.n_mirrors) == (0.9, 2)
    r = ONE_M.filter("r")
    assert (r.center_nm, r.width_nm, r.filter_throughput) == (622.0, 140.0, 0.93)
    det = ONE_M.detector
    assert det.qe_by_band["r"] == 0.90 and ONE_M.pixel_scale_arcsec == 0.389
    assert (det.read_noise_e, det.dark_current_e_per_s) == (8.0, 0.002)


def test_worked_example_by_hand():
    assert ONE_M.zeropoint_mag("r") == pytest.approx(ZP, rel=1e-9)
    assert ZP == pytest.approx(24.354219, abs=1e-6)
    src = dict(EXAMPLE)
    del src["seeing_fwhm_arcsec"], src["sky_mag_arcsec2"]
    assert source_electrons(ONE_M, "r", source_mag=20.0, **src) == pytest.approx(SOURCE_E, rel=1e-6)
    sky = sky_electrons_per_pixel(ONE_M, "r", sky_mag_arcsec2=21.0, exptime_s=60.0)
    assert sky == pytest.approx(SKY_E_PER_PIX, rel=1e-6)
    assert n_eff_pixels(1.2, 0.389) == pytest.approx(N_EFF, rel=1e-6)
    assert snr(ONE_M, "r", source_mag=20.0, **EXAMPLE) == pytest.approx(SNR, rel=1e-6)
    assert SNR == pytest.approx(30.51791, abs=1e-5)
    assert m5(ONE_M, "r", **EXAMPLE) == pytest.approx(M5, rel=1e-6)
    assert M5 == pytest.approx(22.142048, abs=1e-6)


def test_m5_round_trip_is_snr_five_vectorised():
    airmass = np.array([1.0, 1.3, 2.0])[:, None]
    seeing = np.array([0.6, 1.0, 2.5])
    conditions = dict(
        exptime_s=np.array([[5.0], [60.0], [600.0]]),
        airmass=airmass,
        seeing_fwhm_arcsec=seeing,
        sky_mag_arcsec2=np.array([22.0, 20.0, 18.5]),
        transparency=np.array([1.0, 0.7, 0.3]),
        height_m=2200.0,
    )
    depth = m5(FOUR_M, "g", **conditions)
    assert depth.shape == (3, 3)
    assert np.allclose(snr(FOUR_M, "g", source_mag=depth, **conditions), 5.0, rtol=0, atol=1e-9)
    ten = m5(FOUR_M, "g", snr_target=10.0, **conditions)
    assert np.allclose(snr(FOUR_M, "g", source_mag=ten, **conditions), 10.0, atol=1e-9)


def test_exptime_for_snr_round_trip():
    conditions = dict(airmass=1.4, seeing_fwhm_arcsec=1.1, sky_mag_arcsec2=20.3)
    mags = np.array([14.0, 18.0, 21.0, 23.0])
    t = exptime_for_snr(ONE_M, "i", source_mag=mags, snr_target=20.0, **conditions)
    assert np.all(np.diff(t) > 0.0)
    got = snr(ONE_M, "i", source_mag=mags, exptime_s=t, **conditions)
    assert np.allclose(got, 20.0, rtol=1e-9)
    cloudy = exptime_for_snr(
        ONE_M, "i", source_mag=18.0, snr_target=20.0, transparency=0.0, **conditions
    )
    assert cloudy == np.inf


BACKGROUND_LIMITED = dict(airmass=1.0, seeing_fwhm_arcsec=1.0, sky_mag_arcsec2=20.0)


def test_m5_deepens_as_1p25_log_time_when_background_limited():
    t1, t2 = 300.0, 1200.0
    gain = m5(FOUR_M, "r", exptime_s=t2, **BACKGROUND_LIMITED) - m5(
        FOUR_M, "r", exptime_s=t1, **BACKGROUND_LIMITED
    )
    assert gain == pytest.approx(1.25 * math.log10(t2 / t1), abs=0.02)


def test_m5_deepens_with_aperture_as_1p25_log_area():
    # Background-limited SNR ~ sqrt(area): 1.25 log10(area ratio) = 2.5 log10(D ratio).
    big = FOUR_M.model_copy(update={"aperture_m": 8.0})
    area_ratio = big.collecting_area_m2 / FOUR_M.collecting_area_m2
    gain = m5(big, "r", exptime_s=600.0, **BACKGROUND_LIMITED) - m5(
        FOUR_M, "r", exptime_s=600.0, **BACKGROUND_LIMITED
    )
    assert gain == pytest.approx(1.25 * math.log10(area_ratio), abs=0.02)
    assert gain == pytest.approx(2.5 * math.log10(8.0 / 4.0), abs=0.02)


def test_m5_loses_half_a_magnitude_per_magnitude_of_sky():
    common = dict(exptime_s=600.0, airmass=1.0, seeing_fwhm_arcsec=1.0)
    dark = m5(FOUR_M, "r", sky_mag_arcsec2=20.0, **common)
    bright = m5(FOUR_M, "r", sky_mag_arcsec2=19.0, **common)
    assert dark - bright == pytest.approx(0.5, abs=0.02)


def test_m5_loses_2p5_log_fwhm_ratio_for_worse_seeing():
    common = dict(exptime_s=600.0, airmass=1.0, sky_mag_arcsec2=20.0)
    sharp = m5(FOUR_M, "r", seeing_fwhm_arcsec=1.0, **common)
    blurred = m5(FOUR_M, "r", seeing_fwhm_arcsec=2.0, **common)
    assert sharp - blurred == pytest.approx(2.5 * math.log10(2.0), abs=0.02)


def test_cloud_dims_source_and_sky_alike():
    # Background-limited with the sky dimmed too: SNR ~ sqrt(T), so m5 drops 1.25 log10 T.
    common = dict(exptime_s=600.0, **BACKGROUND_LIMITED)
    loss = m5(FOUR_M, "r", **common) - m5(FOUR_M, "r", transparency=0.5, **common)
    assert loss == pytest.approx(-1.25 * math.log10(0.5), abs=0.02)
    assert m5(FOUR_M, "r", transparency=0.0, **common) == -np.inf


def test_4m_r_band_30s_dark_depth_is_in_published_ballpark():
    # 4-m class (Blanco/DECam-like) r, 30 s, dark sky 21.2, 0.8", zenith: m5 ~ 23.5-24.5.
    depth = m5(
        FOUR_M, "r", exptime_s=30.0, airmass=1.0, seeing_fwhm_arcsec=0.8, sky_mag_arcsec2=21.2
    )
    assert 23.5 < depth < 24.5


def test_rubin_like_system_reproduces_smtn002_r_band_m5():
    # SMTN-002 (https://smtn-002.lsst.io): 6.423 m effective clear aperture, 0.2"/pix,
    # 9 e- instrument noise per exposure, r zeropoint 28.36 with the X = 1.2 standard
    # atmosphere (28.36 + 0.13 x 1.2 above it), FWHM_eff 0.83", dark sky 21.2, 1 x 30 s
    # at zenith -> m5 = 24.52.
    r = Filter(name="r", center_nm=622.0, width_nm=140.0, zeropoint_override_mag=28.516)
    detector = Detector(
        nx_pix=4096, ny_pix=4096, pixel_size_um=10.0, qe_by_band={"r": 0.9},
        read_noise_e=9.0, dark_current_e_per_s=0.0,
    )  # fmt: skip
    rubin = Telescope(
        name="rubin-like", aperture_m=6.423, obscuration=0.0, pixel_scale_arcsec=0.2,
        detector=detector, filters=[r],
    )  # fmt: skip
    depth = m5(
        rubin, "r", exptime_s=30.0, airmass=1.0, seeing_fwhm_arcsec=0.83, sky_mag_arcsec2=21.2
    )
    assert depth == pytest.approx(24.52, abs=0.03)


def test_n_eff_matches_a_pixel_integrated_gaussian():
    # PSF photometry's noise-equivalent area is 1 / sum(p_i^2) over the pixel fractions.
    from scipy.special import erf

    for sigma_pix in (1.0, 2.0, 4.0):
        edges = np.arange(-60.0, 61.0) - 0.5
        cdf = 0.5 * erf(edges / (math.sqrt(2.0) * sigma_pix))
        p1 = np.diff(cdf)
        exact = 1.0 / np.sum(np.outer(p1, p1) ** 2)
        fwhm = sigma_pix * 2.0 * math.sqrt(2.0 * math.log(2.0))
        assert n_eff_pixels(fwhm, 1.0) == pytest.approx(exact, rel=0.002)


def test_delivered_seeing_scales_with_airmass_wavelength_and_adds_instrument():
    assert delivered_seeing_arcsec(0.8, 1.0, 500.0) == pytest.approx(0.8)
    assert delivered_seeing_arcsec(0.8, 2.0, 500.0) == pytest.approx(0.8 * 2.0**0.6)
    assert delivered_seeing_arcsec(0.8, 1.0, 1000.0) == pytest.approx(0.8 * 2.0**-0.2)
    assert delivered_seeing_arcsec(0.6, 1.0, 500.0, 0.8) == pytest.approx(1.0)
    grid = delivered_seeing_arcsec(np.array([0.5, 1.0]), np.array([[1.0], [1.5]]), 622.0)
    assert grid.shape == (2, 2)


def test_saturation_magnitude_fills_the_full_well():
    conditions = dict(EXAMPLE)
    sat = saturation_mag(ONE_M, "r", **conditions)
    peak = peak_pixel_electrons(ONE_M, "r", source_mag=sat, **conditions)
    assert peak == pytest.approx(ONE_M.detector.full_well_e, rel=1e-9)
    brighter = peak_pixel_electrons(ONE_M, "r", source_mag=sat - 0.1, **conditions)
    assert brighter > ONE_M.detector.full_well_e
    longer = saturation_mag(ONE_M, "r", **(conditions | {"exptime_s": 600.0}))
    # 10x the time: 2.5 mag fainter, less the 1.3 % of the well the sky now takes.
    assert longer - sat == pytest.approx(2.5, abs=0.02)


def test_sky_alone_can_fill_the_well():
    sat = saturation_mag(
        ONE_M, "r", exptime_s=1e5, airmass=1.0, seeing_fwhm_arcsec=1.0, sky_mag_arcsec2=15.0
    )
    assert sat == np.inf


def test_peak_fraction_limits():
    assert peak_pixel_fraction(1e-3, 1.0) == pytest.approx(1.0)
    fwhm = 5.0
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    assert peak_pixel_fraction(fwhm, 0.2) == pytest.approx(
        0.2**2 / (2 * math.pi * sigma**2), rel=1e-3
    )
