"""Exposure-time calculator: counts, SNR, 5σ depth, exposure time and saturation.

Why: the scheduler and the operations model need to know, for many candidate
exposures at once, what an exposure would reach (m5), how long it takes to reach a
given SNR, and whether a star saturates. Everything here is closed-form numpy,
broadcasting over airmass, seeing, sky, transparency, magnitude and exposure time.

Photometry (the CCD equation of LSE-40, "Photon Rates and SNR Calculations",
https://ls.st/lse-40, and SMTN-002, https://smtn-002.lsst.io):

- ``ZP`` = :meth:`Telescope.zeropoint_mag`, the AB magnitude giving 1 e-/s above the
  atmosphere; ``k`` from :func:`~twin.physics.extinction.extinction_coefficient`.
- source: ``S = t 10^(-0.4 (m - ZP + k X)) T``, ``T`` the cloud transparency (0..1);
- sky per pixel: ``B = t 10^(-0.4 (sky - ZP)) p² T``. The sky brightness is the one
  measured at the ground, so no ``k X`` (SMTN-002: sky counts use the hardware
  throughput only). Cloud dims the sky by the same ``T``: right for the airglow above
  the cloud, not for moonlight or light pollution scattered by it, which we neglect.
- noise-equivalent area ``n_eff = 2.266 (FWHM / p)² + π/3`` pixels: ``4π σ²`` for a
  Gaussian PSF (2.266 = π / (2 ln 2), the LSE-40 / SMTN-002 factor), with the PSF's
  variance widened by the pixel's ``p²/12`` per axis (``4π/12 = π/3``) for pixelisation;
  this matches ``1 / Σ p_i²`` of a pixel-integrated Gaussian to 0.1 % for σ ≥ 1 pixel
  and overestimates it by 10 % at σ = 0.5 pixel.
- ``SNR = S / sqrt(S + n_eff (B + D t + RN²))``, one read per exposure, gain 1 e-/ADU.

Inverse problems solved exactly: with ``N = n_eff (B + D t + RN²)`` independent of
the source, ``SNR = ν`` gives ``S = (ν² + sqrt(ν⁴ + 4 ν² N)) / 2`` (m5 for ν = 5);
with every term linear in ``t`` except ``RN²``, the exposure time is the positive
root of ``a² t² - ν² (a + n_eff (b + D)) t - ν² n_eff RN² = 0`` (``a``, ``b`` the
source and sky rates).

Saturation: a star centred on a pixel puts the fraction
``erf(p / (2 sqrt(2) σ))²`` of its light in that pixel (→ ``p² / (2π σ²)`` for fine
sampling), on top of the sky and dark current; the pixel saturates at
``detector.full_well_e``.

Delivered seeing: ``FWHM = FWHM_500 X^0.6 (λ / 500 nm)^-0.2`` for Kolmogorov
turbulence (Roddier 1981, Prog. Optics 19, 281; the X^0.6 law is also SMTN-002's,
whose empirical wavelength exponent is -0.3 because of the finite outer scale), added
in quadrature to an instrument/defocus term.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erf

from twin.physics.extinction import REFERENCE_HEIGHT_M, extinction_coefficient
from twin.world.telescope import Telescope

_GAUSSIAN_NEA_PER_FWHM2 = np.pi / (2.0 * np.log(2.0))  # 4π σ² / FWHM² = 2.2662
_PIXELISATION_NEA = np.pi / 3.0  # 4π × (1/12) pixel²
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def delivered_seeing_arcsec(
    zenith_500nm_arcsec: ArrayLike,
    airmass: ArrayLike,
    band_center_nm: ArrayLike,
    instrument_fwhm_arcsec: ArrayLike = 0.0,
) -> np.ndarray:
    """Image FWHM at ``airmass`` and ``band_center_nm`` from the zenith seeing at 500 nm."""
    wavelength = np.asarray(band_center_nm, dtype=float) / 500.0
    atmosphere = np.asarray(zenith_500nm_arcsec) * np.asarray(airmass) ** 0.6 * wavelength**-0.2
    return np.hypot(atmosphere, instrument_fwhm_arcsec)


def n_eff_pixels(fwhm_arcsec: ArrayLike, pixel_scale_arcsec: ArrayLike) -> np.ndarray:
    """Noise-equivalent area (pixels) of a pixelised Gaussian PSF."""
    fwhm_pix = np.asarray(fwhm_arcsec, dtype=float) / np.asarray(pixel_scale_arcsec)
    return _GAUSSIAN_NEA_PER_FWHM2 * fwhm_pix**2 + _PIXELISATION_NEA


def source_rate_e_per_s(
    telescope: Telescope,
    band: str,
    *,
    source_mag: ArrayLike,
    airmass: ArrayLike,
    transparency: ArrayLike = 1.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Electrons per second from a point source of AB magnitude ``source_mag``."""
    extinction = extinction_coefficient(band, height_m) * np.asarray(airmass, dtype=float)
    above = np.asarray(source_mag, dtype=float) - telescope.zeropoint_mag(band)
    return 10.0 ** (-0.4 * (above + extinction)) * np.asarray(transparency)


