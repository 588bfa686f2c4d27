"""FITS files of raw frames, with full headers, a WCS, and the truth beside them.

A science frame ``NAME.fits`` is one primary HDU (the raw ADU, uint16) whose header
holds what a pipeline needs (exposure, filter, airmass, site, detector gain/noise/
saturation) and what only a simulation knows (seeing, sky level, zero point, pointing
error, seed), plus a TAN WCS from the *believed* pointing. ``NAME.truth.parquet`` holds
the truth catalogue and, when given, what the detector added (cosmic rays, hot pixels,
bad columns), one row each with a ``type`` column.

Photometric zero point. ``MAGZERO`` is the AB magnitude of a point source giving a total
of 1 ADU/s in this frame (after flat-fielding with a flat normalised like
:func:`~twin.imaging.detector.flat_field`):

    MAGZERO = 2.5 log10(e0 / gain)

where ``e0`` is the exposure-time calculator's electrons per second of a magnitude-0
source in this frame (telescope zero point, extinction ``k X`` at the site's height,
cloud transparency and mirror throughput: :func:`twin.imaging.scene.electrons`, the
numbers the pixels were drawn with) and ``gain`` in e-/ADU turns electrons into ADU. A
source of magnitude ``m`` gives ``EXPTIME × 10^(-0.4 (m - MAGZERO))`` ADU above the sky.

Pixel conventions: the data array is numpy ``[row, col]`` = ``[y, x]``; the truth's
``x_pix``, ``y_pix`` are 0-based (numpy), ``x_fits``, ``y_fits`` 1-based (FITS/WCS).
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from twin.imaging.detector import DetectorResult, saturate_adu
from twin.imaging.faults import fault_truth
from twin.imaging.scene import electrons, sky_level_e
from twin.imaging.spec import FrameSpec
from twin.physics.extinction import extinction_coefficient

TRUTH_SUFFIX = ".truth.parquet"
_MJD_EPOCH = datetime(1858, 11, 17)


def magzero(spec: FrameSpec) -> float:
    """AB magnitude giving 1 ADU/s in this frame (see the module docstring): from the
    electrons the pixels were drawn with, so header and image cannot disagree."""
    e_per_s = max(float(electrons(spec, 0.0, exptime_s=1.0)), 1e-30)
    return 2.5 * math.log10(e_per_s / spec.telescope.detector.gain_e_per_adu)


def truth_path(path: str | Path) -> Path:
    """``NAME.fits`` → ``NAME.truth.parquet``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".fits").removesuffix(".fz") + TRUTH_SUFFIX)


def iso_from_mjd(mjd: float) -> str:
    """UTC ISO 8601 with milliseconds (days of 86400 s, as MJD(UTC) counts them)."""
    return (_MJD_EPOCH + timedelta(days=float(mjd))).isoformat(timespec="milliseconds")


def frame_header(spec: FrameSpec, header_extra: dict[str, Any] | None = None) -> fits.Header:
    """The science header: instrument, exposure, conditions truth and the WCS."""
    header = instrument_header(spec, "object")
    det = spec.telescope.detector
    sky_adu = sky_level_e(spec) / det.gain_e_per_adu
    _set(header, [
        ("FILTER", spec.band, "filter (band)"),
        ("OBJECT", spec.target_id, "target id"),
        ("AIRMASS", spec.airmass, "airmass at start"),
        ("ALT", spec.alt_deg, "[deg] altitude at start"),
        ("AZ", spec.az_deg, "[deg] azimuth at start"),
        ("RA", spec.ra_deg, "[deg] believed pointing (image centre)"),
        ("DEC", spec.dec_deg, "[deg] believed pointing (image centre)"),
        ("SEEING", spec.seeing_fwhm_arcsec, "[arcsec] truth: atmospheric FWHM"),
        ("DEFOCUS", spec.defocus_fwhm_arcsec, "[arcsec] truth: defocus FWHM"),
        ("IMGFWHM", spec.image_fwhm_arcsec, "[arcsec] truth: seeing+defocus FWHM"),
        ("TRACKERR", spec.tracking_error_arcsec, "[arcsec] truth: tracking trail length"),
        ("TRACKPA", spec.tracking_pa_deg, "[deg] truth: trail position angle"),
        ("SKYMAG", spec.sky_mag_arcsec2, "[mag/arcsec2] truth: sky brightness"),
        ("SKYLEVEL", sky_adu, "[adu] truth: sky per pixel above bias"),
        ("TRANSPAR", spec.transparency, "truth: cloud transparency"),
        ("THROUGHP", spec.throughput, "truth: optics throughput vs new"),
        ("EXTINCT", float(extinction_coefficient(spec.band, spec.site_height_m)),
         "[mag/airmass] extinction coefficient"),
        ("MAGZERO", magzero(spec), "AB mag giving 1 adu/s (see twin.imaging.fits)"),
        ("MOONILL", spec.moon_illum, "moon illuminated fraction"),
        ("MOONSEP", spec.moon_sep_deg, "[deg] moon separation"),
        ("PNTERRRA", spec.pointing_error_ra_arcsec, "[arcsec] truth: true-believed RA*cosD"),
        ("PNTERRDE", spec.pointing_error_dec_arcsec, "[arcsec] truth: true-believed Dec"),
        ("TRUERA", spec.true_ra_deg, "[deg] truth: true centre RA"),
        ("TRUEDEC", spec.true_dec_deg, "[deg] truth: true centre Dec"),
        ("REQID", spec.request_id, "request id"),
        ("TRANSID", spec.transient.alert_id if spec.transient else "", "transient alert id"),
    ])  # fmt: skip
    if math.isfinite(spec.m5_ref_mag):
        _set(header, [("M5REF", spec.m5_ref_mag,
                       "[mag] reference 5-sigma depth")])  # fmt: skip
    if spec.faults:  # only on faulted frames: a clean frame's header is as it always was
        _set(header, [("FAULTS", ",".join(spec.faults), "truth: injected rare faults")])
    header.update(wcs_header(spec))
    _set(header, [(key, *(v if isinstance(v, tuple) else (v, ""))) for key, v in
                  (header_extra or {}).items()])  # fmt: skip
    return header


