"""Sky surface brightness per band: dark sky, moonlight and twilight, vectorised.

Why: the sky sets the noise floor of almost every exposure, and it changes by several
magnitudes with the Moon and the Sun, so the scheduler needs it for every candidate
pointing. Each component is a magnitude per arcsec² (AB); the total adds the
components as fluxes, never as magnitudes. Angles are in degrees.

Dark sky. Zenith values :data:`DARK_SKY_ZENITH_MAG_ARCSEC2` are the Rubin dark-sky
figures of SMTN-002 (https://smtn-002.lsst.io: an ESO sky spectrum normalised to the
SDSS dark sky in u and y) for Cerro Pachón. Away from the zenith the airglow layer
is seen through a longer path and the light is extincted on the way down: Krisciunas
& Schaefer (1991, PASP 103, 1033; "K&S" below) eq. 2,
``B(Z) = B_zen X 10^(-0.4 k (X - 1))`` with the van Rhijn-like airmass of eq. 3,
``X = (1 - 0.96 sin² Z)^-1/2`` (:func:`scattering_airmass`; 5 at the horizon). A
site's light pollution (``Site.sky_brightening_mag``) brightens this component by
that many magnitudes everywhere on the sky.

Moonlight. K&S eqs. 15, 20, 21: the Moon's illuminance
``I* = 10^(-0.4 (3.84 + 0.026 |α| + 4e-9 α⁴))`` (α the phase angle, 0 = full), the
scattering function ``f(ρ) = 10^5.36 (1.06 + cos² ρ) + 10^(6.15 - ρ/40)`` (Rayleigh +
Mie, ρ the Moon-target separation; within 10° the Mie aureole is K&S's
``6.2e7 / ρ²``, as in Thorstensen's skycalc), and
``B_moon = f(ρ) I* 10^(-0.4 k X_moon) (1 - 10^(-0.4 k X))`` in nanolamberts, turned
into V mag/arcsec² with K&S eq. 1, ``B = 34.08 exp(20.7233 - 0.92104 V)``. K&S is a
V-band model. For other bands: the band's own ``k`` goes into the formula (the light
scattered into the beam grows with the scattering optical depth, which is what makes
moonlit skies bluer), and moonlight is taken to have the Sun's colour, so the V
result is shifted by :data:`SUN_COLOUR_MINUS_V` (solar absolute magnitudes of the
SDSS "ugriz colors of Vega and the Sun" page, https://www.sdss.org/dr16/algorithms/
ugrizVegaSun/: M_V = 4.82, M_g = 5.12, u-g 1.43, g-r 0.44, r-i 0.11, i-z 0.03; y is
taken equal to z). Left out: the Moon's slight reddening relative to the Sun, the
opposition surge within 7° of full Moon, the Earth-Moon distance, and thin cloud that
scatters moonlight (transparency is applied in :mod:`twin.physics.etc`). No moonlight
when the Moon is at or below the horizon.

Twilight. The exponential model fitted to Cerro Pachón all-sky camera data by
Yoachim et al. (2016, SPIE 9910, 99101A; ``rubin_sim.skybrightness.twilight_func``):
twilight flux ``F_12 10^(a (h_sun + 12°)) 10^(b (X - 1))``, with ``F_12`` the zenith
twilight at a sun altitude of -12° and ``a`` ≈ 0.39-0.42 dex per degree (about one
magnitude per degree). ``F_12`` (:data:`TWILIGHT_ZENITH_MAG_AT_MINUS12`) is rubin_sim's
ratio to its own zenith dark sky (u 16, Canon B 7.6 / G 2.4 / R 1.75, z 2.29, y 2.0;
g takes 4.25, the geometric mean of B and G, and i 2.0, between R and z), times that
dark sky (u 22.8, g 22.3, r 21.2, i 20.3, z 19.3, y 18.0); the slopes ``a`` are mapped
the same way. The value at -18° is subtracted so
that twilight is exactly zero at the end of astronomical twilight and continuous
there; the away-from-Sun airmass term ``b = 0.3`` is kept and the azimuth term left
out (no Sun azimuth here). The fit covers sun altitudes below about -11°; above it
is an extrapolation, clamped at the horizon (daytime is not modelled).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from twin.errors import ConfigError
from twin.physics.extinction import REFERENCE_HEIGHT_M, extinction_coefficient

DARK_SKY_ZENITH_MAG_ARCSEC2: dict[str, float] = {
    "u": 23.05,
    "g": 22.25,
    "r": 21.20,
    "i": 20.46,
    "z": 19.61,
    "y": 18.60,
}
"""Zenith dark-sky brightness at a pristine site, AB mag/arcsec² (SMTN-002)."""

SUN_COLOUR_MINUS_V: dict[str, float] = {
    "u": 1.73,
    "g": 0.30,
    "r": -0.14,
    "i": -0.25,
    "z": -0.28,
    "y": -0.28,
}
"""Solar colour ``M_band(AB) - M_V``: moonlight in a band is the V moonlight plus this."""

TWILIGHT_ZENITH_MAG_AT_MINUS12: dict[str, float] = {
    "u": 19.79,
    "g": 20.73,
    "r": 20.59,
    "i": 19.55,
    "z": 18.40,
    "y": 17.25,
}
"""Zenith twilight surface brightness (AB mag/arcsec²) at sun altitude -12° (rubin_sim)."""

TWILIGHT_SLOPE_DEX_PER_DEG: dict[str, float] = {
    band: per_rad * np.pi / 180.0
    for band, per_rad in {
        "u": 22.96,
        "g": 22.95,
        "r": 22.20,
        "i": 23.14,
        "z": 24.08,
        "y": 24.08,
    }.items()
}
"""Twilight decay ``a`` (dex per degree of sun altitude), from rubin_sim's per-radian fits."""

