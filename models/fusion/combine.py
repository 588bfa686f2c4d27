"""The machinery every linear coadd shares: per-frame kernels, masks, the frames left.

Each baseline is linear in the pixels: ``image = Σ_j k_j ⊗ (data_j − background_j)``, the
method deciding only the kernels ``k_j`` (a scaled delta for the inverse-variance coadd, a
matching kernel for the PSF-matched one, Zackay & Ofek's filter for the proper coadd).
So one engine (:func:`combine`) does, for all of them:

1. **Masks.** Bad, non-finite or masked input pixels enter as 0 (never as NaN), and a frame
   is dropped from every output pixel where more than ``mask_spread`` of its kernel's
   absolute weight would fall on them or off the frame's edge.
2. **The frames left.** Each output pixel gets the coadd of the frames usable there: the
   full set almost everywhere, and near a masked pixel of frame j the coadd of the
   others. For a weighted mean of fixed filters (inverse-variance, PSF-matched) that is
   the same filtered frames with the weights renormalised per pixel; for the proper
   coadd the filters themselves depend on the set (its normalisation does), so the
   set's coadd is computed on the connected regions that need it. Either way a bad
   column in one input biases nothing: the pixels near it are the coadd of N − 1
   frames, with an honest variance and their own PSF (``Coadd.psfs``).
3. **Variance**, exact for independent pixels: ``Σ_j k_j² ⊗ V_j``.
4. **PSF** of each set of frames that enters somewhere: ``Σ_j F_j k_j ⊗ P_j`` (the
   weighted mean PSF changes with the set for the inverse-variance and proper coadds).

Convolutions are products of transforms summed over frames (:func:`apply`), one thread;
the mask footprints use :func:`scipy.signal.oaconvolve`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import fft, ndimage, signal

from models.fusion.frame import AlignedFrame
from models.fusion.result import Coadd
from models.fusion.stamps import pad_centred

MASK_SPREAD = 0.005
"""A frame is left out of an output pixel when more than this share of its kernel's
absolute weight lands on masked pixels or outside the frame: the flux such a pixel could
lose is below half a percent of that frame's share."""

KernelsFor = Callable[[tuple[int, ...]], list[np.ndarray]]
"""Frame indices of a subset → one kernel per member (electrons → coadd flux unit)."""


def check_frames(frames: Sequence[AlignedFrame]) -> list[AlignedFrame]:
    """The frames as a list, after checking there is one at least and one grid."""
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to coadd: pass at least one AlignedFrame")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"frames on different grids {sorted(shapes)}: resample them first")
    return frames


def unit_psfs(frames: Sequence[AlignedFrame]) -> list[np.ndarray]:
    """Each frame's PSF normalised to unit sum (the flux scale lives in ``flux_scale_e``)."""
    out = []
    for f in frames:
        total = float(np.sum(f.psf))
        if not total > 0:
            raise ValueError("a PSF stamp sums to ≤ 0: measure it again or pass a model")
        out.append(np.asarray(f.psf, dtype=np.float64) / total)
    return out


def trimmed(kernel: np.ndarray, keep: float = 1.0 - 1e-4) -> np.ndarray:
    """The smallest centred odd crop of ``kernel`` holding ``keep`` of its |weight|."""
    n = kernel.shape[0]
    weight = np.abs(kernel)
    total = weight.sum()
    c = n // 2
    for h in range(c + 1):
        if weight[c - h : c + h + 1, c - h : c + h + 1].sum() >= keep * total:
            return kernel[c - h : c + h + 1, c - h : c + h + 1].copy()
    return kernel


def combine(
    method: str,
    frames: Sequence[AlignedFrame],
    kernels_for: KernelsFor,
    *,
    mask_spread: float = MASK_SPREAD,
    flux_norm: float | None = None,
    weights: np.ndarray | None = None,
) -> Coadd:
    """Apply ``kernels_for``'s kernels to ``frames`` (see the module docstring).

    ``weights``: for a weighted mean of fixed per-frame filters (the inverse-variance and
    PSF-matched coadds: ``k_{j,S} = w_j / Σ_S w · K_j``), so a set's coadd is a per-pixel
    reweighting of the frames filtered once, with no convolution per region.
    """
    frames = check_frames(frames)
    n = len(frames)
    if n > 62:
        raise ValueError(f"{n} frames: coadd at most 62 at once (then coadd the coadds)")
    shape = frames[0].shape
    valid = [f.valid for f in frames]
    data = [
        np.where(v, np.asarray(f.data_e, float) - f.background_e, 0.0)
        for f, v in zip(frames, valid, strict=True)
    ]
    var = [np.where(v, f.variance_e2, 0.0) for f, v in zip(frames, valid, strict=True)]
    full = tuple(range(n))
    kernels = kernels_for(full)
    # The frames share one grid, so one edge band (the widest kernel's) for all of them.
    edges = np.logical_and.reduce([inside_edges(shape, k, mask_spread) for k in kernels])
    code = np.zeros(shape, np.int64)
    for j, (v, k) in enumerate(zip(valid, kernels, strict=True)):
        code |= (edges & usable(v, k, mask_spread)).astype(np.int64) << j
    image = np.zeros(shape)
    variance = np.full(shape, np.inf)
    psfs = {}
    if weights is not None:
        _reweighted(code, data, var, kernels, np.asarray(weights, float), image, variance)
    for c in (int(c) for c in np.unique(code)):
        if c == 0:
            continue
        subset = tuple(j for j in full if (c >> j) & 1)
        ks = kernels if subset == full else kernels_for(subset)
        d, v = [data[j] for j in subset], [var[j] for j in subset]
        psfs[c] = output_psf([frames[j] for j in subset], ks)
        if weights is not None:
            continue
        if subset == full:
            im, va = apply(d, v, ks)
            here = code == c
            image[here], variance[here] = im[here], va[here]
        else:
            _fill_regions(code == c, d, v, ks, image, variance)
    full_psf = psfs.get((1 << n) - 1)
    if full_psf is None:  # nowhere do all frames enter: still report what they would give
        full_psf = output_psf(frames, kernels)
    return Coadd(method, image, variance, full_psf, code, psfs, tuple(kernels), flux_norm)


