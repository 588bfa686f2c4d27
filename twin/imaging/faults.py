"""Rare faults: what goes wrong with a camera seldom enough that no model is trained on it.

Why a separate step: the anomaly model (``models/anomaly``) learns what *normal* frames
look like and must be judged on faults it has never seen, so the faults are injected
here, apart from the detector's everyday defects, each with its own rate in the
scenario (``imaging.faults``) and its truth in the frame's header (``FAULTS``) and truth
table (rows of ``type`` ``fault``).

Which faults a frame has is :attr:`FrameSpec.faults <twin.imaging.spec.FrameSpec>` (a
tuple of :data:`FAULT_KINDS`), drawn per frame by :func:`draw_faults` from the scenario's
rates. Everything random here comes from child streams of the frame's seed
(``SeedSequence([seed, salt, kind])``), never from the detector's ``rng``: a frame
without faults is bit for bit the frame it was before this module existed, and a
faulted frame has the same photon and read noise as its clean twin.

The steps, where the charge meets them:

1. **Glint** (light, :func:`add_glint`): a satellite's flat panel reflecting the Sun for
   a moment (Starlink and Iridium flares reach magnitude -1 to +4 for 0.1-2 s; Tyson et
   al. 2020, AJ 160, 226; GEO satellites glint for seconds while crossing a sidereally
   tracked field at ~15 arcsec/s). A short streak of :data:`GLINT_LENGTH_PIX` along a
   random direction with a Gaussian brightness in time (so along the track), the PSF's
   width across it, and the charge of a star of :data:`GLINT_EQUIV_MAG` exposed for the
   whole frame: bright enough to saturate and bleed.
2. **Dew halo** (light, :func:`add_dew`): condensation on the dewar window or corrector
   scatters a fraction :data:`DEW_SCATTER_FRACTION` of every source's light into a broad
   halo (droplets of tens of µm scatter into a few-arcsec to arcmin cone; the halo seen on
   fogged optics, e.g. the "dew" frames of amateur and small-survey logs), modelled as a
   Gaussian of σ :data:`DEW_HALO_SIGMA_PIX`; plus a diffuse glow of out-of-field light
   (moon, dome lights) scattered into the field: a broad bump of
   :data:`DEW_GLOW_FRACTION` of the sky.
3. **Vignetting shift** (light, :func:`vignetting_shift`): something in the beam off the
   axis — the dome slit not aligned with the telescope, a filter not fully seated, a
   mirror-cover petal half open — cutting light from one side: a quadratic fall-off
   about a point off the frame's centre (:data:`VIGNETTING_AXIS_OFFSET_FRAC`), losing
   :data:`VIGNETTING_DEPTH` at the farthest corner. Defined on the frame's own pixels
   (a window read from the detector stands for the illuminated area).
4. **Readout banding** (electronics, :func:`banding_adu`): pickup on the video chain
   (ground loops, switching supplies) adds offsets correlated along the readout:
   row-to-row (or column-to-column) white offsets plus a sinusoid of period
   :data:`BANDING_PERIOD_PIX` rows (columns), each of rms
   :data:`BANDING_RMS_READ_NOISE` × the read noise (DECam's and Pan-STARRS' "pattern
   noise" was of this order before it was fixed: Bernstein et al. 2017, PASP 129,
   114502; Magnier et al. 2020, ApJS 251, 5). Added in ADU before the ADC rounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from twin.imaging.spec import FrameSpec

FAULT_KINDS = ("dew", "banding", "vignetting", "glint")
"""The rare faults, in the order their rates are drawn."""

GLINT_LENGTH_PIX = (8.0, 150.0)
"""Streak length (4 σ of the along-track Gaussian), log-uniform."""
GLINT_EQUIV_MAG = (8.0, 12.0)
"""Total charge: that of a star of this AB magnitude over the whole exposure."""
DEW_SCATTER_FRACTION = (0.1, 0.35)
"""Fraction of every source's light moved into the halo."""
DEW_HALO_SIGMA_PIX = (8.0, 30.0)
"""Gaussian σ of the halo in pixels (3-12 arcsec at 0.39 arcsec/pixel)."""
DEW_GLOW_FRACTION = (0.03, 0.12)
"""Peak of the diffuse glow, as a fraction of the sky level."""
DEW_GLOW_WIDTH_FRAC = (0.3, 0.8)
"""Gaussian σ of the glow, as a fraction of the frame's size."""
VIGNETTING_DEPTH = (0.06, 0.3)
"""Light lost at the corner farthest from the displaced axis."""
VIGNETTING_AXIS_OFFSET_FRAC = (0.3, 0.8)
"""Distance of the displaced axis from the frame's centre, per frame size."""
BANDING_RMS_READ_NOISE = (0.7, 2.0)
"""Rms of the row (column) offsets and amplitude of the sinusoid, per read noise."""
BANDING_PERIOD_PIX = (6.0, 80.0)
"""Period of the pickup sinusoid in rows (columns), log-uniform."""

_SALT_FAULTS = 0xFA17
_SALT_DRAW = 0