TWILIGHT_AIRMASS_DEX = 0.3
"""Away-from-Sun airmass term ``b`` of the twilight fit (dex per unit airmass)."""

TWILIGHT_END_SUN_ALT_DEG = -18.0

_KS_MOON_MIN_SEP_DEG = 0.25  # the Moon's radius: the formula means nothing inside the disc


def _check_band(band: str) -> None:
    if band not in DARK_SKY_ZENITH_MAG_ARCSEC2:
        allowed = sorted(DARK_SKY_ZENITH_MAG_ARCSEC2)
        raise ConfigError("sky model", "band", f"unknown band {band!r}; allowed: {allowed}")


def _flux(mag: ArrayLike) -> np.ndarray:
    return 10.0 ** (-0.4 * np.asarray(mag, dtype=float))


def _mag(flux: ArrayLike) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -2.5 * np.log10(np.asarray(flux, dtype=float))


def scattering_airmass(alt_deg: ArrayLike) -> np.ndarray:
    """K&S eq. 3, ``(1 - 0.96 sin² Z)^-1/2``: path through the sky's emitting/scattering layer."""
    zenith = np.radians(90.0 - np.clip(np.asarray(alt_deg, dtype=float), 0.0, 90.0))
    return (1.0 - 0.96 * np.sin(zenith) ** 2) ** -0.5


def moon_phase_angle_deg(moon_illum: ArrayLike) -> np.ndarray:
    """Phase angle α (0 = full, 180 = new) from the illuminated fraction ``(1 + cos α) / 2``."""
    illum = np.clip(np.asarray(moon_illum, dtype=float), 0.0, 1.0)
    return np.degrees(np.arccos(2.0 * illum - 1.0))


def nanolambert_to_v_mag(brightness_nl: ArrayLike) -> np.ndarray:
    """K&S eq. 1 inverted: nanolamberts to V mag/arcsec² (``inf`` for zero)."""
    with np.errstate(divide="ignore"):
        return (20.7233 - np.log(np.asarray(brightness_nl, dtype=float) / 34.08)) / 0.92104


