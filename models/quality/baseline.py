"""The classical baseline: the seven flags, seeing and a score measured with SEP.

What a site pipeline without a network would do, one measurement per flag (each gives a
continuous *statistic*, higher = worse; the flag probability is a logistic of it around a
threshold fixed from the physics, never fitted on the test split):

| flag        | statistic                                                         | threshold |
|-------------|-------------------------------------------------------------------|-----------|
| bad_seeing  | median FWHM of compact, unsaturated sources (r_half / 0.5685), ″  | 1.6″      |
| focus       | median r25 / r75 of those sources (a donut has a flat core)       | 0.45      |
| tracking    | median elongation a / b of bright sources (a < 12 px)             | 1.5       |
| trail       | longest elongated detection: a (pixels) of sources with a/b > 4   | 12 px     |
| sensor      | lone-pixel spikes (> 8σ, 8 neighbours < 3σ) + 10 × deviant columns| 10        |
| cloud       | −log10(detected / catalogue sources expected at the clear-sky 5σ) | 0.3       |
| bright_sky  | dark zenith sky − measured sky (mag/arcsec²)                      | 1.0 mag   |

The catalogue expectation uses the twin's reference catalogue
(:func:`twin.imaging.catalog.field_sources`), the site's stand-in for Gaia, at the
header's pointing; the dark sky is :func:`twin.physics.sky.sky_mag_arcsec2` at zenith,
moon down, for the header's site height. The score is the background-limited effective
time ratio ``T² (1″ / FWHM)² (B_dark / B)`` with the transparency estimated from the
source counts (``N(<m) ∝ 10^(0.3 m)`` gives ``T ≈ ratio^(1/0.75)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from models.quality.features import KOLMOGOROV_HLR_PER_FWHM, robust_sky, zp_clear_mag
from twin.pipeline.stage import FLAG_NAMES, Frame, StageResult

BASELINE_VERSION = "sep-3"
THRESHOLDS = {"bad_seeing": 1.6, "focus": 0.45, "tracking": 1.5, "trail": 12.0, "sensor": 10.0,
              "cloud": 0.3, "bright_sky": 1.0}  # fmt: skip
WIDTHS = {"bad_seeing": 0.15, "focus": 0.03, "tracking": 0.15, "trail": 3.0, "sensor": 3.0,
          "cloud": 0.1, "bright_sky": 0.25}  # fmt: skip


@lru_cache(maxsize=4096)
def _catalogue_count(ra: float, dec: float, band: str, mag: float, half_w: float, half_h: float
                     ) -> int:  # fmt: skip
    from twin.imaging.catalog import field_sources

    radius = math.hypot(half_w, half_h)
    stars, galaxies = field_sources(ra, dec, radius, band, mag, box_deg=(half_w, half_h))
    return len(stars) + len(galaxies)


def _dark_sky(band: str, height_m: float) -> float:
    from twin.physics.sky import sky_mag_arcsec2

    return float(sky_mag_arcsec2(band, 90.0, -30.0, 90.0, 0.0, -30.0, 0.0, height_m))


def _spikes(data: np.ndarray, med: float, sigma: float) -> np.ndarray:
    """Mask of lone-pixel spikes: above 8σ while all 8 neighbours stay below 3σ."""
    z = (data - med) / sigma
    core = z[1:-1, 1:-1]
    neigh = np.max([z[1 + dy : z.shape[0] - 1 + dy, 1 + dx : z.shape[1] - 1 + dx]
                    for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx], axis=0)  # fmt: skip
    mask = np.zeros(data.shape, bool)
    mask[1:-1, 1:-1] = (core > 8.0) & (neigh < 3.0)
    return mask


def _bad_columns(data: np.ndarray, med: float, sigma: float) -> np.ndarray:
    """Columns whose median departs from the frame's by more than 5σ (stuck high or low)."""
    cols = np.median(data, axis=0)
    return np.abs(cols - med) > 5.0 * sigma


