"""Calibration frames (bias, dark, twilight flat) and the reduction they allow.

The frames come from the same detector model as the science frames
(:func:`~twin.imaging.detector.apply_detector`), so the fixed pattern they record (bias
structure, hot pixels, flat field) is the one in the science frames and a standard
reduction removes it:

    reduced = (raw - master bias - master dark rate × EXPTIME) / master flat

- Bias: zero-second reads: bias image + read noise.
- Dark: closed-shutter exposures of ``dark_exptime_s`` (default 300 s): dark current,
  hot pixels and cosmic rays; the combine rejects the cosmic rays.
- Twilight flat: a uniform sky of 20,000–30,000 e- per pixel (a level drawn per frame,
  as the twilight sky fades between exposures; well inside the linear range of a
  150,000 e- well) through the flat field, in 5 s. The twilight sky's own gradient (a few
  % per degree) and the band dependence of the flat are not modelled.

Combining: the median for fewer than 5 frames, else the mean after rejecting each
pixel's lowest and highest value (robust to one cosmic ray per pixel, and nearly as
precise as the mean).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from twin.imaging.detector import apply_detector, telescope_key
from twin.imaging.fits import instrument_header, write_image
from twin.imaging.spec import FrameSpec
from twin.world.telescope import Telescope

TWILIGHT_FLAT_LEVEL_E = (20000.0, 30000.0)
"""Range of the twilight sky level per pixel in a flat (drawn uniform per frame)."""
FLAT_EXPTIME_S = 5.0
DARK_EXPTIME_S = 300.0
_READ_GAP_S = 30.0  # spacing of successive calibration frames in the headers


def calibration_spec(telescope: Telescope, *, mjd: float = math.nan, site: str = "",
                     site_height_m: float = 0.0, nx: int | None = None, ny: int | None = None,
                     n_hot_pixels: int = 0, n_bad_columns: int = 0,
                     hot_pixels: np.ndarray | None = None,
                     bad_columns: np.ndarray | None = None) -> FrameSpec:  # fmt: skip
    """A spec for calibration frames: the telescope and defects, no sky (fields NaN)."""
    return FrameSpec(
        obs_id=-1, site=site, site_height_m=site_height_m, telescope=telescope, band="",
        exptime_s=0.0, mjd_start=mjd, ra_deg=math.nan, dec_deg=math.nan,
        pointing_error_ra_arcsec=0.0, pointing_error_dec_arcsec=0.0, airmass=math.nan,
        alt_deg=math.nan, az_deg=math.nan, sky_mag_arcsec2=math.nan,
        seeing_fwhm_arcsec=math.nan, defocus_fwhm_arcsec=0.0, tracking_error_arcsec=0.0,
        tracking_pa_deg=0.0, transparency=1.0, throughput=1.0,
        n_hot_pixels=n_hot_pixels, n_bad_columns=n_bad_columns, moon_illum=math.nan,
        moon_sep_deg=math.nan, seed=0, nx=int(nx or telescope.detector.nx_pix),
        ny=int(ny or telescope.detector.ny_pix), hot_pixels=hot_pixels, bad_columns=bad_columns,
    )  # fmt: skip


def bias_frames(spec: FrameSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` zero-second reads, shape ``(n, ny, nx)``, uint16."""
    zero = replace(spec, exptime_s=0.0)
    return _stack(zero, n, rng, level_e=None)


def dark_frames(
    spec: FrameSpec, n: int, rng: np.random.Generator, exptime_s: float = DARK_EXPTIME_S
) -> np.ndarray:
    """``n`` closed-shutter exposures of ``exptime_s``, shape ``(n, ny, nx)``, uint16."""
    return _stack(replace(spec, exptime_s=float(exptime_s)), n, rng, level_e=None)


def twilight_flats(
    spec: FrameSpec,
    band: str,
    n: int,
    rng: np.random.Generator,
    *,
    level_e: tuple[float, float] = TWILIGHT_FLAT_LEVEL_E,
    exptime_s: float = FLAT_EXPTIME_S,
) -> np.ndarray:
    """``n`` twilight flats in ``band``, shape ``(n, ny, nx)``, uint16."""
    flat_spec = replace(spec, band=band, exptime_s=float(exptime_s))
    return _stack(flat_spec, n, rng, level_e=level_e)


def _stack(spec: FrameSpec, n: int, rng: np.random.Generator,
           level_e: tuple[float, float] | None) -> np.ndarray:  # fmt: skip
    frames = np.empty((int(n), spec.ny, spec.nx), dtype=np.uint16)
    for i in range(int(n)):
        level = 0.0 if level_e is None else rng.uniform(*level_e)
        expected = np.full((spec.ny, spec.nx), level)
        frames[i] = apply_detector(expected, spec, rng).raw_adu
    return frames