def instrument_header(spec: FrameSpec, imagetyp: str) -> fits.Header:
    """Cards every frame carries (science and calibration): when, where, which detector."""
    det = spec.telescope.detector
    header = fits.Header()
    _set(header, [
        ("IMAGETYP", imagetyp, "object | bias | dark | flat"),
        ("OBS_ID", spec.obs_id, "observation id in the run's log"),
        ("DATE-OBS", iso_from_mjd(spec.mjd_start) if math.isfinite(spec.mjd_start) else None,
         "UTC start of exposure"),
        ("MJD-OBS", spec.mjd_start, "[d] MJD (UTC) start of exposure"),
        ("EXPTIME", spec.exptime_s, "[s] exposure time"),
        ("OBSERVAT", spec.site, "site"),
        ("SITEELEV", spec.site_height_m, "[m] site height"),
        ("TELESCOP", spec.telescope.name, "telescope"),
        ("INSTRUME", f"{spec.telescope.name}-imager", "camera"),
        ("PIXSCALE", spec.pixel_scale_arcsec, "[arcsec/pixel]"),
        ("GAIN", det.gain_e_per_adu, "[e-/adu]"),
        ("RDNOISE", det.read_noise_e, "[e-] read noise"),
        ("DARKCUR", det.dark_current_e_per_s, "[e-/s/pixel] dark current"),
        ("BIASLEV", det.bias_adu, "[adu] mean bias level"),
        ("SATURATE", saturate_adu(spec), "[adu] min(full well/gain + bias, 65535)"),
        ("FULLWELL", det.full_well_e, "[e-] full well"),
        ("BUNIT", "adu", ""),
        ("SEED", spec.seed, "seed of the frame's noise"),
    ])  # fmt: skip
    return header


def wcs_header(spec: FrameSpec) -> fits.Header:
    """TAN WCS centred on the believed pointing: north up (+y), east left (-x).

    ``CRPIX`` is the 1-based centre ``((nx + 1) / 2, (ny + 1) / 2)``; ``CD1_1 = -scale``
    (RA grows to the left), ``CD2_2 = +scale``, in degrees per pixel.
    """
    scale_deg = spec.pixel_scale_arcsec / 3600.0
    header = fits.Header()
    _set(header, [
        ("WCSAXES", 2, ""), ("CTYPE1", "RA---TAN", ""), ("CTYPE2", "DEC--TAN", ""),
        ("CUNIT1", "deg", ""), ("CUNIT2", "deg", ""),
        ("CRVAL1", spec.ra_deg % 360.0, "[deg] believed RA of CRPIX"),
        ("CRVAL2", spec.dec_deg, "[deg] believed Dec of CRPIX"),
        ("CRPIX1", (spec.nx + 1) / 2.0, "image centre (1-based)"),
        ("CRPIX2", (spec.ny + 1) / 2.0, "image centre (1-based)"),
        ("CD1_1", -scale_deg, ""), ("CD1_2", 0.0, ""), ("CD2_1", 0.0, ""),
        ("CD2_2", scale_deg, ""), ("RADESYS", "ICRS", ""), ("EQUINOX", 2000.0, ""),
    ])  # fmt: skip
    return header


