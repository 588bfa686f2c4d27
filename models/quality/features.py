"""What the quality model sees of a frame: a normalised image and a vector of side features.

Nothing here reads the truth, except to *remove* it: the twin's ``MAGZERO`` card folds in
the cloud transparency of the moment (``twin.imaging.fits``), which a real site would not
know before measuring; the side input uses the clear-sky zero point
``MAGZERO - 2.5 log10(TRANSPAR)`` (instrument, throughput and airmass only), so the
network has to find the cloud in the pixels.

Image normalisation (one rule for training, the stage and the tests)::

    z = (data - median) / (1.4826 MAD),   x = asinh(z / 3) / 3

a robust sky subtraction and noise scaling (so gain, exposure time and sky level drop
out), then asinh to compress stars (z ~ 1e4 → x ~ 2.9) while keeping the noise linear.
The absolute levels the normalisation removes come back as side features measured from
the same pixels: the sky surface brightness implied by the median (mag/arcsec², from the
clear-sky zero point) and the noise in electrons.

Side features (``SIDE_NAMES``): log10 exposure time, gain, read noise, clear-sky zero
point, pixel scale, airmass, extinction × airmass, measured sky mag, log10 noise, and the
band one-hot over ``BANDS``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

BANDS = ("u", "g", "r", "i", "z", "y")
KOLMOGOROV_HLR_PER_FWHM = 0.5685
"""Half-light radius / FWHM of a Kolmogorov profile (GalSim ``Kolmogorov``): a star's
measured half-light radius over this is the FWHM the SEP measurements report."""
SIDE_NAMES = (
    "log10_exptime_s", "gain_e_per_adu", "read_noise_e", "zp_clear_mag", "pixel_scale_arcsec",
    "airmass", "extinction_mag", "sky_mag_measured", "log10_noise_e",
    *(f"band_{b}" for b in BANDS),
)  # fmt: skip
N_SIDE = len(SIDE_NAMES)
# Centring of the side features (typical values of the twin's 1-m/2-m telescopes), so the
# network starts near zero; any telescope works, these only shift and scale.
_SIDE_CENTRE = np.array([1.8, 1.0, 8.0, 24.0, 0.35, 1.3, 0.2, 20.5, 1.2] + [0.0] * len(BANDS))
_SIDE_SCALE = np.array([0.3, 1.0, 5.0, 1.5, 0.1, 0.3, 0.2, 1.5, 0.5] + [1.0] * len(BANDS))


def robust_sky(data: np.ndarray) -> tuple[float, float]:
    """``(median, sigma)`` of the frame, sigma = 1.4826 MAD (on a subsample: fast)."""
    flat = np.asarray(data, dtype=np.float32).ravel()[::7]
    med = float(np.median(flat))
    sigma = 1.4826 * float(np.median(np.abs(flat - med)))
    return med, max(sigma, 1e-3)


def normalise_image(data: np.ndarray, med: float | None = None, sigma: float | None = None
                    ) -> np.ndarray:  # fmt: skip
    """The network's image input (float32, same shape): see the module docstring."""
    if med is None or sigma is None:
        med, sigma = robust_sky(data)
    z = (np.asarray(data, dtype=np.float32) - np.float32(med)) / np.float32(sigma)
    return (np.arcsinh(z / 3.0) / 3.0).astype(np.float32)


def zp_clear_mag(header: Mapping[str, Any]) -> float:
    """AB mag giving 1 ADU/s under a clear sky (the header's MAGZERO less the cloud)."""
    transparency = float(header.get("TRANSPAR", 1.0) or 1.0)
    # MAGZERO = 2.5 log10(e0 / gain) with e0 proportional to the transparency T.
    return float(header["MAGZERO"]) - 2.5 * math.log10(max(transparency, 1e-6))


def side_features(header: Mapping[str, Any], med: float, sigma: float) -> np.ndarray:
    """The side-input vector (float32, ``N_SIDE``), centred and scaled."""
    exptime = max(float(header["EXPTIME"]), 1e-3)
    gain = float(header["GAIN"])
    scale = float(header["PIXSCALE"])
    airmass = float(header.get("AIRMASS", 1.0) or 1.0)
    zp = zp_clear_mag(header)
    extinction = float(header.get("EXTINCT", 0.0) or 0.0) * airmass
    sky_adu = max(med - float(header.get("BIASLEV", 0.0)), 1e-2)
    # Sky brightness measured at the ground has no k X (twin.physics.etc): add it back.
    sky_mag = zp + extinction - 2.5 * math.log10(sky_adu / (exptime * scale**2))
    band = str(header.get("FILTER", ""))
    values = [
        math.log10(exptime), gain, float(header["RDNOISE"]), zp, scale, airmass, extinction,
        sky_mag, math.log10(max(sigma * gain, 1e-3)), *(float(band == b) for b in BANDS),
    ]  # fmt: skip
    return ((np.asarray(values) - _SIDE_CENTRE) / _SIDE_SCALE).astype(np.float32)


def frame_inputs(data: np.ndarray, header: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(image, side)`` for one frame: what :class:`~models.quality.model.QualityNet` takes."""
    med, sigma = robust_sky(data)
    return normalise_image(data, med, sigma), side_features(header, med, sigma)


def model_inputs(data: np.ndarray, header: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(image, side)`` the network takes: :func:`frame_inputs` with the classical
    measurements of :mod:`models.quality.classical` appended to the side vector."""
    from models.quality.classical import classical_features

    image, side = frame_inputs(data, header)
    return image, np.concatenate([side, classical_features(data, header)]).astype(np.float32)