# --- reduction ------------------------------------------------------------------------


def combine(frames: np.ndarray) -> np.ndarray:
    """Per-pixel combine of a ``(n, ny, nx)`` stack: median (n < 5) or min/max-rejected mean."""
    stack = np.asarray(frames, dtype=float)
    if stack.shape[0] < 5:
        return np.median(stack, axis=0)
    return (stack.sum(axis=0) - stack.min(axis=0) - stack.max(axis=0)) / (stack.shape[0] - 2)


def master_bias(frames: np.ndarray) -> np.ndarray:
    """The bias image (ADU)."""
    return combine(frames)


def master_dark(frames: np.ndarray, bias: np.ndarray, exptime_s: float) -> np.ndarray:
    """The dark rate (ADU/s) per pixel."""
    return combine(np.asarray(frames, dtype=float) - bias) / float(exptime_s)


def master_flat(frames: np.ndarray, bias: np.ndarray, dark_adu_per_s: np.ndarray | float = 0.0,
                exptime_s: float = FLAT_EXPTIME_S) -> np.ndarray:  # fmt: skip
    """The flat (response), each frame and the result normalised to a median of 1."""
    signal = np.asarray(frames, dtype=float) - bias - np.asarray(dark_adu_per_s) * exptime_s
    signal /= np.median(signal, axis=(1, 2), keepdims=True)
    flat = combine(signal)
    return flat / np.median(flat)


def reduce_frame(raw_adu: np.ndarray, bias: np.ndarray, dark_adu_per_s: np.ndarray | float,
                 flat: np.ndarray, exptime_s: float) -> np.ndarray:  # fmt: skip
    """Bias- and dark-subtracted, flat-fielded frame in ADU (float)."""
    signal = np.asarray(raw_adu, dtype=float) - bias - np.asarray(dark_adu_per_s) * exptime_s
    return signal / flat


# --- files ----------------------------------------------------------------------------


def write_calibrations(
    out_dir: str | Path,
    telescope: Telescope,
    night: int,
    bands: Sequence[str],
    seed: int,
    *,
    like: FrameSpec | None = None,
    mjd: float | None = None,
    n_bias: int = 5,
    n_dark: int = 5,
    n_flat: int = 5,
    dark_exptime_s: float = DARK_EXPTIME_S,
) -> list[Path]:
    """Write one night's biases, darks and per-band twilight flats; return the paths.

    ``like``: a spec whose site, window (``nx``, ``ny``) and defects the frames share
    (e.g. the night's first science frame); default: the full detector, no defects.
    ``mjd``: the time of the first frame (default ``like.mjd_start``; unknown otherwise).
    The noise is seeded by ``(seed, night, telescope)``. Names:
    ``{telescope}_night{night:04d}_{bias|dark|flat-BAND}_{i:02d}.fits``.
    """
    if like is not None and like.telescope.name != telescope.name:
        raise ValueError(f"like is a frame of {like.telescope.name!r}, not {telescope.name!r}")
    spec = like if like is not None else calibration_spec(telescope)
    spec = replace(spec, telescope=telescope, obs_id=-1, transient=None)
    start_mjd = float(mjd if mjd is not None else spec.mjd_start)
    rng = np.random.default_rng([int(seed), int(night), telescope_key(telescope.name)])
    stem = Path(out_dir) / f"{telescope.name}_night{int(night):04d}"
    jobs = [
        ("bias", None, bias_frames(spec, n_bias, rng), 0.0),
        ("dark", None, dark_frames(spec, n_dark, rng, dark_exptime_s), dark_exptime_s),
    ]
    jobs += [("flat", band, twilight_flats(spec, band, n_flat, rng), FLAT_EXPTIME_S)
             for band in bands]  # fmt: skip
    paths, clock_s = [], 0.0
    for imagetyp, band, frames, exptime_s in jobs:
        for i, frame in enumerate(frames):
            frame_spec = replace(spec, band=band or "", exptime_s=exptime_s,
                                 mjd_start=start_mjd + clock_s / 86400.0)  # fmt: skip
            header = instrument_header(frame_spec, imagetyp)
            header["NIGHT"] = (int(night), "index of the run's night")
            if band:
                header["FILTER"] = (band, "filter (band)")
            name = f"{imagetyp}-{band}" if band else imagetyp
            paths.append(write_image(f"{stem}_{name}_{i:02d}.fits", frame, header))
            clock_s += exptime_s + _READ_GAP_S
    return paths
