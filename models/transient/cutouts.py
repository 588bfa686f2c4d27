"""Cut-out triplets and scalar features of difference-image candidates, for real/bogus.

What the classifier sees of each candidate of :attr:`Difference.candidates` (issue 12,
item 4), computed the same way in the dataset, in training and in the pipeline's stage:

1. ``triplets``: float32 ``(n, 3, size, size)``, channels (new, ref_on_new, D) centred on
   the candidate's nearest pixel, ``size`` = :data:`CUTOUT_PX` = 63 as ZTF's braai
   (Duev et al. 2019): ~16 FWHM at 1″ seeing and 0.39″/px, enough to show a host galaxy,
   a trail's direction or a bright star's halo. Beyond the frame's edge: zeros.
2. ``features``: one row per candidate (same order), :data:`FEATURE_COLUMNS`.

Normalisation (why not braai's per-cut-out L2 norm): every channel is expressed in units
of the *new frame's sky noise* σ_new (``Difference.sigma_new_e``), then compressed with
``asinh``:

- new: ``asinh((new − median) / σ_new)``, median of the cut-out's unmasked pixels (the
  local sky left by the background fit);
- ref: ``asinh((ref_on_new / flux_ratio − median) / σ_new)``: the reference scaled to the
  new frame's electrons, so the same source has the same value in both channels;
- D: ``asinh(D)``: ZOGY's D is already white with unit variance.

So noise stays linear (±1), a star's core is logarithmic (a 10⁵ e⁻ star ~ 8), and a 5σ
bump never looks like a 500σ one, as it would after a per-cut-out rescale. Masked pixels
(saturated, flagged defects; for D, ZOGY's own mask) are 0 in their channel.

Features (unbounded ones already ``asinh``/``log``-compressed, so a standardisation
by the training set's mean and σ suffices):

| name              | what                                                              |
|-------------------|-------------------------------------------------------------------|
| scorr_abs         | ``|Scorr|`` at the peak                                            |
| d_peak            | asinh of sign·D at the centre: D has no source-noise term, so a   |
|                   | high D with a modest Scorr is a bright source's residual          |
| log_n_pix         | log10 of the ``|Scorr| ≥ 5`` region's size                        |
| sign              | +1 brightened, −1 faded                                           |
| in_halo           | 1 in a bright star's halo (:func:`.psf.halo_mask`)                |
| d_sharpness       | (peak / 5×5 sum) of sign·D over that of D's PSF: 1 for a point    |
|                   | source, > 1 for a cosmic ray or hot pixel                         |
| d_elongation      | 1 − b/a of sign·D's second moments in 7×7 (trails, columns)       |
| d_size_ratio      | sign·D's second-moment radius over the PSF's                      |
| star_dist_pix     | distance to the nearest catalogue star (capped at 32 px)          |
| star_asinh_flux   | asinh(its expected flux / 100 σ_new) if within 32 px, else 0      |
| ref_core_sigma    | asinh of the reference's 5×5 sum at the position / (5 σ_new)      |
| new_peak_sigma    | asinh of the new frame's 3×3 maximum / σ_new (saturation, CRs)    |
| mask_frac         | masked fraction of the cut-out (new or ref)                       |
| mask_frac_core    | masked fraction of its central 5×5                                |
| psf_fwhm_pix      | the new frame's measured PSF FWHM                                 |
| new_sharpness     | log10 of the new channel's centre-3×3 peak over the mean of its 4 |
|                   | neighbours (linear σ units): a cosmic ray or hot pixel is one     |
|                   | pixel, a PSF ≥ 2 px FWHM spreads (:func:`triplet_features`)       |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from models.transient.difference import Difference

CUTOUT_PX = 63
"""Side of a cut-out: ZTF's braai (Duev et al. 2019, MNRAS 489, 3582) uses 63 × 63."""

STAR_RADIUS_PX = 32.0
"""Catalogue stars farther than this from a candidate count as none (half a cut-out)."""

FEATURE_COLUMNS = (
    "scorr_abs",
    "d_peak",
    "log_n_pix",
    "sign",
    "in_halo",
    "d_sharpness",
    "d_elongation",
    "d_size_ratio",
    "star_dist_pix",
    "star_asinh_flux",
    "ref_core_sigma",
    "new_peak_sigma",
    "mask_frac",
    "mask_frac_core",
    "psf_fwhm_pix",
    "new_sharpness",
)
TRIPLET_FEATURES = ("new_sharpness",)
"""Features computed from the triplet itself (:func:`triplet_features`): a dataset that
stores the triplets can recompute them without the images."""


