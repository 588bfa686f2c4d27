"""The same pair through ``properimage``'s ZOGY, and how to compare the two Scorr maps.

Why a second implementation: ZOGY's normalisations are easy to get subtly wrong (FFT
conventions, which PSF goes with which image, the source-noise term), and ``properimage``
(Sánchez et al. 2019, Astron. Comput. 28, 100284) is an independent, published one.

How they differ, so that "agree" has a meaning: properimage fits a Gaussian PSF to each
image (``SingleImageGaussPSF``), estimates the flux ratio from the stars it matches
between the two images, uses its own background, and its ``S_corr`` is not scaled to
unit variance (its FFTs are ``norm="ortho"`` and its source-noise term is
``(image + 1) ⊗ k²``), so on empty sky its standard deviation is a constant of the pair,
not 1. :func:`compare_maps` therefore compares D with D and Scorr with Scorr on *empty sky*
(pixels far from every source, where both maps are linear filters of the same noise):
their Pearson correlation, and each map's robust σ there; a transient's peak is compared
after dividing each map by its own empty-sky σ (what a 5σ threshold would use). Near
stars the two differ by design (Gaussian vs measured PSF, fitted vs zero-point flux
ratio).

``properimage`` is a test/benchmark dependency only (it needs pyFFTW, astroalign and
tinynpydb); it is imported here lazily.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from models.transient.image import CalibratedImage


def properimage_subtract(
    new: CalibratedImage, ref: CalibratedImage, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """properimage's ``(D, S_corr)`` of ``new`` − ``ref`` (same grid; ``mask`` True = bad).

    ``subtract(..., beta=True, shift=False, fitted_psf=True)``: its own fit of the flux
    ratio (its zero points from star matching alone leave every star as a residual), no
    residual shift (our chain fits none), Gaussian PSFs (its default).
    """
    try:
        from properimage import operations
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "properimage is not installed: `make venv` installs it; "
            "the Makefile's install recipe shows the pip command"
        ) from error
    logging.getLogger("properimage").setLevel(logging.ERROR)
    new_ma = np.ma.MaskedArray(np.asarray(new.data_e, dtype=np.float64), mask=mask)
    ref_ma = np.ma.MaskedArray(np.asarray(ref.data_e, dtype=np.float64), mask=mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d, _, scorr, _ = operations.subtract(
            ref=ref_ma, new=new_ma, align=False, beta=True, shift=False, fitted_psf=True
        )
    return np.asarray(d.real, dtype=np.float64), np.asarray(scorr.real, dtype=np.float64)


def robust_std(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation: σ of the Gaussian core, sources ignored."""
    values = np.asarray(values, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def empty_sky(truth, shape: tuple[int, int], radius_px: float = 15.0) -> np.ndarray:
    """Pixels farther than ``radius_px`` from every source and artefact of a truth table
    (for checks only: the chain itself never sees the truth)."""
    from scipy import ndimage

    ny, nx = shape
    points = truth[truth["x_pix"].notna() & truth["y_pix"].notna()]
    x, y = np.rint(points["x_pix"].to_numpy(float)), np.rint(points["y_pix"].to_numpy(float))
    inside = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    seeds = np.zeros(shape, dtype=bool)
    seeds[y[inside].astype(int), x[inside].astype(int)] = True
    empty = ndimage.distance_transform_edt(~seeds) > radius_px
    columns = truth.loc[truth["type"] == "bad_column", "x_pix"].to_numpy(float)
    empty[:, columns[np.isfinite(columns)].astype(int)] = False
    return empty


def compare_maps(ours: np.ndarray, theirs: np.ndarray, empty: np.ndarray) -> dict[str, float]:
    """Agreement of two maps of the same pair (D with D, Scorr with Scorr) on ``empty``
    sky pixels, where both are functions of the same noise only.

    ``pearson_r``: correlation of the maps there (1: the same linear filter of the noise);
    ``ours_std``, ``theirs_std``: their robust σ there; ``theirs_scale`` = 1 / theirs_std,
    what makes theirs unit-variance (properimage's S_corr is not).
    """
    good = empty & np.isfinite(theirs) & np.isfinite(ours)
    theirs_std = robust_std(theirs[good])
    return {
        "pearson_r": float(np.corrcoef(ours[good], theirs[good])[0, 1]),
        "ours_std": robust_std(ours[good]),
        "theirs_std": theirs_std,
        "theirs_scale": 1.0 / theirs_std if theirs_std > 0 else float("nan"),
    }
