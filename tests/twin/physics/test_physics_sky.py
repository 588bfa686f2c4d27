"""Sky brightness: Krisciunas & Schaefer (1991) moonlight, twilight, dark sky."""

import math

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.physics import (
    DARK_SKY_ZENITH_MAG_ARCSEC2,
    dark_sky_mag_arcsec2,
    ks_moon_brightness_nl,
    moon_phase_angle_deg,
    nanolambert_to_v_mag,
    scattering_airmass,
    sky_mag_arcsec2,
    twilight_sky_mag_arcsec2,
)


def ks91_v_mag_by_hand(alpha_deg, moon_zd_deg, target_zd_deg, rho_deg, k):
    """K&S 1991 written out again from the paper with the math module (rho > 10 deg)."""
    i_star = 10 ** (-0.4 * (3.84 + 0.026 * abs(alpha_deg) + 4e-9 * alpha_deg**4))  # eq. 20
    f_rho = 10**5.36 * (1.06 + math.cos(math.radians(rho_deg)) ** 2) + 10 ** (
        6.15 - rho_deg / 40.0
    )  # eq. 21

    def x(zd_deg):  # eq. 3
        return (1 - 0.96 * math.sin(math.radians(zd_deg)) ** 2) ** -0.5

    b_moon = f_rho * i_star * 10 ** (-0.4 * k * x(moon_zd_deg))  # eq. 15 ...
    b_moon *= 1 - 10 ** (-0.4 * k * x(target_zd_deg))
    return (20.7233 - math.log(b_moon / 34.08)) / 0.92104  # eq. 1, nL -> V mag/arcsec^2


def test_ks91_reproduces_published_reference_value():
    # specsim's documented example (specsim.atmosphere.krisciunas_schaefer): target at
    # zenith distance 20, Moon at 70, 50 deg apart, phase 0.25 (alpha = 45 deg), k_V = 0.15
    # -> 19.855 V mag/arcsec^2.
    nl = ks_moon_brightness_nl(45.0, 20.0, 70.0, 50.0, 0.15)
    assert nanolambert_to_v_mag(nl) == pytest.approx(19.855, abs=0.0006)


@pytest.mark.parametrize(
    ("alpha", "moon_alt", "target_alt", "rho", "k"),
    [
        (0.0, 60.0, 60.0, 45.0, 0.172),
        (90.0, 30.0, 75.0, 100.0, 0.2),
        (150.0, 10.0, 40.0, 20.0, 0.12),
    ],
)
def test_ks91_matches_independent_reimplementation(alpha, moon_alt, target_alt, rho, k):
    expected = ks91_v_mag_by_hand(alpha, 90.0 - moon_alt, 90.0 - target_alt, rho, k)
    got = nanolambert_to_v_mag(ks_moon_brightness_nl(alpha, moon_alt, target_alt, rho, k))
    assert got == pytest.approx(expected, abs=1e-9)


def test_full_moon_raises_a_dark_v_sky_by_three_to_four_magnitudes():
    # A dark site (V zenith 21.6 mag/arcsec^2) with K&S's Mauna Kea k_V = 0.172; Moon and
    # target both at altitude 45, 30-60 deg apart: the classic 3-4 mag brightening.
    k, v_zen, x = 0.172, 21.6, float(scattering_airmass(45.0))
    v_dark = v_zen - 2.5 * math.log10(x) + k * (x - 1)  # K&S eq. 2
    dark_nl = 34.08 * math.exp(20.7233 - 0.92104 * v_dark)  # K&S eq. 1
    for rho in (30.0, 45.0, 60.0):
        moon_nl = float(ks_moon_brightness_nl(0.0, 45.0, 45.0, rho, k))
        brightening = 2.5 * math.log10((dark_nl + moon_nl) / dark_nl)
        assert 2.9 < brightening < 4.1, (rho, brightening)


def test_moon_phase_angle_from_illumination():
    assert moon_phase_angle_deg([1.0, 0.5, 0.0]) == pytest.approx([0.0, 90.0, 180.0])


SKY = dict(moon_sep_deg=90.0, moon_illum=0.0, sun_alt_deg=-30.0)


def test_full_moon_ten_degrees_away_is_much_brighter_than_new_moon():
    common = dict(target_alt_deg=50.0, moon_alt_deg=55.0, moon_sep_deg=10.0, sun_alt_deg=-30.0)
    full = sky_mag_arcsec2("r", moon_illum=1.0, **common)
    new = sky_mag_arcsec2("r", moon_illum=0.0, **common)
    assert new - full > 3.0