def candidate_triplets(diff: Difference, size: int = CUTOUT_PX) -> tuple[np.ndarray, pd.DataFrame]:
    """``(triplets, features)`` of every candidate of ``diff`` (module docstring)."""
    if size % 2 != 1:
        raise ValueError(f"size must be odd so the candidate sits on the centre pixel; got {size}")
    cands = diff.candidates
    n = len(cands)
    if n == 0:
        return np.zeros((0, 3, size, size), np.float32), pd.DataFrame(
            {c: pd.Series(dtype=float) for c in FEATURE_COLUMNS}
        )
    sigma = max(float(diff.sigma_new_e), 1e-6)
    iy = np.rint(cands["y_pix"].to_numpy(float)).astype(int)
    ix = np.rint(cands["x_pix"].to_numpy(float)).astype(int)
    in_mask = diff.new.mask | diff.ref_on_new.mask
    new = _stack(diff.new.data_e, iy, ix, size)
    ref = _stack(diff.ref_on_new.data_e / diff.flux_ratio, iy, ix, size)
    d = _stack(diff.zogy.d, iy, ix, size)
    bad = _stack(in_mask.astype(np.float64), iy, ix, size, fill=1.0) > 0.5
    bad_d = _stack(diff.zogy.mask.astype(np.float64), iy, ix, size, fill=1.0) > 0.5
    new_c, ref_c = _centre(new, bad), _centre(ref, bad)
    triplets = np.empty((n, 3, size, size), np.float32)
    triplets[:, 0] = np.where(bad, 0.0, np.arcsinh(new_c / sigma))
    triplets[:, 1] = np.where(bad, 0.0, np.arcsinh(ref_c / sigma))
    triplets[:, 2] = np.where(bad_d, 0.0, np.arcsinh(np.nan_to_num(d)))
    features = _features(diff, cands, new_c, ref_c, d, bad, sigma)
    for name, values in triplet_features(triplets).items():
        features[name] = values
    return triplets, features[list(FEATURE_COLUMNS)]


