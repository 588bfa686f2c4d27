"""The transient stage: a frame and its field's reference → classified candidates.

What a site's pipeline does with each frame (issue 12, item 5; DOMAIN.md Layer 1,
transient detection), with the pieces of this package:

1. **Calibrate** the raw ADU with the night's master bias, flat and defect map
   (``Frame.calibration``; the header's gain, read noise, dark and WCS):
   :func:`models.transient.image.calibrate`.
2. **Reference** of the field (``Frame.reference_spec``: telescope, pointing, band, size
   under the reference survey's conditions, :func:`twin.pipeline.survey.reference_spec`),
   ``pipeline.reference.n_exposures`` deep with ``seeing_arcsec`` seeing: rendered once
   by :func:`models.transient.reference.render_template` — the reference survey is a
   product of the static sky, which the twin owns — and kept, the
   :data:`REFERENCES_IN_MEMORY` most recently used in memory and, when the run has a
   directory, all as tile-compressed FITS under ``<run>/references/`` (data and variance
   quantised at 1/16 of their noise, mask, WCS, zero point; :func:`reference_bytes`; no
   pickle). A template read back from disk and one just rendered are the same bits
   (both pass through the same FITS bytes), so a resumed run equals an uninterrupted
   one. The file name digests everything that shapes the template (field, survey depth
   and seeing, sky seed, population, galaxy source, exposure time, pixel scale), so a
   changed scenario never reuses a stale one.
3. **Subtract** (registration against the catalogue, resampling, ZOGY, ``|Scorr| ≥ 5``):
   :func:`models.transient.difference.subtract`.
4. **Classify** each candidate's cut-out triplet and features
   (:func:`models.transient.cutouts.candidate_triplets`) with the real/bogus classifier
   (:func:`models.transient.classifier.load_classifier`, or any object with
   ``predict_proba(triplets, features)``, ``version`` and ``real_threshold``).

Every candidate is returned (real and bogus), with ``real_prob`` and ``is_real``; the
centre decides what the real ones are (:mod:`twin.pipeline.discovery`). A frame the
chain cannot register (too few stars: a cloud-covered or empty field) gives no
candidates and is counted in :attr:`TransientStage.frames_failed`.
"""

from __future__ import annotations

import io
import math
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from models.transient.detect import THRESHOLD_SIGMA
from models.transient.image import CalibratedImage, calibrate
from twin.pipeline.spec import ReferenceSpec
from twin.pipeline.stage import Candidate, Frame, StageContext, StageResult

REFERENCE_DIR = "references"
STAGE_VERSION = "transient-1"
MAG_ERR_PER_FRACTION = 2.5 / math.log(10.0)
"""σ_mag = 1.0857 σ_flux / flux (first order)."""
DEFAULT_REAL_THRESHOLD = 0.5
REFERENCES_IN_MEMORY = 16
QUANTIZE_LEVEL = 16.0
"""Reference tiles are quantised at noise / this (:func:`reference_bytes`)."""
DITHER_SEED = 1
"""Templates kept in memory (~10 MB each at 1024²): a field's frames come in visits, so
the most recent few serve nearly every frame; the rest are read back from the run."""