def _rng(seed: int, kind: str | None = None) -> np.random.Generator:
    """The child stream of one fault (or of the draw of which faults) for ``seed``."""
    index = _SALT_DRAW if kind is None else 1 + FAULT_KINDS.index(kind)
    return np.random.default_rng(np.random.SeedSequence([int(seed), _SALT_FAULTS, index]))


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def draw_faults(rates: Mapping[str, float] | None, seed: int) -> tuple[str, ...]:
    """The faults of the frame with ``seed``: each kind independently with its rate.

    ``rates``: ``{"dew_rate": p, ...}`` (the scenario's ``imaging.faults``; missing or
    None: no faults). One uniform per kind is always drawn, so one rate's value never
    changes whether another fault occurs.
    """
    if not rates:
        return ()
    u = _rng(seed).uniform(size=len(FAULT_KINDS))
    return tuple(k for k, x in zip(FAULT_KINDS, u, strict=True) if x < rates.get(f"{k}_rate", 0.0))


# --- light: before the detector -------------------------------------------------------------


def apply_light_faults(image_e: np.ndarray, spec: FrameSpec, sky_e: float) -> None:
    """Add the optical faults of ``spec.faults`` to the expected electrons, in place."""
    if "glint" in spec.faults:
        add_glint(image_e, spec)
    if "dew" in spec.faults:
        add_dew(image_e, spec, sky_e)
    if "vignetting" in spec.faults:
        image_e *= vignetting_shift(spec)


def glint_params(spec: FrameSpec) -> dict[str, float]:
    """Centre (0-based pixels), angle, length and charge of the frame's glint."""
    rng = _rng(spec.seed, "glint")
    from twin.imaging.scene import electrons

    x, y = rng.uniform(0.1, 0.9, size=2) * (spec.nx, spec.ny)
    angle_deg = float(rng.uniform(0.0, 180.0))
    length = _log_uniform(rng, GLINT_LENGTH_PIX)
    mag = float(rng.uniform(*GLINT_EQUIV_MAG))
    flux_e = float(electrons(spec, mag))
    return {"x_pix": float(x), "y_pix": float(y), "angle_deg": angle_deg,
            "length_pix": length, "equiv_mag": mag, "flux_e": flux_e}  # fmt: skip


def add_glint(image_e: np.ndarray, spec: FrameSpec) -> None:
    """A Gaussian-in-time flash along a line, the PSF's width across it, in its box."""
    p = glint_params(spec)
    sigma_across = max(_psf_fwhm_px(spec) / 2.355, 0.5)
    sigma_along = p["length_pix"] / 4.0
    half = 3.0 * sigma_along + 4.0 * sigma_across
    ny, nx = image_e.shape
    x_lo, x_hi = max(int(p["x_pix"] - half), 0), min(int(p["x_pix"] + half) + 2, nx)
    y_lo, y_hi = max(int(p["y_pix"] - half), 0), min(int(p["y_pix"] + half) + 2, ny)
    if x_lo >= x_hi or y_lo >= y_hi:
        return
    yy, xx = np.mgrid[y_lo:y_hi, x_lo:x_hi]
    t = math.radians(p["angle_deg"])
    dx, dy = xx - p["x_pix"], yy - p["y_pix"]
    along = dx * math.cos(t) + dy * math.sin(t)
    across = -dx * math.sin(t) + dy * math.cos(t)
    norm = 2.0 * math.pi * sigma_along * sigma_across
    exponent = (along / sigma_along) ** 2 + (across / sigma_across) ** 2
    image_e[y_lo:y_hi, x_lo:x_hi] += p["flux_e"] / norm * np.exp(-0.5 * exponent)


def dew_params(spec: FrameSpec) -> dict[str, float]:
    rng = _rng(spec.seed, "dew")
    size = max(spec.nx, spec.ny)
    return {
        "scatter_fraction": float(rng.uniform(*DEW_SCATTER_FRACTION)),
        "halo_sigma_pix": float(rng.uniform(*DEW_HALO_SIGMA_PIX)),
        "glow_fraction": float(rng.uniform(*DEW_GLOW_FRACTION)),
        "glow_sigma_pix": float(rng.uniform(*DEW_GLOW_WIDTH_FRAC) * size),
        "x_pix": float(rng.uniform(0.0, 1.0) * spec.nx),
        "y_pix": float(rng.uniform(0.0, 1.0) * spec.ny),
    }


def add_dew(image_e: np.ndarray, spec: FrameSpec, sky_e: float) -> None:
    """Move a fraction of the sources' light into a broad Gaussian halo; add a glow."""
    p = dew_params(spec)
    sources = image_e - sky_e
    halo = _gaussian_blur(sources, p["halo_sigma_pix"])
    image_e += p["scatter_fraction"] * (halo - sources)
    ny, nx = image_e.shape
    yy, xx = np.ogrid[0:ny, 0:nx]
    r2 = (xx - p["x_pix"]) ** 2 + (yy - p["y_pix"]) ** 2
    image_e += p["glow_fraction"] * sky_e * np.exp(-0.5 * r2 / p["glow_sigma_pix"] ** 2)


