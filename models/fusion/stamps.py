"""PSF stamps and their Fourier transforms, with one centring convention for all of them.

Convention: a stamp is odd and square, its centre is the middle pixel, ``stamp[n//2,
n//2]``; a kernel applied by :func:`scipy.signal.oaconvolve` with ``mode="same"`` then
shifts nothing. In Fourier space (:func:`otf`) the centre goes to the origin first, so
the transfer functions of stamps of different sizes, padded to one grid, multiply
without phase ramps; :func:`from_otf` undoes it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft, special

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def pad_centred(stamp: np.ndarray, size: int) -> np.ndarray:
    """``stamp`` in the middle of a ``size``×``size`` zero stamp (cropped if larger)."""
    stamp = np.asarray(stamp, dtype=np.float64)
    n = stamp.shape[0]
    if size >= n:
        out = np.zeros((size, size))
        lo = size // 2 - n // 2
        out[lo : lo + n, lo : lo + n] = stamp
        return out
    lo = n // 2 - size // 2
    return stamp[lo : lo + size, lo : lo + size].copy()


def otf(stamp: np.ndarray, size: int) -> np.ndarray:
    """Transfer function of ``stamp`` on a ``size``² grid, its centre at the origin."""
    return fft.fft2(fft.ifftshift(pad_centred(stamp, size)))


def from_otf(spectrum: np.ndarray) -> np.ndarray:
    """The real, centred stamp whose :func:`otf` is ``spectrum``."""
    return fft.fftshift(fft.ifft2(spectrum).real)


def noise_equivalent_area_pix(stamp: np.ndarray) -> float:
    """``1 / Σ P²`` (pixels): the area whose sky noise limits a PSF-fit flux.

    A point source's background-limited SNR² is ``f² Σ P² / σ²`` (King 1983), so this is
    the measure of PSF size that matters for depth, and the one used to pick the
    broadest PSF (a FWHM misses wings and elongation).
    """
    stamp = np.asarray(stamp, dtype=np.float64)
    return float(stamp.sum() ** 2 / np.sum(stamp**2))


def gaussian_psf(fwhm_pix: float, size: int | None = None) -> np.ndarray:
    """A circular Gaussian integrated over square pixels, unit sum (for tests and targets).

    ``size`` defaults to the odd size holding ±4 FWHM, at least 11.
    """
    if size is None:
        size = max(11, 2 * math.ceil(4.0 * fwhm_pix) + 1)
    sigma = fwhm_pix / FWHM_PER_SIGMA
    edges = np.arange(size + 1) - size / 2.0  # pixel edges, centre of middle pixel at 0
    cdf = special.ndtr(edges / sigma)
    line = np.diff(cdf)
    stamp = np.outer(line, line)
    return stamp / stamp.sum()


def shifted(stamp: np.ndarray, dx_pix: float, dy_pix: float) -> np.ndarray:
    """``stamp`` moved by a sub-pixel ``(dx, dy)`` (Fourier shift: band-limited PSFs)."""
    n = stamp.shape[0]
    k = fft.fftfreq(n)
    phase = np.exp(-2j * np.pi * (k[None, :] * dx_pix + k[:, None] * dy_pix))
    return from_otf(otf(stamp, n) * phase)