class TransientStage:
    """``transient``: candidates in each frame's difference with its field's reference.

    | argument          | default          | meaning                                      |
    |-------------------|------------------|----------------------------------------------|
    | classifier        | shipped weights  | ``predict_proba(triplets, features)`` → P(real) |
    | real_threshold    | the classifier's | P(real) at or above which a candidate is real |
    | threshold_sigma   | 5.0              | ``|Scorr|`` detection threshold               |
    """

    name = "transient"
    produces_candidates = True

    def __init__(self, classifier: Any = None, *, real_threshold: float | None = None,
                 threshold_sigma: float = THRESHOLD_SIGMA) -> None:  # fmt: skip
        if classifier is None:
            from models.transient.classifier import load_classifier

            classifier = load_classifier()
        self.classifier = classifier
        self.real_threshold = float(
            real_threshold
            if real_threshold is not None
            else getattr(classifier, "real_threshold", DEFAULT_REAL_THRESHOLD)
        )
        self.alert_threshold = max(self.real_threshold, float(
            getattr(classifier, "alert_threshold", self.real_threshold)))  # fmt: skip
        self.threshold_sigma = float(threshold_sigma)
        self.version = f"{STAGE_VERSION}+{getattr(classifier, 'version', 'unversioned')}"
        self.context: StageContext | None = None
        self._references: OrderedDict[str, CalibratedImage] = OrderedDict()
        self.frames_failed = 0
        self.references_rendered = 0

    def bind(self, context: StageContext) -> None:
        """The run's survey products (render options, reference survey, run directory)."""
        self.context = context

    # -- one frame ------------------------------------------------------------------------
    def process(self, frame: Frame) -> StageResult:
        from models.transient.cutouts import candidate_triplets
        from models.transient.difference import subtract

        band = str(frame.header["FILTER"]) if "FILTER" in frame.header else frame.exposure.band
        image = calibrate(frame.data_adu, frame.header, **dict(frame.calibration))
        reference = self.reference(frame)
        try:
            diff = subtract(image, reference, band, sky_seed=self._sky_seed(),
                            threshold_sigma=self.threshold_sigma)  # fmt: skip
        except (ValueError, RuntimeError, np.linalg.LinAlgError):
            # Too few stars to register or to measure a PSF: no candidates from this frame.
            self.frames_failed += 1
            return StageResult(self.name, self.version, searched=False)
        triplets, features = candidate_triplets(diff)
        proba = np.asarray(self.classifier.predict_proba(triplets, features), dtype=float)
        return StageResult(self.name, self.version,
                           candidates=self._candidates(diff, features, proba))  # fmt: skip

    def _candidates(self, diff, features: pd.DataFrame, proba: np.ndarray
                    ) -> tuple[Candidate, ...]:  # fmt: skip
        table = diff.candidates
        new = diff.new
        out = []
        for k, row in enumerate(table.itertuples(index=False)):
            flux, err = float(row.flux_e), float(row.flux_err_e)
            mag = new.magzero_e - 2.5 * math.log10(flux / new.exptime_s) if flux > 0 else math.nan
            mag_err = MAG_ERR_PER_FRACTION * err / flux if flux > 0 else math.nan
            feats = {str(c): float(v) for c, v in features.iloc[k].items()} if len(features) else {}
            out.append(Candidate(
                ra_deg=float(row.ra_deg), dec_deg=float(row.dec_deg), x_pix=float(row.x_pix),
                y_pix=float(row.y_pix), mag=mag, mag_err=mag_err, flux_e=flux, flux_err_e=err,
                scorr=float(row.scorr), sign=int(row.sign), real_prob=float(proba[k]),
                is_real=bool(proba[k] >= self.real_threshold), features=feats,
                alert_grade=bool(proba[k] >= self.alert_threshold),
            ))  # fmt: skip
        return tuple(out)

    # -- the reference ------------------------------------------------------------------
    def reference(self, frame: Frame) -> CalibratedImage:
        """The template of the frame's field: from memory, the run's disk, or rendered."""
        if frame.reference_spec is None:
            raise ValueError("the frame has no reference_spec: run the transient stage in "
                             "the twin's loop (twin.pipeline.loop), which gives one")  # fmt: skip
        n_exposures, seeing = self._survey()
        spec = frame.reference_spec
        options = None if self.context is None else self.context.render_options
        key = reference_key(spec, n_exposures, seeing, self._sky_seed(), options)
        image = self._references.get(key)
        if image is not None:
            self._references.move_to_end(key)
            return image
        path = None if self._run_dir() is None else self._run_dir() / REFERENCE_DIR / f"{key}.fits"
        if path is not None and path.exists():
            image = read_reference(path)
        else:
            image = self._render(spec, n_exposures, seeing)
            blob = reference_bytes(image)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(blob)
                tmp.replace(path)
            image = read_reference(io.BytesIO(blob))  # the same bits as a later read
        self._references[key] = image
        while len(self._references) > REFERENCES_IN_MEMORY:
            self._references.popitem(last=False)
        return image

    def _render(self, spec, n_exposures: int, seeing: float) -> CalibratedImage:
        from models.transient.reference import render_template

        self.references_rendered += 1
        options = None if self.context is None else self.context.render_options
        image, _ = render_template(spec, options, n_exposures=n_exposures,
                                   seeing_fwhm_arcsec=seeing)  # fmt: skip
        return image

    def _survey(self) -> tuple[int, float]:
        ref = ReferenceSpec() if self.context is None else self.context.reference
        return int(ref.n_exposures), float(ref.seeing_arcsec)

    def _sky_seed(self) -> int:
        if self.context is None or self.context.render_options is None:
            return 0
        return int(self.context.render_options.sky_seed)

    def _run_dir(self) -> Path | None:
        return None if self.context is None else self.context.run_dir