def _gaussian_blur(image: np.ndarray, sigma_pix: float) -> np.ndarray:
    """Gaussian convolution with zero padding (light leaving the frame is lost), by FFT."""
    from scipy import fft

    pad = math.ceil(4.0 * sigma_pix)
    ny, nx = image.shape
    shape = (fft.next_fast_len(ny + 2 * pad), fft.next_fast_len(nx + 2 * pad))
    ky = fft.fftfreq(shape[0])[:, None]
    kx = fft.rfftfreq(shape[1])[None, :]
    transfer = np.exp(-2.0 * (math.pi * sigma_pix) ** 2 * (kx**2 + ky**2))
    padded = np.zeros(shape)
    padded[pad : pad + ny, pad : pad + nx] = image
    out = fft.irfft2(fft.rfft2(padded) * transfer, s=shape)
    return out[pad : pad + ny, pad : pad + nx]


def vignetting_params(spec: FrameSpec) -> dict[str, float]:
    rng = _rng(spec.seed, "vignetting")
    offset = float(rng.uniform(*VIGNETTING_AXIS_OFFSET_FRAC)) * max(spec.nx, spec.ny)
    phi = float(rng.uniform(0.0, 2.0 * math.pi))
    return {
        "depth": float(rng.uniform(*VIGNETTING_DEPTH)),
        "x_pix": (spec.nx - 1) / 2.0 + offset * math.cos(phi),
        "y_pix": (spec.ny - 1) / 2.0 + offset * math.sin(phi),
    }


def vignetting_shift(spec: FrameSpec) -> np.ndarray:
    """The response (≤ 1): ``1 - depth (r / r_far)²`` about the displaced axis."""
    p = vignetting_params(spec)
    yy, xx = np.ogrid[0 : spec.ny, 0 : spec.nx]
    r2 = (xx - p["x_pix"]) ** 2 + (yy - p["y_pix"]) ** 2
    corners = [(0, 0), (0, spec.nx - 1), (spec.ny - 1, 0), (spec.ny - 1, spec.nx - 1)]
    r_far2 = max((c - p["x_pix"]) ** 2 + (r - p["y_pix"]) ** 2 for r, c in corners)
    return 1.0 - p["depth"] * r2 / r_far2


def _psf_fwhm_px(spec: FrameSpec) -> float:
    return spec.image_fwhm_arcsec / spec.pixel_scale_arcsec


# --- electronics: at readout ----------------------------------------------------------------


def banding_params(spec: FrameSpec) -> dict[str, float]:
    rng = _rng(spec.seed, "banding")
    read_noise_adu = spec.telescope.detector.read_noise_e / spec.telescope.detector.gain_e_per_adu
    return {
        "rms_adu": float(rng.uniform(*BANDING_RMS_READ_NOISE)) * read_noise_adu,
        "period_pix": _log_uniform(rng, BANDING_PERIOD_PIX),
        "phase_rad": float(rng.uniform(0.0, 2.0 * math.pi)),
        "along_rows": float(rng.uniform() < 0.7),  # row banding is the common case
        "noise_seed": int(rng.integers(0, 2**62)),
    }


def banding_adu(spec: FrameSpec) -> np.ndarray:
    """The pattern to add in ADU, shape ``(ny, nx)``: offsets per row (or column)."""
    p = banding_params(spec)
    rows = bool(p["along_rows"])
    n = spec.ny if rows else spec.nx
    index = np.arange(n)
    offsets = np.random.default_rng(p["noise_seed"]).normal(0.0, p["rms_adu"], n)
    offsets += math.sqrt(2.0) * p["rms_adu"] * np.sin(2 * math.pi * index / p["period_pix"]
                                                      + p["phase_rad"])  # fmt: skip
    return np.broadcast_to(offsets[:, None] if rows else offsets[None, :], (spec.ny, spec.nx))


def readout_faults_adu(spec: FrameSpec) -> np.ndarray | float:
    """What the electronic faults of ``spec.faults`` add to the frame in ADU (0.0: none)."""
    return banding_adu(spec) if "banding" in spec.faults else 0.0


# --- truth -----------------------------------------------------------------------------------

_PARAMS = {"dew": dew_params, "banding": banding_params, "vignetting": vignetting_params,
           "glint": glint_params}  # fmt: skip


def fault_truth(spec: FrameSpec) -> pd.DataFrame:
    """One row per fault of the frame: ``source_id`` ``fault-KIND``, ``type`` ``fault``,
    ``fault_kind``, ``x_pix``/``y_pix`` (the glint's centre, the glow's centre, the
    displaced axis; NaN for banding) and ``fault_params`` (the drawn parameters, JSON)."""
    import json

    rows = []
    for kind in spec.faults:
        params = _PARAMS[kind](spec)
        rows.append({"source_id": f"fault-{kind}", "type": "fault", "fault_kind": kind,
                     "x_pix": float(params.get("x_pix", np.nan)),
                     "y_pix": float(params.get("y_pix", np.nan)),
                     "fault_params": json.dumps(params)})  # fmt: skip
    return pd.DataFrame(rows)
