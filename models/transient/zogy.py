"""ZOGY: the proper image difference D, its matched filter S, and Scorr (numpy FFT).

Zackay, Ofek & Gal-Yam 2016 (ApJ 830, 27; "ZOGY"), for a new image N and a reference R
on the same grid, background subtracted, with PSFs P_n, P_r (unit sum), background noise
σ_n, σ_r and flux zero points F_n, F_r (counts of a unit-flux source; here F_n = 1, so
fluxes come out in the new image's electrons, and F_r = the ``flux_ratio``):

    den  = σ_n² F_r² |P̂_r|² + σ_r² F_n² |P̂_n|²
    D̂    = (F_r P̂_r N̂ − F_n P̂_n R̂) / √den  (white, unit variance)
    F_D  = F_r F_n / √(σ_n² F_r² + σ_r² F_n²)
    P̂_D  = F_r F_n P̂_r P̂_n / (F_D √den)
    Ŝ    = F_D D̂ conj(P̂_D)  (the matched filter)
    F_S  = F_D² Σ P_D²,  flux = S / F_S

S is also S_N − S_R with S_N = k_n ⊗ N, S_R = k_r ⊗ R:

    k̂_n = F_n F_r² conj(P̂_n) |P̂_r|² / den,   k̂_r = F_r F_n² conj(P̂_r) |P̂_n|² / den

and the source-noise correction divides S by its full standard deviation:
V(S_N) = V(N) ⊗ k_n², V(S_R) = V(R) ⊗ k_r² with V the per-pixel variance maps (sky *and*
sources), plus, when the registration's uncertainty σ_x, σ_y is given, the astrometric
term σ_x² (∂S/∂x)² + σ_y² (∂S/∂y)² for S_N and S_R:

    Scorr = S / √(V(S_N) + V(S_R) + V_ast)

On empty sky V(S_N) + V(S_R) = F_S, so Scorr has unit variance there; near a bright star
the source noise and the registration noise lower it, which is what keeps star residuals
from becoming 5σ candidates.

Fourier conventions: numpy's unnormalised real FFT (``scipy.fft.rfft2``), PSFs placed with
their centre on pixel (0, 0), so P̂(0) = 1. Convolutions are circular: the outer
``2 × PSF radius`` pixels are masked in :attr:`ZogyResult.mask`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from models.transient.psf import Psf


@dataclass(frozen=True)
class ZogyResult:
    """D, S, Scorr and what turns them into fluxes (see the module docstring).

    ``flux_e`` and ``flux_err_e``: at a point source's position, its flux in the new
    image's electrons (``S / F_S``) and the 1σ error from the full variance. ``mask``:
    pixels not to look for candidates in (masked inputs spread by the kernels, border).
    """

    d: np.ndarray
    s: np.ndarray
    scorr: np.ndarray
    flux_e: np.ndarray
    flux_err_e: np.ndarray
    psf_d: np.ndarray
    f_d: float
    f_s: float
    mask: np.ndarray


def zogy(
    new_e: np.ndarray,
    ref_e: np.ndarray,
    psf_new: Psf,
    psf_ref: Psf,
    *,
    sigma_new_e: float,
    sigma_ref_e: float,
    flux_ratio: float = 1.0,
    variance_new_e2: np.ndarray | None = None,
    variance_ref_e2: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    astrometric_sigma_pix: tuple[float, float] = (0.0, 0.0),
    workers: int = 1,
) -> ZogyResult:
    """ZOGY of background-subtracted ``new_e`` and ``ref_e`` on one grid (module docstring).

    ``flux_ratio`` = F_r / F_n: the reference's counts per count in the new image for the
    same source (:func:`flux_ratio_from_zero_points`). ``variance_*``: per-pixel variance
    maps for the source-noise term (None: the background's σ² everywhere). ``mask``: bad
    pixels of either image (True), set to zero in both before the transforms.
    """
    shape = new_e.shape
    if ref_e.shape != shape:
        raise ValueError(f"new {shape} and reference {ref_e.shape} differ: resample first")
    bad = np.zeros(shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    f_n, f_r, s_n2, s_r2 = 1.0, float(flux_ratio), sigma_new_e**2, sigma_ref_e**2

    def rfft(a):
        return fft.rfft2(a, workers=workers)

    def irfft(a):
        return fft.irfft2(a, s=shape, workers=workers)

    n_hat = rfft(np.where(bad, 0.0, new_e))
    r_hat = rfft(np.where(bad, 0.0, ref_e))
    pn_hat, pr_hat = rfft(_at_origin(psf_new.stamp, shape)), rfft(_at_origin(psf_ref.stamp, shape))
    pn2, pr2 = np.abs(pn_hat) ** 2, np.abs(pr_hat) ** 2
    den = s_n2 * f_r**2 * pr2 + s_r2 * f_n**2 * pn2
    den = np.maximum(den, 1e-30 * float(den.max()))
    sqrt_den = np.sqrt(den)
    f_d = f_r * f_n / math.sqrt(s_n2 * f_r**2 + s_r2 * f_n**2)
    d_hat = (f_r * pr_hat * n_hat - f_n * pn_hat * r_hat) / sqrt_den
    pd_hat = f_r * f_n * pr_hat * pn_hat / (f_d * sqrt_den)
    kn_hat = f_n * f_r**2 * np.conj(pn_hat) * pr2 / den
    kr_hat = f_r * f_n**2 * np.conj(pr_hat) * pn2 / den
    s = irfft(f_d * d_hat * np.conj(pd_hat))
    psf_d = irfft(pd_hat)
    f_s = f_d**2 * float(np.sum(psf_d**2))
    kn, kr = irfft(kn_hat), irfft(kr_hat)
    variance = _filtered_variance(variance_new_e2, s_n2, kn, bad, rfft, irfft)
    variance += _filtered_variance(variance_ref_e2, s_r2, kr, bad, rfft, irfft)
    sx, sy = astrometric_sigma_pix
    if sx > 0.0 or sy > 0.0:
        for part in (irfft(kn_hat * n_hat), irfft(kr_hat * r_hat)):
            gy, gx = np.gradient(part)
            variance += sx**2 * gx**2 + sy**2 * gy**2
    sigma_s = np.sqrt(np.clip(variance, 1e-30, None))
    return ZogyResult(
        d=irfft(d_hat),
        s=s,
        scorr=s / sigma_s,
        flux_e=s / f_s,
        flux_err_e=sigma_s / f_s,
        psf_d=_centred(psf_d, max(psf_new.radius_px, psf_ref.radius_px)),
        f_d=f_d,
        f_s=f_s,
        mask=_result_mask(bad, max(psf_new.radius_px, psf_ref.radius_px)),
    )


def flux_ratio_from_zero_points(
    magzero_new_e: float, exptime_new_s: float, magzero_ref_e: float, exptime_ref_s: float
) -> float:
    """F_r / F_n: counts in the reference per count in the new image for the same source.

    From the zero points (AB mag giving 1 e-/s) and exposure times: flux matching needs
    no star photometry when both are calibrated (their ratio to the stars' is a check).
    """
    return (exptime_ref_s / exptime_new_s) * 10.0 ** (0.4 * (magzero_ref_e - magzero_new_e))


def _filtered_variance(variance, sigma2, kernel, bad, rfft, irfft) -> np.ndarray:
    """V ⊗ k² (the variance of k ⊗ image); a constant σ² when no map is given."""
    k2 = kernel**2
    if variance is None:
        return np.full(kernel.shape, sigma2 * float(k2.sum()))
    filled = np.where(bad, sigma2, np.asarray(variance, dtype=np.float64))
    return irfft(rfft(filled) * rfft(k2))


def _at_origin(stamp: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``stamp`` (odd, centred) in a zero array of ``shape`` with its centre on (0, 0)."""
    r = stamp.shape[0] // 2
    out = np.zeros(shape)
    out[: stamp.shape[0], : stamp.shape[1]] = stamp
    return np.roll(out, (-r, -r), axis=(0, 1))


def _centred(image: np.ndarray, radius: int) -> np.ndarray:
    """The ``2 radius + 1`` square around (0, 0) of a circular image, centred."""
    rolled = np.roll(image, (radius, radius), axis=(0, 1))
    return rolled[: 2 * radius + 1, : 2 * radius + 1].copy()


def _result_mask(bad: np.ndarray, radius: int) -> np.ndarray:
    """Bad pixels grown by the PSF radius (the kernels carry them that far), and a border."""
    grown = ndimage.maximum_filter(bad, size=2 * radius + 1) if bad.any() else bad.copy()
    border = 2 * radius
    grown[:border], grown[-border:], grown[:, :border], grown[:, -border:] = True, True, True, True
    return grown