def reference_key(spec, n_exposures: int, seeing_arcsec: float, sky_seed: int,
                  options=None) -> str:  # fmt: skip
    """A file name for the template: the field (``spec.target_id``, set by
    :func:`twin.pipeline.survey.reference_spec`) and a digest of what else shapes it
    (the population's settings, the galaxy source, exposure time and pixel scale too)."""
    population = "" if spec.population is None else spec.population.model_dump_json()
    galaxies = "" if options is None else f"{options.galaxies}|{options.defocus_model}"
    what = (f"{spec.target_id}|{n_exposures}|{seeing_arcsec!r}|{sky_seed}|{spec.seed}|"
            f"{spec.exptime_s!r}|{spec.pixel_scale_arcsec!r}|{population}|{galaxies}")  # fmt: skip
    return f"{spec.target_id}_{zlib.crc32(what.encode()):08x}"


def reference_bytes(image: CalibratedImage) -> bytes:
    """The template as FITS bytes: the image (e⁻, extension ``SCI``), ``VARIANCE`` (e²),
    ``MASK`` (uint8), WCS and zero point (``MAGZERO`` is ``magzero_e``: AB mag of 1 e⁻/s).

    Tile-compressed as survey archives store images (RICE, quantised at 1/16 of each
    tile's noise, subtractive dither with a fixed seed): ~4.7× smaller than float32
    (0.7 MB for a 608² template), an error ≤ 0.04 σ per pixel (the quantisation noise adds
    0.03 % to the variance). Every template the stage uses went through these bytes, so
    the one read back from disk is the one a fresh render gave."""
    header = image.wcs.to_header()
    header["MAGZERO"] = (image.magzero_e, "AB mag giving 1 e-/s (electrons, not ADU)")
    header["EXPTIME"] = (image.exptime_s, "[s] total exposure of the stack")

    def compressed(data, name, **quantise):
        return fits.CompImageHDU(data, header=header if name == "SCI" else None, name=name,
                                 compression_type="RICE_1", **quantise)  # fmt: skip

    lossy = {"quantize_level": QUANTIZE_LEVEL, "dither_seed": DITHER_SEED}
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=header),
        compressed(np.asarray(image.data_e, dtype=np.float32), "SCI", **lossy),
        compressed(np.asarray(image.variance_e2, dtype=np.float32), "VARIANCE", **lossy),
        compressed(np.asarray(image.mask, dtype=np.uint8), "MASK"),
    ])  # fmt: skip
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    return buffer.getvalue()


def read_reference(source) -> CalibratedImage:
    """A template written by :func:`reference_bytes` (a path or a file object)."""
    with fits.open(source, memmap=False) as hdul:
        header = hdul["SCI"].header
        return CalibratedImage(
            data_e=np.array(hdul["SCI"].data, dtype=np.float64),
            variance_e2=np.array(hdul["VARIANCE"].data, dtype=np.float64),
            mask=np.array(hdul["MASK"].data, dtype=bool),
            wcs=WCS(header, naxis=2),
            magzero_e=float(header["MAGZERO"]),
            exptime_s=float(header["EXPTIME"]),
        )