def source_electrons(
    telescope: Telescope,
    band: str,
    *,
    source_mag: ArrayLike,
    exptime_s: ArrayLike,
    airmass: ArrayLike,
    transparency: ArrayLike = 1.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Total electrons collected from a point source in ``exptime_s``."""
    rate = source_rate_e_per_s(
        telescope,
        band,
        source_mag=source_mag,
        airmass=airmass,
        transparency=transparency,
        height_m=height_m,
    )
    return np.asarray(exptime_s) * rate


def sky_electrons_per_pixel(
    telescope: Telescope,
    band: str,
    *,
    sky_mag_arcsec2: ArrayLike,
    exptime_s: ArrayLike,
    transparency: ArrayLike = 1.0,
) -> np.ndarray:
    """Sky electrons in one pixel in ``exptime_s``; cloud dims the sky by ``transparency``."""
    per_arcsec2 = 10.0 ** (-0.4 * (np.asarray(sky_mag_arcsec2) - telescope.zeropoint_mag(band)))
    pixel_area = telescope.pixel_scale_arcsec**2
    return np.asarray(exptime_s) * per_arcsec2 * pixel_area * np.asarray(transparency)


def _pedestal_electrons(
    telescope: Telescope,
    band: str,
    exptime_s: ArrayLike,
    sky_mag_arcsec2: ArrayLike,
    transparency: ArrayLike,
) -> np.ndarray:
    """Sky + dark current in one pixel: what every pixel holds before any star."""
    sky = sky_electrons_per_pixel(
        telescope,
        band,
        sky_mag_arcsec2=sky_mag_arcsec2,
        exptime_s=exptime_s,
        transparency=transparency,
    )
    return sky + telescope.detector.dark_current_e_per_s * np.asarray(exptime_s)


def _background_variance(
    telescope: Telescope,
    band: str,
    exptime_s: ArrayLike,
    seeing_fwhm_arcsec: ArrayLike,
    sky_mag_arcsec2: ArrayLike,
    transparency: ArrayLike,
) -> np.ndarray:
    """``n_eff (B + D t + RN²)``: the variance in the PSF footprint without the source."""
    pedestal = _pedestal_electrons(telescope, band, exptime_s, sky_mag_arcsec2, transparency)
    n_eff = n_eff_pixels(seeing_fwhm_arcsec, telescope.pixel_scale_arcsec)
    return n_eff * (pedestal + telescope.detector.read_noise_e**2)


def snr(
    telescope: Telescope,
    band: str,
    *,
    source_mag: ArrayLike,
    exptime_s: ArrayLike,
    airmass: ArrayLike,
    seeing_fwhm_arcsec: ArrayLike,
    sky_mag_arcsec2: ArrayLike,
    transparency: ArrayLike = 1.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Signal-to-noise ratio of PSF photometry of a point source."""
    signal = source_electrons(
        telescope,
        band,
        source_mag=source_mag,
        exptime_s=exptime_s,
        airmass=airmass,
        transparency=transparency,
        height_m=height_m,
    )
    noise2 = _background_variance(
        telescope, band, exptime_s, seeing_fwhm_arcsec, sky_mag_arcsec2, transparency
    )
    return signal / np.sqrt(signal + noise2)


def m5(
    telescope: Telescope,
    band: str,
    *,
    exptime_s: ArrayLike,
    airmass: ArrayLike,
    seeing_fwhm_arcsec: ArrayLike,
    sky_mag_arcsec2: ArrayLike,
    transparency: ArrayLike = 1.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
    snr_target: ArrayLike = 5.0,
) -> np.ndarray:
    """Point-source magnitude reaching ``snr_target`` (the 5σ depth); ``-inf`` if T = 0."""
    noise2 = _background_variance(
        telescope, band, exptime_s, seeing_fwhm_arcsec, sky_mag_arcsec2, transparency
    )
    nu2 = np.asarray(snr_target, dtype=float) ** 2
    signal = 0.5 * (nu2 + np.sqrt(nu2**2 + 4.0 * nu2 * noise2))
    zero_mag_electrons = source_electrons(
        telescope,
        band,
        source_mag=0.0,
        exptime_s=exptime_s,
        airmass=airmass,
        transparency=transparency,
        height_m=height_m,
    )
    with np.errstate(divide="ignore"):
        return 2.5 * np.log10(zero_mag_electrons / signal)


def exptime_for_snr(
    telescope: Telescope,
    band: str,
    *,
    source_mag: ArrayLike,
    snr_target: ArrayLike,
    airmass: ArrayLike,
    seeing_fwhm_arcsec: ArrayLike,
    sky_mag_arcsec2: ArrayLike,
    transparency: ArrayLike = 1.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Exposure time (s) for ``source_mag`` to reach ``snr_target``; ``inf`` if never."""
    a = source_rate_e_per_s(
        telescope,
        band,
        source_mag=source_mag,
        airmass=airmass,
        transparency=transparency,
        height_m=height_m,
    )
    n_eff = n_eff_pixels(seeing_fwhm_arcsec, telescope.pixel_scale_arcsec)
    sky_rate = sky_electrons_per_pixel(
        telescope, band, sky_mag_arcsec2=sky_mag_arcsec2, exptime_s=1.0, transparency=transparency
    )
    background_rate = n_eff * (sky_rate + telescope.detector.dark_current_e_per_s)
    read = n_eff * telescope.detector.read_noise_e**2
    nu2 = np.asarray(snr_target, dtype=float) ** 2
    linear = nu2 * (a + background_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (linear + np.sqrt(linear**2 + 4.0 * a**2 * nu2 * read)) / (2.0 * a**2)
    return np.where(a > 0.0, t, np.inf)


def peak_pixel_fraction(fwhm_arcsec: ArrayLike, pixel_scale_arcsec: ArrayLike) -> np.ndarray:
    """Fraction of a Gaussian star's light in the pixel it is centred on."""
    sigma_pix = np.asarray(fwhm_arcsec, dtype=float) / _FWHM_PER_SIGMA / pixel_scale_arcsec
    return erf(1.0 / (2.0 * np.sqrt(2.0) * sigma_pix)) ** 2


def peak_pixel_electrons(
    telescope: Telescope,
    band: str,
    *,
    source_mag: ArrayLike,
    exptime_s: ArrayLike,
    airmass: ArrayLike,
    seeing_fwhm_arcsec: ArrayLike,
    sky_mag_arcsec2: ArrayLike,
    transparency: ArrayLike = 1.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Electrons in the brightest pixel of a centred star: star + sky + dark current."""
    star = source_electrons(
        telescope,
        band,
        source_mag=source_mag,
        exptime_s=exptime_s,
        airmass=airmass,
        transparency=transparency,
        height_m=height_m,
    )
    fraction = peak_pixel_fraction(seeing_fwhm_arcsec, telescope.pixel_scale_arcsec)
    pedestal = _pedestal_electrons(telescope, band, exptime_s, sky_mag_arcsec2, transparency)
    return star * fraction + pedestal


def saturation_mag(
    telescope: Telescope,
    band: str,
    *,
    exptime_s: ArrayLike,
    airmass: ArrayLike,
    seeing_fwhm_arcsec: ArrayLike,
    sky_mag_arcsec2: ArrayLike,
    transparency: ArrayLike = 1.0,
    height_m: ArrayLike = REFERENCE_HEIGHT_M,
) -> np.ndarray:
    """Magnitude whose peak pixel just fills the full well; brighter stars saturate.

    ``+inf`` where the sky and dark current alone fill the well (everything saturates);
    ``-inf`` where no light arrives (T = 0: nothing saturates).
    """
    pedestal = _pedestal_electrons(telescope, band, exptime_s, sky_mag_arcsec2, transparency)
    room = telescope.detector.full_well_e - pedestal
    fraction = peak_pixel_fraction(seeing_fwhm_arcsec, telescope.pixel_scale_arcsec)
    zero_mag_peak = fraction * source_electrons(
        telescope,
        band,
        source_mag=0.0,
        exptime_s=exptime_s,
        airmass=airmass,
        transparency=transparency,
        height_m=height_m,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = 2.5 * np.log10(zero_mag_peak / room)
    return np.where(room > 0.0, mag, np.inf)
