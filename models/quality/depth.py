"""The measured depth of a frame: its 5σ limit from its own pixels, and the score it gives.

Survey schedulers rate an exposure by its effective time (Rubin's ``t_eff``), and a real
pipeline measures it, not the conditions it was promised: the zero point from the stars
it matched against the reference catalogue, the PSF from their sizes and the noise from
the background (Rubin's visit summary computes ``m5`` this way). The twin's ``quality``
column is exactly that ratio, ``10^(0.8 (m5 - m5_ref))`` clipped to 1
(:mod:`twin.ops.quality`), so a depth measured from pixels *is* a quality score, with no
model to fit. What it needs:

1. **Registration.** The header WCS is where the telescope believed it pointed, off by the
   pointing error (tens of pixels): detections are matched to the catalogue after the
   astrometric refinement of :func:`models.transient.registration.refine_wcs`, never
   through the header alone.
2. **Transparency.** Matched, clean, unsaturated stars measured in an aperture of
   :data:`APERTURE_FWHM` FWHM radii, against the flux their catalogue magnitude predicts
   at the *clear-sky* zero point (:func:`models.quality.features.zp_clear_mag`: the
   header's ``MAGZERO`` less the cloud, standing for the site's nightly photometric
   calibration, which follows the mirror's slow ageing). Their median ratio is the cloud
   transparency the frame had. The depth itself does not depend on that calibration: the
   zero-magnitude flux is the catalogue's stars as measured, so a wrong ``MAGZERO``
   cancels out of m5 (tested); it only sets how deep the catalogue query goes.
3. **PSF.** The median FWHM of those stars (half-light radius / 0.5685, a Kolmogorov
   profile's ratio); the noise-equivalent area from it as the exposure-time calculator
   computes it (:func:`twin.physics.etc.n_eff_pixels`).
4. **Noise.** The background's per-pixel variance (sky, dark and read noise together)
   from the clipped pixel distribution.

``m5 = 2.5 log10(F0 / S)``, ``F0`` the electrons of a 0-mag star at the measured zero
point and ``S`` the signal at SNR 5 over ``n_eff`` pixels of that variance — the
calculator's formula with measured inputs. The reference depth ``M5REF`` is the
telescope's calibration constant (zenith, dark sky, the site's median seeing, clear), a
header card. The truth cards (seeing, defocus, tracking, sky, pointing error, true centre)
are never read (tested).

The cloud flag is the measured transparency below the dataset's cloud threshold (0.8), a
logistic of width :data:`CLOUD_WIDTH`; the other flags are the CNN's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from models.quality.dataset import THRESHOLDS
from models.quality.features import KOLMOGOROV_HLR_PER_FWHM, zp_clear_mag
from twin.ops.quality import TEFF_DEX_PER_MAG
from twin.physics.etc import n_eff_pixels

APERTURE_FWHM = 2.5
"""Aperture radius in FWHM for the zero point (≥ 98 % of a Kolmogorov star's light)."""
PIXEL_HLR2 = 1.1774**2 / 12.0
"""Half-light radius² a square pixel adds to a small PSF (a Gaussian's σ² grows by 1/12 px²)."""
# Calibration of the measurement against the exposure-time calculator's conventions, fitted
# on 120 frames of the quality dataset's *train* runs at 1024² (3σ-clipped: 93 used) with
# `python -m models.quality.depth_eval --calibrate --n 120`: the ETC's FWHM (seeing ⊕
# defocus) leaves out diffraction and the pixel, so
# FWHM_etc² = FWHM_SLOPE · FWHM_measured² + FWHM_OFFSET_PIX2 · scale², and an aperture of
# APERTURE_FWHM radii holds APERTURE_FRACTION of a star's light.
FWHM_SLOPE = 1.003
FWHM_OFFSET_PIX2 = -1.03
APERTURE_FRACTION = 0.981
MIN_STARS = 3
SNR_TARGET = 5.0
CLOUD_TRANSPARENCY = THRESHOLDS["cloud_transparency"]
"""Below this transparency a frame is cloudy: the dataset's definition of the flag."""
CLOUD_WIDTH = 0.05
"""Logistic width of the cloud flag in transparency: about the measurement's scatter."""


def measure_depth(data_adu: np.ndarray, header: Mapping[str, Any]) -> dict[str, float]:
    """Measured transparency, FWHM (″), per-pixel noise (e), m5 and score of one frame,
    and the raw transparency and FWHM before the calibration constants
    (``transparency_raw``, ``fwhm_raw_arcsec``: what the constants are fitted on).

    Values are NaN where the frame does not allow them (fewer than :data:`MIN_STARS`
    matched stars: the score is then NaN too, and the caller decides).
    """
    import sep

    from models.transient.image import calibrate
    from models.transient.registration import catalogue_stars, faint_mag_for, refine_wcs
    from models.transient.stars import background, detect_sources

    gain = float(header["GAIN"])
    scale = float(header["PIXSCALE"])
    image = calibrate(np.asarray(data_adu), header)
    # Catalogue fluxes at the clear-sky calibration: the truth transparency in MAGZERO
    # must not reach the measurement.
    image = replace(image, magzero_e=zp_clear_mag(header) + 2.5 * math.log10(gain))
    back_e = background(image)
    resid = (image.data_e - back_e)[~image.mask]
    sample = resid[:: max(1, resid.size // 200_000)]
    med = float(np.median(sample))
    noise_e = 1.4826 * float(np.median(np.abs(sample - med)))
    out = {"transparency": math.nan, "fwhm_arcsec": math.nan, "noise_e": noise_e,
           "n_stars": 0.0, "m5": math.nan, "score": math.nan, "transparency_raw": math.nan,
           "fwhm_raw_arcsec": math.nan}  # fmt: skip
    sources = detect_sources(image, back_e=back_e)
    if len(sources) < MIN_STARS:
        return out
    stars = sources[sources["clean"] & (sources["b_pix"] > 0.6 * sources["a_pix"])]
    stars = stars[stars["peak_e"] < 0.5 * _saturation_e(header, gain)]
    if len(stars) < MIN_STARS:
        return out
    fwhm_pix = float(np.median(stars["flux_radius_pix"])) / KOLMOGOROV_HLR_PER_FWHM
    band = str(header.get("FILTER", "r"))
    try:
        catalogue = catalogue_stars(image.wcs, image.shape, band, faint_mag_for(image, stars))
        reg = refine_wcs(image.wcs, stars, catalogue, model="shift", shape=image.shape)
    except ValueError:
        return out
    matched = reg.matches
    if len(matched) < MIN_STARS:
        return out
    data = np.ascontiguousarray(image.data_e - back_e)
    mask = np.ascontiguousarray(image.mask)
    x, y = matched["x_pix"].to_numpy(float), matched["y_pix"].to_numpy(float)
    for _ in range(2):  # the aperture follows the PSF it measures
        radius = max(APERTURE_FWHM * fwhm_pix, 2.0)
        flux, _, flag = sep.sum_circle(data, x, y, radius, mask=mask, subpix=5)
        good = (flag == 0) & (flux > 0)
        if np.count_nonzero(good) < MIN_STARS:
            return out
        hlr, _ = sep.flux_radius(data, x[good], y[good], np.full(good.sum(), radius), 0.5,
                                 normflux=flux[good], subpix=5)  # fmt: skip
        hlr2 = np.asarray(hlr) ** 2 - PIXEL_HLR2
        fwhm_pix = math.sqrt(max(float(np.median(hlr2)), 0.01)) / KOLMOGOROV_HLR_PER_FWHM
    predicted = image.flux_e(0.0) * 10.0 ** (-0.4 * matched["mag"].to_numpy(float))
    transparency_raw = float(np.median(flux[good] / predicted[good]))
    transparency = transparency_raw / APERTURE_FRACTION
    fwhm_raw = fwhm_pix * scale
    fwhm2 = FWHM_SLOPE * fwhm_raw**2 + FWHM_OFFSET_PIX2 * scale**2
    fwhm_arcsec = math.sqrt(max(fwhm2, (0.5 * scale) ** 2))
    m5 = depth_mag(image.flux_e(0.0) * max(transparency, 1e-6), noise_e, fwhm_arcsec, scale)
    out.update(transparency=transparency, fwhm_arcsec=fwhm_arcsec, n_stars=float(good.sum()),
               m5=m5, score=score_from_depth(m5, header), transparency_raw=transparency_raw,
               fwhm_raw_arcsec=fwhm_raw)  # fmt: skip
    return out


def depth_mag(zero_mag_e: float, noise_e: float, fwhm_arcsec: float, scale: float) -> float:
    """5σ point-source depth: the exposure-time calculator's formula, measured inputs."""
    noise2 = float(n_eff_pixels(fwhm_arcsec, scale)) * noise_e**2
    nu2 = SNR_TARGET**2
    signal = 0.5 * (nu2 + math.sqrt(nu2**2 + 4.0 * nu2 * noise2))
    return 2.5 * math.log10(max(zero_mag_e, 1e-30) / signal)


def score_from_depth(m5: float, header: Mapping[str, Any]) -> float:
    """100 × the effective-time ratio against the header's reference depth ``M5REF``."""
    m5_ref = float(header.get("M5REF", math.nan) or math.nan)
    if not (math.isfinite(m5) and math.isfinite(m5_ref)):
        return math.nan
    return 100.0 * min(10.0 ** (TEFF_DEX_PER_MAG * (m5 - m5_ref)), 1.0)


def cloud_probability(transparency: float) -> float:
    """Probability of the ``cloud`` flag from a measured transparency (NaN: unknown)."""
    if not math.isfinite(transparency):
        return math.nan
    z = (CLOUD_TRANSPARENCY - transparency) / CLOUD_WIDTH
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def _saturation_e(header: Mapping[str, Any], gain: float) -> float:
    return (float(header.get("SATURATE", 65535.0)) - float(header.get("BIASLEV", 0.0))) * gain


class DepthQualityStage:
    """Stage ``quality-depth``: the score, seeing and cloud flag from the measured depth,
    the other flags from the quality CNN (:class:`~models.quality.stage.QualityStage`).

    The CNN's score is a regression on a 256² crop (MAE 13 points on held-out seeds); the
    depth is measured on the whole frame against the catalogue and the telescope's
    calibration, the way Rubin rates a visit. Where the frame gives fewer than
    :data:`MIN_STARS` matched stars (thick cloud, a frame of a few arcminutes in an empty
    field) the depth is unknown and the CNN's score, seeing and cloud flag stand.
    """

    name = "quality-depth"

    def __init__(self, threads: int | None = 1) -> None:
        from models.quality.stage import QualityStage

        self.cnn = QualityStage(threads=threads)
        self.version = f"{self.cnn.version}+depth-2"

    def process(self, frame):
        from twin.pipeline.stage import StageResult

        cnn = self.cnn.process(frame)
        depth = measure_depth(frame.data_adu, frame.header)
        measured = math.isfinite(depth["score"])
        flags = dict(cnn.flags)
        if measured:
            flags["cloud"] = cloud_probability(depth["transparency"])
        return StageResult(
            stage=self.name, model_version=self.version,
            score=depth["score"] if measured else cnn.score,
            seeing_arcsec=depth["fwhm_arcsec"] if measured else cnn.seeing_arcsec,
            flags=flags,
        )  # fmt: skip
