"""What the learned fusion sees of a stack: the proper coadd, and each frame against the others.

Why these terms. The proper coadd (Zackay & Ofek 2017) is optimal when every frame is
``M_j = F_j P_j ⊗ T + noise``; the learned fusion only has to find where a frame breaks
that model and take it out there. Both steps have an exact linear form in Fourier space,
with ``A_j = F_j P̂_j / σ_j`` (frame j's whitened transfer function), ``M̃_j = M̂_j / σ_j``,
``B = Σ_j |A_j|²`` and, for the others of frame j, ``S_-j = Σ_{i≠j} A_i* M̃_i``,
``B_-j = B − |A_j|²``:

1. **Proper coadd** ``R̂ = Σ_j A_j* M̃_j / √B``, returned as ``image = R / F_R`` (flux per
   pixel in the coadd's unit) with its per-pixel variance ``Σ_j k_j² ⊗ V_j``; ``R`` has
   unit sky noise, so ``1 / F_R`` is the coadd's sky σ.
2. **Difference of frame j against the others** (the ZOGY statistic of Zackay, Ofek &
   Gal-Yam 2016 with the others' proper coadd as reference)
   ``D̂_j = (B_-j M̃_j − A_j S_-j) / √(B_-j B)``: white noise of unit variance where the
   stack is consistent (its signal cancels exactly), and anything frame j has that the
   others lack (a trail, a cloud's shadow, a shifted or blurred star) where it is not.
3. **Removal term** ``Ĉ_j = (A_j* M̃_j − |A_j|² S_-j / (B_-j + λB)) / (F_R √B)``: what
   ``image`` loses when frame j's contribution is replaced by the others' estimate of the
   same signal. For λ = 0, ``image − C_j`` has the coadd's PSF and flux scale but none
   of frame j's pixels, so a per-pixel gate ``g_j ∈ [0, 1]`` gives ``image − Σ g_j C_j``:
   the proper coadd where every ``g = 0``, the others' coadd where a frame is switched
   off. λ (default 0.1) keeps the others' estimate from amplifying noise at spatial
   frequencies only frame j measures (a sharp frame among blurred ones): there the
   removal is partial.

Sizes: transforms on a grid padded by the largest PSF stamp (zero padding, so edges
behave as in :mod:`.combine`); masked or invalid pixels enter as 0 (their neighbourhood
is left to the classical coadd's frames-left logic by the caller).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft

from models.fusion.combine import check_frames, unit_psfs
from models.fusion.frame import AlignedFrame

REMOVAL_REGULARISATION = 0.1
"""λ of the removal term: the others' estimate is shrunk where they hold < ~λ of the
stack's information, so switching a sharp frame off costs at most ~1/λ in noise power at
the frequencies only it measures (rather than without bound)."""


@dataclass(frozen=True)
class StackTerms:
    """The proper coadd of a stack and each frame's difference and removal term.

    ``image``, ``variance``: the proper coadd ``R / F_R`` (coadd flux unit) and its
    per-pixel variance. ``difference`` (N, H, W): ``D_j``, unit-variance white noise on
    a consistent stack. ``removal`` (N, H, W): ``C_j`` in the coadd's flux unit.
    ``flux_norm``: ``F_R``, so ``image * flux_norm`` has unit sky noise.
    """

    image: np.ndarray
    variance: np.ndarray
    difference: np.ndarray
    removal: np.ndarray
    flux_norm: float


def transfer_on_grid(psf: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Real-FFT transfer function of a centred odd stamp on ``grid``, centre at the origin."""
    n = psf.shape[0]
    placed = np.zeros(grid)
    placed[:n, :n] = psf
    placed = np.roll(placed, (-(n // 2), -(n // 2)), axis=(0, 1))
    return fft.rfft2(placed)


def stack_terms(
    frames: Sequence[AlignedFrame], *, regularisation: float = REMOVAL_REGULARISATION
) -> StackTerms:
    """:class:`StackTerms` of ``frames`` (one grid, at least two frames; module docstring)."""
    frames = check_frames(frames)
    if len(frames) < 2:
        raise ValueError("a stack of one frame has no 'others': pass two frames or more")
    shape = frames[0].shape
    psfs = unit_psfs(frames)
    stamp = max(p.shape[0] for p in psfs)
    grid = tuple(fft.next_fast_len(n + stamp, real=True) for n in shape)
    crop = (slice(0, shape[0]), slice(0, shape[1]))
    sigmas = np.array([f.sigma_e for f in frames])
    scales = np.array([f.flux_scale_e for f in frames])
    transfer = [
        s / sig * transfer_on_grid(p, grid) for p, s, sig in zip(psfs, scales, sigmas, strict=True)
    ]
    whitened = [
        fft.rfft2(np.where(f.valid, np.asarray(f.data_e, float) - f.background_e, 0.0) / sig, grid)
        for f, sig in zip(frames, sigmas, strict=True)
    ]
    power = [np.abs(a) ** 2 for a in transfer]
    total = sum(power)
    tiny = 1e-12 * float(total.max())
    root_total = np.sqrt(total + tiny)
    summed = sum(np.conj(a) * m for a, m in zip(transfer, whitened, strict=True))
    flux_norm = math.sqrt(float(np.sum((scales / sigmas) ** 2)))

    image = fft.irfft2(summed / root_total, grid)[crop] / flux_norm
    variance = np.zeros(shape)
    difference = np.zeros((len(frames), *shape))
    removal = np.zeros((len(frames), *shape))
    for j, (f, a, m, p) in enumerate(zip(frames, transfer, whitened, power, strict=True)):
        kernel = fft.irfft2(np.conj(a) / root_total, grid) / (sigmas[j] * flux_norm)
        var_j = np.where(f.valid, f.variance_e2, 0.0)
        variance += fft.irfft2(fft.rfft2(var_j, grid) * fft.rfft2(kernel**2), grid)[crop]
        others = summed - np.conj(a) * m
        power_others = total - p
        difference[j] = fft.irfft2(
            (power_others * m - a * others) / np.sqrt(power_others * total + tiny**2), grid
        )[crop]
        estimate = p * others / (power_others + regularisation * total + tiny)
        removal[j] = fft.irfft2((np.conj(a) * m - estimate) / root_total, grid)[crop] / flux_norm
    return StackTerms(image, np.maximum(variance, 0.0), difference, removal, flux_norm)