def ks_moon_brightness_nl(
    phase_angle_deg: ArrayLike,
    moon_alt_deg: ArrayLike,
    target_alt_deg: ArrayLike,
    moon_sep_deg: ArrayLike,
    k: ArrayLike,
) -> np.ndarray:
    """Scattered moonlight (nanolamberts) of K&S eqs. 15, 20, 21; zero with the Moon set."""
    alpha = np.abs(np.asarray(phase_angle_deg, dtype=float))
    illuminance = 10.0 ** (-0.4 * (3.84 + 0.026 * alpha + 4e-9 * alpha**4))
    rho = np.clip(np.asarray(moon_sep_deg, dtype=float), _KS_MOON_MIN_SEP_DEG, 180.0)
    rayleigh = 10.0**5.36 * (1.06 + np.cos(np.radians(rho)) ** 2)
    mie = np.where(rho >= 10.0, 10.0 ** (6.15 - rho / 40.0), 6.2e7 / rho**2)
    k = np.asarray(k, dtype=float)
    through = 10.0 ** (-0.4 * k * scattering_airmass(moon_alt_deg))
    scattered = 1.0 - 10.0 ** (-0.4 * k * scattering_airmass(target_alt_deg))
    brightness = (rayleigh + mie) * illuminance * through * scattered
    return np.where(np.asarray(moon_alt_deg) > 0.0, brightness, 0.0)


def dark_sky_mag_arcsec2(
    band: str,
    target_alt_deg: ArrayLike,
    site_brightening_mag: ArrayLike = 0.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Moonless night sky (airglow, zodiacal, stars, light pollution) at ``target_alt_deg``."""
    _check_band(band)
    x = scattering_airmass(target_alt_deg)
    k = extinction_coefficient(band, height_m)
    zenith = DARK_SKY_ZENITH_MAG_ARCSEC2[band] - np.asarray(site_brightening_mag, dtype=float)
    return zenith - 2.5 * np.log10(x) + k * (x - 1.0)


def moon_sky_mag_arcsec2(
    band: str,
    target_alt_deg: ArrayLike,
    moon_alt_deg: ArrayLike,
    moon_sep_deg: ArrayLike,
    moon_illum: ArrayLike,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Scattered moonlight in ``band`` (AB mag/arcsec²; ``inf`` with the Moon set)."""
    _check_band(band)
    k = extinction_coefficient(band, height_m)
    nl = ks_moon_brightness_nl(
        moon_phase_angle_deg(moon_illum), moon_alt_deg, target_alt_deg, moon_sep_deg, k
    )
    return nanolambert_to_v_mag(nl) + SUN_COLOUR_MINUS_V[band]


def twilight_sky_mag_arcsec2(
    band: str, target_alt_deg: ArrayLike, sun_alt_deg: ArrayLike
) -> np.ndarray:
    """Twilight in ``band`` (AB mag/arcsec²; ``inf`` once the Sun is below -18°)."""
    _check_band(band)
    a = TWILIGHT_SLOPE_DEX_PER_DEG[band]
    sun = np.minimum(np.asarray(sun_alt_deg, dtype=float), 0.0)
    decay = 10.0 ** (a * (sun + 12.0)) - 10.0 ** (a * (TWILIGHT_END_SUN_ALT_DEG + 12.0))
    x = scattering_airmass(target_alt_deg)
    flux = _flux(TWILIGHT_ZENITH_MAG_AT_MINUS12[band]) * 10.0 ** (TWILIGHT_AIRMASS_DEX * (x - 1.0))
    return _mag(np.where(sun > TWILIGHT_END_SUN_ALT_DEG, flux * decay, 0.0))


def sky_mag_arcsec2(
    band: str,
    target_alt_deg: ArrayLike,
    moon_alt_deg: ArrayLike,
    moon_sep_deg: ArrayLike,
    moon_illum: ArrayLike,
    sun_alt_deg: ArrayLike,
    site_brightening_mag: ArrayLike = 0.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Total sky brightness (AB mag/arcsec²) at a pointing; ``nan`` below the horizon.

    All inputs broadcast together. ``moon_illum`` is the illuminated fraction 0..1.
    """
    total = (
        _flux(dark_sky_mag_arcsec2(band, target_alt_deg, site_brightening_mag, height_m))
        + _flux(
            moon_sky_mag_arcsec2(
                band, target_alt_deg, moon_alt_deg, moon_sep_deg, moon_illum, height_m
            )
        )
        + _flux(twilight_sky_mag_arcsec2(band, target_alt_deg, sun_alt_deg))
    )
    return np.where(np.asarray(target_alt_deg) >= 0.0, _mag(total), np.nan)