def measure(data_adu: np.ndarray, header: Mapping[str, Any]) -> dict[str, float]:
    """The statistics of the module table, the seeing (″) and the score, for one frame."""
    import sep

    data = np.ascontiguousarray(data_adu, dtype=np.float32)
    med, sigma = robust_sky(data)
    scale = float(header["PIXSCALE"])
    exptime = max(float(header["EXPTIME"]), 1e-3)
    gain = float(header["GAIN"])
    spikes = _spikes(data, med, sigma)
    columns = _bad_columns(data, med, sigma)
    mask = spikes | columns[None, :]
    bkg = sep.Background(data, mask=mask, bw=64, bh=64)
    sub = data - bkg.back()
    rms = float(bkg.globalrms)
    objects = sep.extract(sub, 5.0, err=rms, mask=mask, minarea=5, deblend_cont=0.005)
    saturate = float(header.get("SATURATE", 65535)) - float(header.get("BIASLEV", 0.0))
    a, b = objects["a"], np.maximum(objects["b"], 1e-3)
    elong = a / b
    ny, nx = data.shape
    inside = (
        (objects["x"] > 8) & (objects["x"] < nx - 9) & (objects["y"] > 8) & (objects["y"] < ny - 9)
    )
    good = inside & (objects["peak"] < 0.5 * saturate) & (objects["flag"] == 0) & (elong < 4.0)
    good &= (objects["peak"] > 10.0 * rms) & (objects["npix"] >= 9)
    fwhm = r25_75 = math.nan
    if np.count_nonzero(good) >= 1:
        g = objects[good]
        r, _ = sep.flux_radius(sub, g["x"], g["y"], 6.0 * g["a"], [0.25, 0.5, 0.75],
                               subpix=5)  # fmt: skip
        ok = np.isfinite(r).all(axis=1) & (r[:, 2] > 0)
        if ok.any():
            fwhm = float(np.median(r[ok, 1])) / KOLMOGOROV_HLR_PER_FWHM * scale
            r25_75 = float(np.median(r[ok, 0] / r[ok, 2]))
    # Tracking trails stars into short lines: no elongation cut, but not the long streaks.
    bright = inside & (objects["peak"] > 8.0 * rms) & (objects["npix"] >= 9) & (a < 12.0)
    tracking = float(np.median(elong[bright])) if bright.any() else 1.0
    streaks = a[(elong > 4.0)] if len(a) else np.zeros(0)
    trail = float(streaks.max()) if len(streaks) else 0.0
    sensor = int(np.count_nonzero(spikes)) + 10 * int(np.count_nonzero(columns))
    # Cloud: detected sources vs the catalogue at the clear-sky 5σ point-source depth.
    zp = zp_clear_mag(header)  # AB mag giving 1 ADU/s with the atmosphere, clear sky
    fwhm_pix = (fwhm if math.isfinite(fwhm) else 1.2) / scale
    n_eff = 2.266 * fwhm_pix**2 + math.pi / 3
    m_lim = zp + 2.5 * math.log10(exptime / (5.0 * rms * math.sqrt(n_eff)))
    half_w, half_h = nx * scale / 7200.0, ny * scale / 7200.0
    band = str(header.get("FILTER", "r"))
    expected = _catalogue_count(round(float(header["RA"]), 3), round(float(header["DEC"]), 3),
                                band, round(m_lim, 1), half_w, half_h)  # fmt: skip
    detected = int(np.count_nonzero(inside))
    ratio = (detected + 1.0) / (expected + 1.0)
    cloud = -math.log10(ratio)
    # Bright sky: the sky level as surface brightness (no k X: measured at the ground).
    airmass = float(header.get("AIRMASS", 1.0) or 1.0)
    extinction = float(header.get("EXTINCT", 0.0) or 0.0) * airmass
    sky_adu = max(float(np.median(bkg.back())) - float(header.get("BIASLEV", 0.0)), 1e-2)
    sky_mag = zp + extinction - 2.5 * math.log10(sky_adu / (exptime * scale**2))
    dark = _dark_sky(band, float(header.get("SITEELEV", 2000.0) or 2000.0))
    excess = dark - sky_mag
    transparency = min(1.0, ratio ** (1.0 / 0.75))
    seeing = fwhm if math.isfinite(fwhm) else 2.0  # no usable star: a poor-seeing guess
    teff = transparency**2 * (1.0 / max(seeing, 0.3)) ** 2 * 10.0 ** (-0.4 * max(excess, 0.0))
    _ = gain
    return {
        "bad_seeing": seeing, "focus": r25_75 if math.isfinite(r25_75) else 0.5,
        "tracking": tracking, "trail": trail, "sensor": float(sensor), "cloud": cloud,
        "bright_sky": excess, "seeing": seeing, "score": 100.0 * min(max(teff, 0.0), 1.0),
    }  # fmt: skip


def probabilities(stats: Mapping[str, float]) -> dict[str, float]:
    """Flag probabilities: logistic of each statistic around its physical threshold."""
    out = {}
    for name in FLAG_NAMES:
        z = (stats[name] - THRESHOLDS[name]) / WIDTHS[name]
        out[name] = float(1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))))
    return out


class ClassicalQualityStage:
    """The SEP baseline as a :class:`~twin.pipeline.stage.PipelineStage` (``quality-sep``)."""

    name = "quality-sep"
    version = BASELINE_VERSION

    def process(self, frame: Frame) -> StageResult:
        stats = measure(frame.data_adu, frame.header)
        return StageResult(stage=self.name, model_version=self.version, score=stats["score"],
                           seeing_arcsec=stats["seeing"], flags=probabilities(stats))  # fmt: skip
