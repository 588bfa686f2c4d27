"""The calibrated image every step of difference imaging takes and returns.

Why one type: registration, resampling, PSF measurement and ZOGY each need the pixels
*and* what goes with them (their variance, which pixels to ignore, where they are on the
sky, how many electrons a magnitude gives). Carrying them together keeps a step from
resampling the pixels but not the mask, or comparing fluxes of two images in different
units.

Units: electrons per pixel above bias and dark, flat-fielded, sky still in. ``variance``
is the expected variance of each pixel in e² (sky and source shot noise, dark, read
noise, through the flat). ``magzero_e`` is the AB magnitude giving 1 e-/s, i.e. the
header's ``MAGZERO`` (1 ADU/s) plus ``2.5 log10(gain)``.

Calibration (:func:`calibrate`) is ``e = (raw - bias) gain / flat - dark``: with the
master bias and flat of the night (:mod:`twin.imaging.calibration`) or, in tests and
benchmarks, the detector's own noise-free bias and flat (:func:`ideal_calibration`),
which is what masters stacked from infinitely many frames would give.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS


@dataclass(frozen=True)
class CalibratedImage:
    """Pixels in electrons with their variance (e²), mask (True = bad), WCS, zero point."""

    data_e: np.ndarray
    variance_e2: np.ndarray
    mask: np.ndarray
    wcs: WCS
    magzero_e: float  # AB magnitude giving 1 e-/s
    exptime_s: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.data_e.shape

    def flux_e(self, mag: float) -> float:
        """Electrons of a point source of AB magnitude ``mag`` in this image."""
        return self.exptime_s * 10.0 ** (-0.4 * (mag - self.magzero_e))

    def with_wcs(self, wcs: WCS) -> CalibratedImage:
        return replace(self, wcs=wcs)


def header_wcs(header: Mapping[str, Any]) -> WCS:
    """The WCS of a header given as a mapping of cards (the pipeline's ``Frame.header``)."""
    if not isinstance(header, fits.Header):
        header = fits.Header([(k, v) for k, v in header.items() if k not in ("COMMENT", "")])
    return WCS(header, naxis=2)


def calibrate(
    raw_adu: np.ndarray,
    header: Mapping[str, Any],
    *,
    bias_adu: np.ndarray | float | None = None,
    flat: np.ndarray | float = 1.0,
    bad_pixels: np.ndarray | None = None,
) -> CalibratedImage:
    """Raw ADU → :class:`CalibratedImage` with the header's gain, noise, dark and WCS.

    ``bias_adu`` defaults to the header's ``BIASLEV`` (a scalar); ``flat`` is the response
    (1 = none). Masked: pixels at or above ``SATURATE``, non-finite ones and
    ``bad_pixels`` (the night's defect mask: hot pixels, bad columns).
    """
    gain = float(header["GAIN"])
    exptime_s = float(header["EXPTIME"])
    bias = float(header["BIASLEV"]) if bias_adu is None else bias_adu
    dark_e = float(header.get("DARKCUR", 0.0) or 0.0) * exptime_s
    read_e2 = float(header["RDNOISE"]) ** 2
    raw = np.asarray(raw_adu, dtype=np.float64)
    flat = np.asarray(flat, dtype=np.float64)
    charge_e = (raw - bias) * gain
    data_e = charge_e / flat - dark_e
    # Poisson on what the pixel collected (light through the flat, plus dark), then read.
    variance_e2 = (np.clip(charge_e, 0.0, None) + read_e2) / flat**2
    mask = raw >= float(header.get("SATURATE", 65535.0)) - 0.5
    mask |= ~np.isfinite(data_e)
    if bad_pixels is not None:
        mask |= np.asarray(bad_pixels, dtype=bool)
    magzero_e = float(header["MAGZERO"]) + 2.5 * math.log10(gain)
    return CalibratedImage(data_e, variance_e2, mask, header_wcs(header), magzero_e, exptime_s)


def ideal_calibration(spec) -> dict[str, np.ndarray]:
    """``bias_adu``, ``flat`` and ``bad_pixels`` of the detector in ``spec``, noise-free.

    Keyword arguments for :func:`calibrate`: what infinitely deep masters and the
    night's defect map would give (hot pixels and bad columns of the equipment model).
    """
    from twin.imaging.detector import bad_columns, bias_image, flat_field, hot_pixels

    bad = np.zeros((spec.ny, spec.nx), dtype=bool)
    hot = hot_pixels(spec)
    bad[hot["y_pix"].to_numpy(), hot["x_pix"].to_numpy()] = True
    bad[:, bad_columns(spec)["x_pix"].to_numpy()] = True
    return {"bias_adu": bias_image(spec), "flat": flat_field(spec), "bad_pixels": bad}