def usable(valid: np.ndarray, kernel: np.ndarray, mask_spread: float) -> np.ndarray:
    """Pixels where < ``mask_spread`` of a frame's |kernel| falls on its invalid pixels."""
    if kernel.shape == (1, 1) or valid.all():
        return valid.copy()
    weight = np.abs(kernel) / np.abs(kernel).sum()
    lost = signal.oaconvolve((~valid).astype(np.float64), weight, mode="same")
    return valid & (lost <= mask_spread)


def inside_edges(shape, kernel: np.ndarray, mask_spread: float) -> np.ndarray:
    """Pixels at least h from every edge, h the half-box holding 1 − spread of |kernel|."""
    weight = np.abs(kernel) / np.abs(kernel).sum()
    c = weight.shape[0] // 2
    h = next(
        h
        for h in range(c + 1)
        if weight[c - h : c + h + 1, c - h : c + h + 1].sum() >= 1.0 - mask_spread
    )
    ok = np.zeros(shape, bool)
    ny, nx = shape
    ok[h : ny - h, h : nx - h] = True
    return ok


def apply(data, var, kernels) -> tuple[np.ndarray, np.ndarray]:
    """``Σ k_j ⊗ d_j`` and its variance ``Σ k_j² ⊗ v_j`` (zero padding at the edges).

    Summed in Fourier space, as Zackay & Ofek write it: one forward transform per
    image and kernel, one inverse per output, on a grid padded by the largest kernel.
    """
    shape = data[0].shape
    image = np.zeros(shape)
    variance = np.zeros(shape)
    wide = [(d, v, k) for d, v, k in zip(data, var, kernels, strict=True) if k.shape != (1, 1)]
    for d, v, k in zip(data, var, kernels, strict=True):
        if k.shape == (1, 1):
            image += k[0, 0] * d
            variance += k[0, 0] ** 2 * v
    if wide:
        size = max(k.shape[0] for _, _, k in wide)
        grid = tuple(fft.next_fast_len(n + size - 1, real=True) for n in shape)
        spectrum = np.zeros((grid[0], grid[1] // 2 + 1), complex)
        spectrum_var = np.zeros_like(spectrum)
        for d, v, k in wide:
            k = pad_centred(k, size)
            spectrum += fft.rfft2(d, grid) * fft.rfft2(k, grid)
            spectrum_var += fft.rfft2(v, grid) * fft.rfft2(k**2, grid)
        c = size // 2
        crop = (slice(c, c + shape[0]), slice(c, c + shape[1]))
        image += fft.irfft2(spectrum, grid)[crop]
        variance += fft.irfft2(spectrum_var, grid)[crop]
    return image, np.maximum(variance, 0.0)  # FFT round-off can dip below 0


def _reweighted(code, data, var, kernels, weights, image, variance) -> None:
    """Weighted mean of each frame filtered once, over the frames usable at each pixel."""
    total = np.zeros(code.shape)
    image[:] = 0.0
    variance[:] = 0.0
    for j, (d, v, k) in enumerate(zip(data, var, kernels, strict=True)):
        base = k * (weights.sum() / weights[j])  # the frame's filter at unit weight share
        filtered, filtered_var = apply([d], [v], [base])
        w = np.where((code >> j) & 1, weights[j], 0.0)
        total += w
        image += w * filtered
        variance += w**2 * filtered_var
    some = total > 0
    image[some] /= total[some]
    variance[some] /= total[some] ** 2
    image[~some] = 0.0
    variance[~some] = np.inf


def _fill_regions(where, data, var, kernels, image, variance) -> None:
    """Write the subset's coadd into each connected region of ``where`` (windowed)."""
    margin = max(k.shape[0] for k in kernels) // 2
    labels, _ = ndimage.label(where, structure=np.ones((3, 3), bool))
    ny, nx = where.shape
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        y0, y1 = max(box[0].start - margin, 0), min(box[0].stop + margin, ny)
        x0, x1 = max(box[1].start - margin, 0), min(box[1].stop + margin, nx)
        win = (slice(y0, y1), slice(x0, x1))
        im, va = apply([d[win] for d in data], [v[win] for v in var], kernels)
        inner = (
            slice(box[0].start - y0, box[0].stop - y0),
            slice(box[1].start - x0, box[1].stop - x0),
        )
        region = labels[box] == index
        image[box][region] = im[inner][region]
        variance[box][region] = va[inner][region]


def output_psf(frames: Sequence[AlignedFrame], kernels: Sequence[np.ndarray]) -> np.ndarray:
    """The coadd's PSF, ``Σ_j F_j k_j ⊗ P_j``, on a stamp as large as the largest input."""
    psfs = unit_psfs(frames)
    size = max(max(p.shape[0] for p in psfs), max(k.shape[0] for k in kernels))
    out = np.zeros((size, size))
    for f, p, k in zip(frames, psfs, kernels, strict=True):
        out += f.flux_scale_e * signal.fftconvolve(pad_centred(p, size), k, mode="same")
    return out
