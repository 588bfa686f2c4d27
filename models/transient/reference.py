"""A deep template of the static sky, rendered by the twin, and a frame to subtract from it.

Why rendered: a reference survey would supply, per field and band, an image deeper than
one exposure, with better seeing, no transient and an exact astrometric solution. The
twin's static sky (stars and galaxies from :func:`twin.imaging.catalog.sky_catalog`) is
a function of position and ``sky_seed`` only, so a template rendered from it holds the
same sources at the same places as every frame of the field.

What :func:`render_template` makes: the noise-free scene of the field (the frame's own
renderer, :func:`twin.imaging.render.render_expected`) with no transient, no trails and no
faults — of the sky's own population (:mod:`twin.alerts.population`), variable stars and
AGN at their mean magnitude and no supernovae, fast transients or asteroids — seen with
``seeing_fwhm_arcsec`` and no pointing error (a survey template comes solved),
``margin_px`` larger on each side than the frame so that a frame with a pointing error
still lies inside it, then the sum of ``n_exposures`` exposures: Poisson on the
summed light and dark, read noise once per exposure. A stack has its cosmic rays, hot
pixels and saturated cores removed, so it has none; its flat and bias are divided out
exactly.

:func:`render_frame_calibrated` renders an exposure exactly as
:func:`twin.imaging.frames.render_arrays` does (the same pixels as ``skytwin frame``) and
calibrates it with the detector's noise-free bias and flat.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from models.transient.image import CalibratedImage, calibrate, header_wcs, ideal_calibration
from twin.imaging.frames import RenderOptions
from twin.imaging.spec import FrameSpec

TEMPLATE_MARGIN_PX = 48
"""Template border beyond the frame: holds pointing errors up to ~18" at 0.39"/pixel."""


def template_spec(
    spec: FrameSpec,
    *,
    n_exposures: int = 8,
    seeing_fwhm_arcsec: float | None = None,
    margin_px: int = TEMPLATE_MARGIN_PX,
) -> FrameSpec:
    """The spec of the template for the field of ``spec``: believed pointing exact, no
    transient (announced or of the population: ``population_reference``), no faults,
    tracking or defocus, seeing ``seeing_fwhm_arcsec`` (default
    the frame's), ``n_exposures`` times the frame's exposure time."""
    return replace(
        spec,
        obs_id=0,
        exptime_s=spec.exptime_s * n_exposures,
        pointing_error_ra_arcsec=0.0,
        pointing_error_dec_arcsec=0.0,
        seeing_fwhm_arcsec=spec.seeing_fwhm_arcsec
        if seeing_fwhm_arcsec is None
        else float(seeing_fwhm_arcsec),
        defocus_fwhm_arcsec=0.0,
        tracking_error_arcsec=0.0,
        transient=None,
        population_reference=True,
        faults=(),
        n_hot_pixels=0,
        n_bad_columns=0,
        hot_pixels=None,
        bad_columns=None,
        nx=spec.nx + 2 * margin_px,
        ny=spec.ny + 2 * margin_px,
        seed=int(np.random.SeedSequence([spec.seed, 0x7E3]).generate_state(1)[0]),
    )


def render_template(
    spec: FrameSpec,
    options: RenderOptions | None = None,
    *,
    n_exposures: int = 8,
    seeing_fwhm_arcsec: float | None = None,
    margin_px: int = TEMPLATE_MARGIN_PX,
) -> tuple[CalibratedImage, pd.DataFrame]:
    """The deep template of the field of ``spec`` (module docstring) and its truth."""
    from twin.imaging.catalog import TrailModel
    from twin.imaging.fits import frame_header
    from twin.imaging.render import render_expected

    options = options or RenderOptions()
    deep = template_spec(
        spec, n_exposures=n_exposures, seeing_fwhm_arcsec=seeing_fwhm_arcsec, margin_px=margin_px
    )
    rendered = render_expected(
        deep,
        sky_seed=options.sky_seed,
        defocus_model=options.defocus_model,
        trails=TrailModel(rate_per_hour_deg2=0.0),
        galaxies=options.galaxies,
        galaxy_bank_dir=options.galaxy_bank_dir,
    )
    det = deep.telescope.detector
    rng = np.random.default_rng(deep.seed)
    dark_e = det.dark_current_e_per_s * deep.exptime_s
    read_e = det.read_noise_e * np.sqrt(n_exposures)
    charge_e = rng.poisson(np.clip(rendered.image_e, 0.0, None) + dark_e).astype(float)
    charge_e += rng.normal(0.0, read_e, charge_e.shape)
    header = dict(frame_header(deep))
    image = CalibratedImage(
        data_e=charge_e - dark_e,
        variance_e2=np.clip(charge_e, 0.0, None) + read_e**2,
        mask=np.zeros(charge_e.shape, dtype=bool),
        wcs=header_wcs(header),
        magzero_e=float(header["MAGZERO"]) + 2.5 * np.log10(det.gain_e_per_adu),
        exptime_s=deep.exptime_s,
    )
    return image, rendered.truth


def render_frame_calibrated(
    spec: FrameSpec, options: RenderOptions | None = None
) -> tuple[CalibratedImage, dict, pd.DataFrame]:
    """Render ``spec`` as ``skytwin frame`` would, calibrate it: ``(image, header, truth)``."""
    from twin.imaging.fits import frame_header, truth_table
    from twin.imaging.frames import render_arrays

    detector, truth = render_arrays(spec, options or RenderOptions())
    header = dict(frame_header(spec))
    image = calibrate(detector.raw_adu, header, **ideal_calibration(spec))
    return image, header, truth_table(truth, detector, spec)
