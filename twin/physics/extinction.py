"""Airmass and atmospheric extinction, vectorised for the scheduler's hot path.

Why: every exposure loses ``k X`` magnitudes on its way through the air, and the
scheduler weighs that loss for many targets at once, so these are plain numpy
functions of arrays, in degrees and magnitudes.

Airmass. Pickering (2002, "The Southern Limits of the Ancient Star Catalog", DIO 12, 1)
gives ``X = 1 / sin(h + 244 / (165 + 47 h^1.1))`` with ``h`` the apparent altitude in
degrees. It is 1.0000002 at the zenith, 1.993 at 30 deg (plane-parallel sec z = 2),
and stays finite down to the horizon (38.75 at h = 0), where sec z diverges. Below the
horizon a target is not observable: :func:`airmass_from_alt` returns ``inf`` for
``alt_deg <= 0``, so the extincted flux is zero and any "airmass < limit" mask is
False.

Extinction coefficients. ``EXTINCTION_K_REF`` are the Rubin/LSST values ``kAtm`` of
SMTN-002 (Jones et al., "Calculating LSST limiting magnitudes and SNR",
https://smtn-002.lsst.io, throughputs v1.9) for Cerro Pachón, 2663 m: u 0.47,
g 0.21, r 0.13, i 0.10, z 0.07, y 0.17 mag/airmass (y is high because the band holds
water-vapour absorption).

Altitude scaling. Only the Rayleigh part is scaled, with the pressure
``p ∝ exp(-h / 8 km)``; ozone, aerosol and water terms are kept as at the reference.
The sea-level Rayleigh optical depth is Hansen & Travis (1974, Space Sci. Rev. 16,
527, eq. 2.30): ``tau = 0.008569 λ^-4 (1 + 0.0113 λ^-2 + 0.00013 λ^-4)``, λ in µm,
and ``k = 2.5 log10(e) tau = 1.0857 tau``. So u band loses 0.16 mag/airmass more at
sea level than at Cerro Pachón and 0.07 less on Mauna Kea; y barely changes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from twin.errors import ConfigError

REFERENCE_HEIGHT_M = 2663.0
"""Height of Cerro Pachón, where :data:`EXTINCTION_K_REF` was derived."""

PRESSURE_SCALE_HEIGHT_M = 8000.0
"""Scale height of the pressure profile, ``p ∝ exp(-h / H)``."""

EXTINCTION_K_REF: dict[str, float] = {
    "u": 0.47,
    "g": 0.21,
    "r": 0.13,
    "i": 0.10,
    "z": 0.07,
    "y": 0.17,
}
"""Zenith extinction (mag/airmass) at :data:`REFERENCE_HEIGHT_M` (SMTN-002, kAtm)."""

BAND_EFFECTIVE_WAVELENGTH_NM: dict[str, float] = {
    "u": 366.0,
    "g": 482.0,
    "r": 622.0,
    "i": 754.0,
    "z": 869.0,
    "y": 971.0,
}
"""Effective wavelengths of the LSST bands (SMTN-002), for the Rayleigh term."""

_MAG_PER_OPTICAL_DEPTH = 2.5 * np.log10(np.e)


def airmass_from_alt(alt_deg: ArrayLike) -> np.ndarray:
    """Airmass at apparent altitude ``alt_deg`` (Pickering 2002); ``inf`` at or below 0."""
    alt = np.asarray(alt_deg, dtype=float)
    above = alt > 0.0
    h = np.where(above, alt, 90.0)  # placeholder keeps the power and sine warning-free
    x = 1.0 / np.sin(np.radians(h + 244.0 / (165.0 + 47.0 * h**1.1)))
    return np.where(above, x, np.where(np.isnan(alt), np.nan, np.inf))


def rayleigh_k_sea_level(wavelength_nm: ArrayLike) -> np.ndarray:
    """Rayleigh extinction (mag/airmass) at sea level (Hansen & Travis 1974, eq. 2.30)."""
    lam_um = np.asarray(wavelength_nm, dtype=float) / 1000.0
    tau = 0.008569 * lam_um**-4 * (1.0 + 0.0113 * lam_um**-2 + 0.00013 * lam_um**-4)
    return _MAG_PER_OPTICAL_DEPTH * tau


def extinction_coefficient(band: str, height_m: ArrayLike = REFERENCE_HEIGHT_M) -> np.ndarray:
    """Zenith extinction ``k`` (mag/airmass) in ``band`` at a site ``height_m`` above sea level."""
    if band not in EXTINCTION_K_REF:
        allowed = sorted(EXTINCTION_K_REF)
        raise ConfigError("extinction", "band", f"unknown band {band!r}; allowed: {allowed}")
    pressure = np.exp(-np.asarray(height_m, dtype=float) / PRESSURE_SCALE_HEIGHT_M)
    pressure_ref = np.exp(-REFERENCE_HEIGHT_M / PRESSURE_SCALE_HEIGHT_M)
    k_rayleigh = rayleigh_k_sea_level(BAND_EFFECTIVE_WAVELENGTH_NM[band])
    return EXTINCTION_K_REF[band] + k_rayleigh * (pressure - pressure_ref)


def extinction_mag(
    band: str, airmass: ArrayLike, height_m: ArrayLike = REFERENCE_HEIGHT_M
) -> np.ndarray:
    """Magnitudes lost to the atmosphere, ``k X``; ``inf`` where the airmass is ``inf``."""
    return extinction_coefficient(band, height_m) * np.asarray(airmass, dtype=float)
