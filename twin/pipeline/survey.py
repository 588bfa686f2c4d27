"""The reference survey: which template of the static sky a frame is subtracted from.

Why here and not in the stage: a template is a survey product of a *field* (a pointing,
a band, a telescope's pixels), not of one exposure, so what it is must not depend on the
exposure's truth (its pointing error, seeing, clouds, transient) — only on what the site
knows before it observes. :func:`reference_spec` builds that description from the
frame's spec keeping only the known parts, with the survey's own conditions: zenith,
dark sky (:data:`twin.physics.sky.DARK_SKY_ZENITH_MAG_ARCSEC2`), clear, a new mirror,
no moon, the survey's seeing (``pipeline.reference``). Its seed comes from the field, so
every frame of the field gets the same template, rendered once (the stage caches it).

:func:`site_calibration` is the other product a site pipeline has besides the frame: the
night's master bias and flat and its defect map (hot pixels, bad columns), as the
afternoon's biases, darks and twilight flats give them (``operations.bias_frames`` …);
taken as infinitely deep masters, and the defect map as of the exposure — the same
calibration the real/bogus training set uses (:mod:`models.transient.dataset`), less
its deliberately stale defect maps.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from twin.imaging.spec import FrameSpec
from twin.physics.sky import DARK_SKY_ZENITH_MAG_ARCSEC2
from twin.pipeline.spec import ReferenceSpec

REFERENCE_AIRMASS = 1.0
"""The survey's templates as if taken at the zenith (stacks are photometrically scaled)."""


def field_key(spec: FrameSpec) -> str:
    """The field of a frame: telescope, band, believed pointing (to 0.36″), size in pixels."""
    return (f"{spec.telescope.name}_{spec.band}_{spec.ra_deg:.4f}_{spec.dec_deg:+.4f}_"
            f"{spec.nx}x{spec.ny}")  # fmt: skip


def site_calibration(spec: FrameSpec) -> dict[str, np.ndarray]:
    """``bias_adu``, ``flat`` and ``bad_pixels`` of the frame's detector (module docstring):
    keyword arguments of :func:`models.transient.image.calibrate`."""
    from twin.imaging.detector import bad_columns, bias_image, flat_field, hot_pixels

    bad = np.zeros((spec.ny, spec.nx), dtype=bool)
    hot = hot_pixels(spec)
    bad[hot["y_pix"].to_numpy(), hot["x_pix"].to_numpy()] = True
    bad[:, bad_columns(spec)["x_pix"].to_numpy()] = True
    return {"bias_adu": bias_image(spec), "flat": flat_field(spec), "bad_pixels": bad}


def reference_spec(spec: FrameSpec, reference: ReferenceSpec, sky_seed: int = 0) -> FrameSpec:
    """The field of ``spec`` as the reference survey observed it (module docstring)."""
    key = field_key(spec)
    seed = int(np.random.SeedSequence([int(sky_seed), zlib.crc32(key.encode())])
               .generate_state(1, np.uint64)[0] >> np.uint64(1))  # fmt: skip
    return replace(
        spec,
        obs_id=0,
        mjd_start=0.0,
        pointing_error_ra_arcsec=0.0,
        pointing_error_dec_arcsec=0.0,
        airmass=REFERENCE_AIRMASS,
        alt_deg=90.0,
        az_deg=0.0,
        sky_mag_arcsec2=DARK_SKY_ZENITH_MAG_ARCSEC2.get(spec.band, spec.sky_mag_arcsec2),
        seeing_fwhm_arcsec=reference.seeing_arcsec,
        defocus_fwhm_arcsec=0.0,
        tracking_error_arcsec=0.0,
        tracking_pa_deg=0.0,
        transparency=1.0,
        throughput=1.0,
        n_hot_pixels=0,
        n_bad_columns=0,
        moon_illum=0.0,
        moon_sep_deg=180.0,
        seed=seed,
        transient=None,
        population_reference=True,  # variables and AGN at their mean; no SN, no asteroid
        target_id=key,
        request_id="",
        hot_pixels=None,
        bad_columns=None,
        faults=(),
    )
