"""Each frame's metadata as the learned fusion reads it: conditions, site, time, depth.

Why a type: the issue asks the fusion to use "seeing, transparency, sky, zero point, site,
time" beside the pixels, and the same numbers must reach the network whether a stack
comes from the training set or from a run (``skytwin fuse --method learned``). Seeing,
zero point and depth are not passed in: they are derived from what every
:class:`~models.fusion.frame.AlignedFrame` already holds (its PSF stamp, flux scale and
background noise), so they are the values the coadd itself uses. What a frame does not
say (transparency, sky brightness, site, time) is a :class:`FrameMeta`, with neutral
defaults when unknown.

The features (:data:`META_NAMES`) are relative to the stack where that is what matters
(a frame's depth and zero point against the stack's best, its time against the stack's
median), and scaled to order one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.fusion.frame import AlignedFrame
from models.fusion.stamps import FWHM_PER_SIGMA, noise_equivalent_area_pix

KINDS = ("cloud", "trail", "transient", "focus", "astrometry")
"""The inconsistencies the learned fusion flags (:mod:`models.fusion.dataset` injects them)."""

SITES = ("cerro-pachon", "sutherland", "siding-spring")
"""The sites of ``scenarios/global-3site.yaml``, one-hot; any other site is all zeros."""

META_NAMES = (
    "seeing_arcsec",  # PSF FWHM from the stamp's noise-equivalent area, (x - 1.5) / 0.5
    "transparency",  # (x - 0.8) / 0.2
    "sky_mag_arcsec2",  # (x - 20.5) / 1.0
    "depth_rel_mag",  # 2.5 log10((F/σ) / max over the stack), / 1 mag
    "weight_share",  # (F/σ)² / Σ (F/σ)²: the frame's share of the inverse-variance coadd
    "zero_point_rel_mag",  # 2.5 log10(F) against the stack's median, / 1 mag
    "time_rel_h",  # hours from the stack's median time, / 12 h (0 when unknown)
    *(f"site_{s}" for s in SITES),
)
N_META = len(META_NAMES)


@dataclass(frozen=True)
class FrameMeta:
    """What a frame's header says beyond its pixels (defaults: clear, dark, unknown)."""

    transparency: float = 1.0
    sky_mag_arcsec2: float = 20.8
    site: str = ""
    mjd: float = math.nan
    pixel_scale_arcsec: float = 0.389  # the network's 1 m telescopes (twin.world.telescope)


def psf_fwhm_pix(psf: np.ndarray) -> float:
    """FWHM of the Gaussian of the same noise-equivalent area as ``psf`` (pixels).

    A Gaussian's area is ``4π σ²``; the area is what sets depth, so it is the size that
    matters here, and it is read off the stamp the coadd uses.
    """
    return FWHM_PER_SIGMA * math.sqrt(noise_equivalent_area_pix(psf) / (4.0 * math.pi))


def meta_features(frames: Sequence[AlignedFrame], metas: Sequence[FrameMeta] | None) -> np.ndarray:
    """(N, :data:`N_META`) float32 features of a stack (see :data:`META_NAMES`)."""
    metas = list(metas) if metas is not None else [FrameMeta()] * len(frames)
    if len(metas) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(metas)} FrameMeta: pass one per frame")
    depth = np.array([f.flux_scale_e / f.sigma_e for f in frames])
    log_scale = 2.5 * np.log10([f.flux_scale_e for f in frames])
    mjd = np.array([m.mjd for m in metas], float)
    known = np.isfinite(mjd)
    time_h = np.where(known, (mjd - np.median(mjd[known])) * 24.0, 0.0) if known.any() else 0 * mjd
    rows = []
    for j, (f, m) in enumerate(zip(frames, metas, strict=True)):
        seeing = psf_fwhm_pix(np.asarray(f.psf, float) / float(np.sum(f.psf)))
        seeing *= m.pixel_scale_arcsec
        rows.append(
            [
                (seeing - 1.5) / 0.5,
                (m.transparency - 0.8) / 0.2,
                m.sky_mag_arcsec2 - 20.5,
                2.5 * math.log10(depth[j] / depth.max()),
                depth[j] ** 2 / float(np.sum(depth**2)),
                log_scale[j] - float(np.median(log_scale)),
                time_h[j] / 12.0,
                *(1.0 if m.site == s else 0.0 for s in SITES),
            ]
        )
    return np.asarray(rows, np.float32)