def test_moon_below_horizon_adds_nothing():
    common = dict(target_alt_deg=50.0, moon_sep_deg=40.0, sun_alt_deg=-30.0)
    for band in "ugrizy":
        set_full = sky_mag_arcsec2(band, moon_alt_deg=-0.5, moon_illum=1.0, **common)
        assert set_full == pytest.approx(dark_sky_mag_arcsec2(band, 50.0), abs=1e-12)


def test_moonlight_fades_with_separation_beyond_ten_degrees():
    seps = np.linspace(10.0, 90.0, 33)
    sky = sky_mag_arcsec2("g", 45.0, 60.0, seps, 0.8, -30.0)
    assert np.all(np.diff(sky) > 0.0)


def test_bright_moon_in_every_band_is_a_few_magnitudes():
    for band in "ugrizy":
        moonlit = sky_mag_arcsec2(band, 60.0, 60.0, 45.0, 1.0, -30.0)
        lift = DARK_SKY_ZENITH_MAG_ARCSEC2[band] - moonlit
        assert 0.5 < lift < 5.0, (band, lift)
    # Moonlight is blue (Rayleigh): u brightens more than y.
    lift_u = DARK_SKY_ZENITH_MAG_ARCSEC2["u"] - sky_mag_arcsec2("u", 60.0, 60.0, 45.0, 1.0, -30)
    lift_y = DARK_SKY_ZENITH_MAG_ARCSEC2["y"] - sky_mag_arcsec2("y", 60.0, 60.0, 45.0, 1.0, -30)
    assert lift_u > lift_y + 1.0


def test_twilight_vanishes_at_minus_18_and_is_bright_at_minus_12():
    for band in "ugrizy":
        dark = sky_mag_arcsec2(band, 90.0, moon_alt_deg=-10.0, **SKY | {"sun_alt_deg": -25.0})
        at_18 = sky_mag_arcsec2(band, 90.0, moon_alt_deg=-10.0, **SKY | {"sun_alt_deg": -18.0})
        assert at_18 == pytest.approx(dark, abs=0.05)
        assert twilight_sky_mag_arcsec2(band, 90.0, -18.0) == np.inf
    dark_r = sky_mag_arcsec2("r", 90.0, moon_alt_deg=-10.0, **SKY)
    at_12 = sky_mag_arcsec2("r", 90.0, moon_alt_deg=-10.0, **SKY | {"sun_alt_deg": -12.0})
    assert dark_r - at_12 >= 1.0


def test_twilight_brightens_monotonically_as_the_sun_rises():
    sun = np.linspace(-18.0, 0.0, 73)
    for band in "ugrizy":
        sky = sky_mag_arcsec2(band, 60.0, -10.0, 90.0, 0.0, sun)
        assert np.all(np.diff(sky) < 0.0), band


def test_dark_sky_brightens_towards_horizon_and_with_light_pollution():
    alts = np.array([90.0, 60.0, 30.0, 15.0])
    assert np.all(np.diff(dark_sky_mag_arcsec2("r", alts)) < 0.0)
    assert dark_sky_mag_arcsec2("r", 90.0) == pytest.approx(21.2, abs=1e-12)
    assert dark_sky_mag_arcsec2("r", 90.0, site_brightening_mag=0.7) == pytest.approx(20.5)


def test_dark_sky_off_zenith_by_hand():
    # K&S eq. 2 at altitude 40 in i band: X = (1 - 0.96 sin^2 50)^-1/2, k_i = 0.10.
    x = (1 - 0.96 * math.sin(math.radians(50.0)) ** 2) ** -0.5
    by_hand = 20.46 - 2.5 * math.log10(x) + 0.10 * (x - 1)
    assert dark_sky_mag_arcsec2("i", 40.0) == pytest.approx(by_hand, abs=1e-12)


def test_sky_is_vectorised_and_nan_below_horizon():
    target = np.array([[80.0], [20.0], [-5.0]])
    moon_sep = np.array([20.0, 60.0, 120.0])
    sky = sky_mag_arcsec2("z", target, 30.0, moon_sep, 0.6, -20.0, site_brightening_mag=0.2)
    assert sky.shape == (3, 3)
    assert np.all(np.isfinite(sky[:2])) and np.all(np.isnan(sky[2]))


def test_unknown_band_is_refused():
    with pytest.raises(ConfigError, match="allowed"):
        sky_mag_arcsec2("V", 60.0, -10.0, 90.0, 0.0, -30.0)