def write_frame(
    path: str | Path,
    raw_adu: np.ndarray,
    spec: FrameSpec,
    truth: pd.DataFrame | None,
    *,
    header_extra: dict[str, Any] | None = None,
    detector: DetectorResult | None = None,
) -> Path:
    """Write the frame to ``path`` (FITS) and its truth beside it; return ``path``.

    ``header_extra``: more cards, ``{KEY: value}`` or ``{KEY: (value, comment)}``.
    ``detector``: the :func:`~twin.imaging.detector.apply_detector` result, whose cosmic
    rays, hot pixels and bad columns join the truth table.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _as_uint16(raw_adu, (spec.ny, spec.nx))
    table = truth_table(truth, detector, spec)
    # Truth first, FITS last, each renamed into place whole: a FITS file on disk means its
    # frame is complete, so a stopped render can skip it (render_run).
    _atomic(truth_path(path), lambda tmp: table.to_parquet(tmp, index=False))
    hdu = fits.PrimaryHDU(data, header=frame_header(spec, header_extra))
    _atomic(path, lambda tmp: hdu.writeto(tmp, overwrite=True))
    return path


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_image(path: str | Path, data: np.ndarray, header: fits.Header) -> Path:
    """Write one uint16 image with ``header`` (calibration frames)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu = fits.PrimaryHDU(_as_uint16(data, data.shape), header=header)
    _atomic(path, lambda tmp: hdu.writeto(tmp, overwrite=True))
    return path


def read_frame(path: str | Path) -> tuple[np.ndarray, fits.Header, pd.DataFrame | None]:
    """``(data, header, truth)``; ``truth`` is None where no truth file lies beside it."""
    with fits.open(path) as hdul:
        data = np.array(hdul[0].data)
        header = hdul[0].header.copy()
    tpath = truth_path(path)
    truth = pd.read_parquet(tpath) if tpath.exists() else None
    return data, header, truth


def truth_table(
    truth: pd.DataFrame | None, detector: DetectorResult | None, spec: FrameSpec
) -> pd.DataFrame:
    """The sources with 1-based ``x_fits``/``y_fits`` added, then the detector artefacts.

    Artefact rows: ``type`` ``cosmic_ray`` (``flux_e`` = deposited charge, plus
    ``length_pix``, ``angle_deg``), ``hot_pixel`` (``flux_e`` = expected dark charge,
    ``dark_e_per_s``), ``bad_column`` (``x_pix``, ``state``; ``y_pix`` NaN). Their sky
    columns are NaN and their ``source_id`` is ``cr-N``, ``hot-N``, ``col-N``; when
    artefacts are added the ``source_id`` column is written as strings. A frame with rare
    faults adds one ``fault`` row per fault (:func:`~twin.imaging.faults.fault_truth`:
    ``fault_kind``, ``fault_params``); its header lists them in ``FAULTS``.
    """
    if truth is None:
        truth = pd.DataFrame({
            "source_id": pd.Series(dtype=str), "type": pd.Series(dtype=str),
            "x_pix": pd.Series(dtype=float), "y_pix": pd.Series(dtype=float),
        })  # fmt: skip
    extra = [p for p in _artefact_rows(detector, spec.exptime_s) if len(p)] if detector else []
    if spec.faults:
        extra.append(fault_truth(spec))
    table = truth.copy()
    if extra:
        table["source_id"] = table["source_id"].astype(str)
        table = pd.concat([t for t in [table, *extra] if len(t)], ignore_index=True)
    table["x_fits"] = table["x_pix"].astype(float) + 1.0
    table["y_fits"] = table["y_pix"].astype(float) + 1.0
    return table


def _artefact_rows(detector: DetectorResult, exptime_s: float) -> list[pd.DataFrame]:
    cr, hot, cols = detector.cosmic_rays, detector.hot_pixels, detector.bad_columns
    return [
        pd.DataFrame({
            "source_id": [f"cr-{i}" for i in cr["cr_id"]], "type": "cosmic_ray",
            "x_pix": cr["x_pix"].to_numpy(float), "y_pix": cr["y_pix"].to_numpy(float),
            "flux_e": cr["electrons"].to_numpy(float), "cr_kind": cr["kind"].to_numpy(object),
            "length_pix": cr["length_pix"].to_numpy(float),
            "angle_deg": cr["angle_deg"].to_numpy(float),
        }),
        pd.DataFrame({
            "source_id": [f"hot-{i}" for i in range(len(hot))], "type": "hot_pixel",
            "x_pix": hot["x_pix"].to_numpy(float), "y_pix": hot["y_pix"].to_numpy(float),
            "flux_e": hot["dark_e_per_s"].to_numpy(float) * exptime_s,
            "dark_e_per_s": hot["dark_e_per_s"].to_numpy(float),
        }),
        pd.DataFrame({
            "source_id": [f"col-{i}" for i in range(len(cols))], "type": "bad_column",
            "x_pix": cols["x_pix"].to_numpy(float), "y_pix": np.nan,
            "column_state": cols["state"].to_numpy(object),
        }),
    ]  # fmt: skip


def _as_uint16(data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    data = np.asarray(data)
    if data.shape != tuple(shape):
        raise ValueError(f"image has shape {data.shape}; expected {tuple(shape)}")
    if data.dtype != np.uint16:
        data = np.clip(np.rint(data), 0, 65535).astype(np.uint16)
    return data


def _set(header: fits.Header, cards: list[tuple[str, Any, str]]) -> None:
    """Set cards; non-finite floats become undefined values (FITS has no NaN)."""
    for key, value, comment in cards:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        header[key] = (value, comment)
