"""The chain: a new frame and a reference → registered, resampled, ZOGY, candidates.

What the transient stage calls once per frame, each step timed (the issue's budget is
the exposure time; the benchmark reports the split):

1. ``registration``: background and sources of the new frame (SEP), the catalogue stars
   of the field around the header WCS, the refined WCS (:mod:`.registration`);
2. ``resample``: the reference onto the new frame's refined grid (:mod:`.resample`);
3. ``psf``: background, sources and PSF of the resampled reference; PSF of the new frame
   from its own sources (:mod:`.psf`);
4. ``zogy``: flux ratio from the zero points, what the two backgrounds still disagree
   on (:func:`residual_background`), background σ from the variance maps, D, S and
   Scorr with the source-noise and astrometric terms (:mod:`.zogy`);
5. ``detect``: connected regions of ``|Scorr| ≥ 5`` (:mod:`.detect`), each flagged
   ``in_halo`` when it lies in a bright star's halo (:func:`.psf.halo_mask`), where the
   cut PSF stamps leave residuals of the wings: a feature for real/bogus, not a cut.

The reference is taken as astrometrically solved (a survey template, or a coadd built on
solved frames); pass ``refine_reference=True`` to solve it against the catalogue too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sep

from models.transient.detect import THRESHOLD_SIGMA, find_candidates
from models.transient.image import CalibratedImage
from models.transient.psf import Psf, halo_mask, measure_psf
from models.transient.registration import (
    Registration,
    catalogue_stars,
    faint_mag_for,
    refine_wcs,
)
from models.transient.resample import resample
from models.transient.stars import background, detect_sources
from models.transient.zogy import ZogyResult, flux_ratio_from_zero_points, zogy

RESIDUAL_BOX_PX = 128
"""Mesh of the residual background: coarser than either image's (the sky is smooth)."""


@dataclass(frozen=True)
class Difference:
    """Everything the chain made, for the candidates' cut-outs and for checks."""

    zogy: ZogyResult
    candidates: pd.DataFrame
    registration: Registration
    new: CalibratedImage  # with the refined WCS
    ref_on_new: CalibratedImage
    psf_new: Psf
    psf_ref: Psf
    flux_ratio: float
    sigma_new_e: float
    sigma_ref_e: float
    halo: np.ndarray  # bright stars' halos in the new frame (psf.halo_mask)
    timings_s: dict[str, float] = field(default_factory=dict)


def register(
    image: CalibratedImage, band: str, *, sky_seed: int = 0, model: str = "similarity"
) -> tuple[Registration, pd.DataFrame, np.ndarray]:
    """Refine ``image``'s WCS: ``(registration, sources, background)`` (step 1)."""
    back_e = background(image)
    sources = detect_sources(image, back_e=back_e)
    clean = sources[sources["clean"]]
    catalogue = catalogue_stars(
        image.wcs, image.shape, band, faint_mag_for(image, clean), sky_seed=sky_seed
    )
    registration = refine_wcs(image.wcs, clean, catalogue, model=model, shape=image.shape)
    return registration, sources, back_e


def subtract(
    new: CalibratedImage,
    ref: CalibratedImage,
    band: str,
    *,
    sky_seed: int = 0,
    threshold_sigma: float = THRESHOLD_SIGMA,
    model: str = "similarity",
    refine_reference: bool = False,
) -> Difference:
    """Difference imaging of ``new`` against ``ref`` (steps 1-5 of the module docstring)."""
    timings: dict[str, float] = {}
    with _timed(timings, "registration"):
        reg, sources_new, back_new = register(new, band, sky_seed=sky_seed, model=model)
        if refine_reference:
            ref = ref.with_wcs(register(ref, band, sky_seed=sky_seed, model=model)[0].wcs)
    new = new.with_wcs(reg.wcs)
    with _timed(timings, "resample"):
        ref_on_new = resample(ref, reg.wcs, new.shape)
    with _timed(timings, "psf"):
        back_ref = background(ref_on_new)
        sources_ref = detect_sources(ref_on_new, back_e=back_ref)
        psf_ref = measure_psf(ref_on_new.data_e - back_ref, sources_ref, mask=ref_on_new.mask)
        psf_new = measure_psf(new.data_e - back_new, sources_new, mask=new.mask)
    with _timed(timings, "zogy"):
        mask = new.mask | ref_on_new.mask
        ratio = flux_ratio_from_zero_points(
            new.magzero_e, new.exptime_s, ref.magzero_e, ref.exptime_s
        )
        residual = residual_background(
            new.data_e - back_new, ref_on_new.data_e - back_ref, ratio, mask
        )
        sigma_new = math.sqrt(float(np.median(new.variance_e2[~mask])))
        sigma_ref = math.sqrt(float(np.median(ref_on_new.variance_e2[~mask])))
        result = zogy(
            new.data_e - back_new - residual,
            ref_on_new.data_e - back_ref,
            psf_new,
            psf_ref,
            sigma_new_e=sigma_new,
            sigma_ref_e=sigma_ref,
            flux_ratio=ratio,
            variance_new_e2=new.variance_e2,
            variance_ref_e2=ref_on_new.variance_e2,
            mask=mask,
            astrometric_sigma_pix=(reg.sigma_pix, reg.sigma_pix),
        )
    with _timed(timings, "detect"):
        candidates = find_candidates(result, threshold_sigma=threshold_sigma, wcs=reg.wcs)
        halo = halo_mask(_catalogue_on(new, reg), psf_new, sigma_new, new.shape)
        iy = np.clip(np.rint(candidates["y_pix"]).astype(int), 0, new.shape[0] - 1)
        ix = np.clip(np.rint(candidates["x_pix"]).astype(int), 0, new.shape[1] - 1)
        candidates["in_halo"] = halo[iy, ix]
    return Difference(
        result,
        candidates,
        reg,
        new,
        ref_on_new,
        psf_new,
        psf_ref,
        ratio,
        sigma_new,
        sigma_ref,
        halo,
        timings,
    )


def residual_background(
    new_e: np.ndarray,
    ref_e: np.ndarray,
    flux_ratio: float,
    mask: np.ndarray,
    box_px: int = RESIDUAL_BOX_PX,
) -> np.ndarray:
    """What the two backgrounds still disagree on, in the new image's electrons.

    Why: each image's SEP background is its sky *plus* the faint light its own detection
    left in (galaxy outskirts, halos), and a deep reference leaves in less; in a crowded
    field the difference is a few tenths of σ in Scorr over tens of pixels. Sky is smooth
    and the same in both, so the background of ``new − ref / flux_ratio`` on a coarse
    mesh is that disagreement (PSF differences leave rings around sources, which the
    mesh's clipping rejects); it is taken off the new image (ZOGY's background term).
    """
    data = np.ascontiguousarray(new_e - ref_e / flux_ratio, dtype=np.float64)
    back = sep.Background(data, mask=np.ascontiguousarray(mask), bw=box_px, bh=box_px)
    return np.asarray(back.back(), dtype=np.float64)


def _catalogue_on(image: CalibratedImage, reg: Registration) -> pd.DataFrame:
    """The catalogue stars at their pixels with their expected electrons: a saturated
    star's halo needs its true flux, which its masked core hides from SEP."""
    stars = reg.catalogue
    x, y = reg.wcs.all_world2pix(stars["ra_deg"].to_numpy(), stars["dec_deg"].to_numpy(), 0)
    flux = image.flux_e(stars["mag"].to_numpy(float))
    return pd.DataFrame({"x_pix": x, "y_pix": y, "flux_e": flux})


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
