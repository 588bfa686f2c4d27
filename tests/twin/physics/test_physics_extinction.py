"""Airmass (Pickering 2002) and extinction coefficients with their altitude scaling."""

import math

import numpy as np
import pytest

from twin.errors import ConfigError
from twin.physics import (
    EXTINCTION_K_REF,
    REFERENCE_HEIGHT_M,
    airmass_from_alt,
    extinction_coefficient,
    extinction_mag,
)


def test_airmass_is_one_at_zenith_and_about_two_at_30_deg():
    assert airmass_from_alt(90.0) == pytest.approx(1.0, abs=1e-6)
    # Plane-parallel sec z = 2 at 30 deg; refraction and curvature take off 0.3 %.
    assert airmass_from_alt(30.0) == pytest.approx(2.0, rel=0.005)


def test_airmass_matches_pickering_by_hand():
    h = 20.0
    by_hand = 1.0 / math.sin(math.radians(h + 244.0 / (165.0 + 47.0 * h**1.1)))
    assert airmass_from_alt(h) == pytest.approx(by_hand, rel=1e-12)


def test_airmass_is_finite_near_horizon_and_inf_below():
    x = airmass_from_alt(np.array([5.0, 1.0, 0.01, 0.0, -3.0]))
    assert np.all(np.isfinite(x[:3]))
    assert 30.0 < x[2] < 40.0  # 38.7 at the horizon, where sec z diverges
    assert np.all(np.diff(x[:3]) > 0.0)
    assert np.all(np.isinf(x[3:]))
    assert np.isnan(airmass_from_alt(np.nan))


def test_airmass_decreases_monotonically_with_altitude():
    x = airmass_from_alt(np.linspace(1.0, 90.0, 200))
    assert np.all(np.diff(x) < 0.0)


def test_coefficients_at_reference_height_are_the_table():
    for band, k in EXTINCTION_K_REF.items():
        assert extinction_coefficient(band, REFERENCE_HEIGHT_M) == pytest.approx(k, abs=1e-12)


def test_rayleigh_altitude_scaling_by_hand():
    # u band, sea level: Hansen & Travis tau at 0.366 um, times 1.0857 mag per unit tau.
    lam = 0.366
    tau = 0.008569 * lam**-4 * (1 + 0.0113 * lam**-2 + 0.00013 * lam**-4)  # 0.5218
    k_rayleigh_sea = 2.5 * math.log10(math.e) * tau  # 0.5665 mag/airmass
    # Pressure ratio between sea level and the reference: 1 - exp(-2663/8000) = 0.283.
    by_hand = 0.47 + k_rayleigh_sea * (1.0 - math.exp(-REFERENCE_HEIGHT_M / 8000.0))
    assert extinction_coefficient("u", 0.0) == pytest.approx(by_hand, rel=1e-9)
    assert by_hand == pytest.approx(0.630, abs=0.002)


def test_higher_sites_extinct_less_and_blue_bands_change_most():
    heights = np.array([0.0, 2200.0, 4200.0])
    for band in "ugrizy":
        assert np.all(np.diff(extinction_coefficient(band, heights)) < 0.0)
    du = extinction_coefficient("u", 0.0) - extinction_coefficient("u", 4200.0)
    dy = extinction_coefficient("y", 0.0) - extinction_coefficient("y", 4200.0)
    assert du > 10.0 * dy
    assert extinction_coefficient("y", 6000.0) > 0.0


def test_extinction_mag_is_k_times_airmass_vectorised():
    airmass = np.array([1.0, 1.5, 2.0])
    assert np.allclose(extinction_mag("r", airmass), 0.13 * airmass, rtol=1e-12)
    assert np.isinf(extinction_mag("r", airmass_from_alt(-1.0)))


def test_unknown_band_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="allowed"):
        extinction_coefficient("V")