def triplet_features(triplets: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`TRIPLET_FEATURES` from the (asinh) triplets: undone with ``sinh``."""
    new = np.sinh(np.asarray(triplets[:, 0], dtype=np.float64))
    n, size = new.shape[0], new.shape[-1]
    c = size // 2
    core = new[:, c - 1 : c + 2, c - 1 : c + 2].reshape(n, 9)
    k = core.argmax(axis=1)
    py, px = c - 1 + k // 3, c - 1 + k % 3
    rows = np.arange(n)
    peak = new[rows, py, px]
    around = (new[rows, py - 1, px] + new[rows, py + 1, px] + new[rows, py, px - 1]
              + new[rows, py, px + 1]) / 4.0  # fmt: skip
    ratio = np.clip(peak, 1e-3, None) / np.clip(around, 1e-3, None)
    return {"new_sharpness": np.log10(np.clip(ratio, 1e-3, 1e3))}


def _stack(image: np.ndarray, iy: np.ndarray, ix: np.ndarray, size: int, fill: float = 0.0):
    """``(n, size, size)`` windows centred on ``(iy, ix)``, ``fill`` beyond the edges."""
    half = size // 2
    padded = np.pad(np.asarray(image, dtype=np.float64), half, constant_values=fill)
    rows = iy[:, None] + np.arange(size)[None, :]  # padded coordinates: centre + half
    cols = ix[:, None] + np.arange(size)[None, :]
    return padded[rows[:, :, None], cols[:, None, :]]


def _centre(cutouts: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Each cut-out minus the median of its good pixels (the local sky)."""
    values = np.where(bad, np.nan, cutouts)
    with np.errstate(all="ignore"):
        median = np.nanmedian(values.reshape(len(values), -1), axis=1)
    return cutouts - np.nan_to_num(median)[:, None, None]


def _features(diff, cands, new_c, ref_c, d, bad, sigma: float) -> pd.DataFrame:
    n, size = len(cands), new_c.shape[-1]
    c = size // 2
    sign = cands["sign"].to_numpy(float)
    sd = np.nan_to_num(d) * sign[:, None, None]
    core5 = np.s_[:, c - 2 : c + 3, c - 2 : c + 3]
    psf_d = np.asarray(diff.zogy.psf_d, dtype=float)
    pc = psf_d.shape[0] // 2
    psf_ratio = psf_d[pc, pc] / max(psf_d[pc - 2 : pc + 3, pc - 2 : pc + 3].sum(), 1e-12)
    peak = sd[:, c, c]
    box = np.clip(sd[core5].sum(axis=(1, 2)), 1e-6, None)
    sharp = np.clip(peak / box / psf_ratio, 0.0, 10.0)
    elong, size_ratio = _moments(sd, c, psf_d)
    star_dist, star_flux = _nearest_star(diff, cands)
    return pd.DataFrame(
        {
            "scorr_abs": np.abs(cands["scorr"].to_numpy(float)),
            "d_peak": np.arcsinh(peak),
            "log_n_pix": np.log10(np.clip(cands["n_pix"].to_numpy(float), 1.0, None)),
            "sign": sign,
            "in_halo": cands["in_halo"].to_numpy(float) if "in_halo" in cands else np.zeros(n),
            "d_sharpness": sharp,
            "d_elongation": elong,
            "d_size_ratio": size_ratio,
            "star_dist_pix": star_dist,
            "star_asinh_flux": np.arcsinh(star_flux / (100.0 * sigma)),
            "ref_core_sigma": np.arcsinh(ref_c[core5].sum(axis=(1, 2)) / (5.0 * sigma)),
            "new_peak_sigma": np.arcsinh(
                new_c[:, c - 1 : c + 2, c - 1 : c + 2].max(axis=(1, 2)) / sigma
            ),
            "mask_frac": bad.mean(axis=(1, 2)),
            "mask_frac_core": bad[core5].mean(axis=(1, 2)),
            "psf_fwhm_pix": np.full(n, float(diff.psf_new.fwhm_pix)),
        },
    )


def _moments(sd: np.ndarray, c: int, psf_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elongation ``1 − b/a`` and second-moment radius over the PSF's, in 7 × 7."""
    win = np.clip(sd[:, c - 3 : c + 4, c - 3 : c + 4], 0.0, None)
    _, r_psf = _second_moments(psf_d[None, ...], psf_d.shape[0] // 2)
    a_b, r = _second_moments(win, 3)
    return a_b, r / max(float(r_psf[0]), 1e-6)


def _second_moments(win: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    w = win[:, c - 3 : c + 4, c - 3 : c + 4] if win.shape[-1] > 7 else win
    y, x = np.mgrid[-3:4, -3:4].astype(float)
    total = np.clip(w.sum(axis=(1, 2)), 1e-9, None)
    mx = (w * x).sum(axis=(1, 2)) / total
    my = (w * y).sum(axis=(1, 2)) / total
    xx = (w * x**2).sum(axis=(1, 2)) / total - mx**2
    yy = (w * y**2).sum(axis=(1, 2)) / total - my**2
    xy = (w * x * y).sum(axis=(1, 2)) / total - mx * my
    half_trace, det = 0.5 * (xx + yy), np.clip(xx * yy - xy**2, 0.0, None)
    root = np.sqrt(np.clip(half_trace**2 - det, 0.0, None))
    lam1, lam2 = half_trace + root, np.clip(half_trace - root, 0.0, None)
    elong = 1.0 - np.sqrt(lam2 / np.clip(lam1, 1e-9, None))
    return np.clip(elong, 0.0, 1.0), np.sqrt(np.clip(xx + yy, 0.0, None))


def _nearest_star(diff, cands) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the nearest catalogue star and its expected flux in the new frame."""
    n = len(cands)
    stars = diff.registration.catalogue
    dist = np.full(n, STAR_RADIUS_PX)
    flux = np.zeros(n)
    if stars is None or len(stars) == 0:
        return dist, flux
    sx, sy = diff.registration.wcs.all_world2pix(
        stars["ra_deg"].to_numpy(float), stars["dec_deg"].to_numpy(float), 0
    )
    sflux = np.asarray(diff.new.flux_e(stars["mag"].to_numpy(float)), dtype=float)
    cx, cy = cands["x_pix"].to_numpy(float), cands["y_pix"].to_numpy(float)
    for i in range(n):
        r = np.hypot(sx - cx[i], sy - cy[i])
        j = int(np.argmin(r))
        if r[j] < STAR_RADIUS_PX:
            dist[i], flux[i] = r[j], sflux[j]
    return dist, flux
