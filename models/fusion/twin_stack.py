"""A stack of twin frames of one field under different conditions, with its truth.

What the tests and :mod:`.figures` coadd: the twin's scene and PSF (GalSim: Kolmogorov
seeing ⊗ Airy ⊗ pixel, :func:`twin.imaging.psf.psf_for`) rendered for one field at each
spec's seeing, transparency and sky, all from *one* catalogue (the deepest frame's faint
limit, no trails) so every frame sees the same sky. The detector is reduced to what an
ideal calibration leaves: Poisson shot noise of sky and sources plus the camera's read
noise (flat-field errors, defects and cosmic rays are masks, tested on their own). Each
frame comes twice, noisy and noiseless, with the same variance map: the coadd is linear,
so the coadd of the noiseless frames is the truth its noisy twin is compared with.

PSFs come from the spec's known seeing (the model drawn on a stamp), not measured from
stars; the flux scale from the exposure-time calculator (:func:`twin.imaging.scene.electrons`
of a source of ``magzero_out``). Frames share the believed pointing and have no pointing
error unless the specs say otherwise, so they are on one grid already; frames that do
point differently go onto one grid with :func:`resampled` (``reproject``, true WCS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from astropy.wcs import WCS

from models.fusion.frame import AlignedFrame
from twin.imaging.spec import FrameSpec

PSF_RADIUS_PER_FWHM = 5.0
"""Half-size of the PSF stamps in FWHM of the broadest frame (≥ 99 % of a Kolmogorov PSF)."""


@dataclass(frozen=True)
class StackFrame:
    """One frame of the stack: noisy and noiseless versions, its spec and its truth."""

    frame: AlignedFrame
    noiseless: AlignedFrame
    spec: FrameSpec
    truth: pd.DataFrame
    wcs: WCS  # where the sky truly landed (the true pointing)


def base_spec(size: int = 160, seed: int = 1, **fields) -> FrameSpec:
    """A 60 s r-band exposure of a high-latitude field on the network's 1 m telescope."""
    from twin.world.telescope import get_telescope

    spec = FrameSpec(
        obs_id=1,
        site="cerro-pachon",
        site_height_m=2700.0,
        telescope=get_telescope("1m"),
        band="r",
        exptime_s=60.0,
        mjd_start=61500.2,
        ra_deg=150.0,
        dec_deg=-30.0,
        pointing_error_ra_arcsec=0.0,
        pointing_error_dec_arcsec=0.0,
        airmass=1.2,
        alt_deg=56.0,
        az_deg=10.0,
        sky_mag_arcsec2=20.8,
        seeing_fwhm_arcsec=1.2,
        defocus_fwhm_arcsec=0.0,
        tracking_error_arcsec=0.0,
        tracking_pa_deg=0.0,
        transparency=0.9,
        throughput=0.95,
        n_hot_pixels=0,
        n_bad_columns=0,
        moon_illum=0.3,
        moon_sep_deg=60.0,
        seed=seed,
        nx=size,
        ny=size,
    )
    return replace(spec, **fields)


def psf_stamp(spec: FrameSpec, size: int) -> np.ndarray:
    """The spec's PSF ⊗ pixel on an odd ``size``² stamp centred on its middle pixel."""
    from twin.imaging.psf import psf_for

    image = psf_for(spec).drawImage(nx=size, ny=size, scale=spec.pixel_scale_arcsec)
    stamp = image.array.astype(np.float64)
    return stamp / stamp.sum()


def render_stack(
    specs: Sequence[FrameSpec],
    *,
    magzero_out: float = 25.0,
    noise_seed: int = 0,
    galaxies: bool = True,
) -> list[StackFrame]:
    """Render ``specs`` (one field) noisy and noiseless, with PSFs and flux scales.

    ``galaxies=False`` leaves the catalogue's galaxies out (stars only: clean photometry).
    """
    from twin.imaging.catalog import TrailModel, faint_limit_mag, sky_catalog
    from twin.imaging.render import render_expected
    from twin.imaging.scene import electrons

    deepest = min(specs, key=lambda s: s.image_fwhm_arcsec)
    faint = max(faint_limit_mag(s) for s in specs)
    catalog = sky_catalog(deepest, faint_mag=faint, trails=TrailModel(rate_per_hour_deg2=0.0))
    if not galaxies:
        catalog = replace(catalog, galaxies=catalog.galaxies.iloc[:0])
    widest = max(s.image_fwhm_arcsec / s.pixel_scale_arcsec for s in specs)
    size = 2 * math.ceil(PSF_RADIUS_PER_FWHM * widest) + 1
    rng = np.random.default_rng(noise_seed)
    out = []
    for spec in specs:
        rendered = render_expected(spec, catalog=catalog)
        read_e2 = spec.telescope.detector.read_noise_e**2
        expected = rendered.image_e
        noisy = rng.poisson(expected) + rng.normal(0.0, math.sqrt(read_e2), expected.shape)
        variance = expected + read_e2
        mask = np.zeros(expected.shape, bool)
        psf = psf_stamp(spec, size)
        scale = float(electrons(spec, magzero_out))
        sigma = math.sqrt(rendered.sky_e_per_pix + read_e2)
        common = dict(
            variance_e2=variance,
            mask=mask,
            psf=psf,
            flux_scale_e=scale,
            background_e=rendered.sky_e_per_pix,
            background_sigma_e=sigma,
        )
        out.append(
            StackFrame(
                AlignedFrame(noisy.astype(np.float64), **common),
                AlignedFrame(expected, **common),
                spec,
                rendered.truth,
                rendered.wcs_true,
            )
        )
    return out


def truth_flux(truth: pd.DataFrame, magzero_out: float = 25.0) -> np.ndarray:
    """The truth table's fluxes in the coadd's unit (a source of ``magzero_out`` is 1)."""
    return 10.0 ** (-0.4 * (truth["mag"].to_numpy(float) - magzero_out))


def redraw_noise(frame: StackFrame, rng: np.random.Generator) -> AlignedFrame:
    """Another noise realisation of ``frame`` (Poisson on the expected electrons + read)."""
    expected = frame.noiseless.data_e
    read_e = frame.spec.telescope.detector.read_noise_e
    noisy = rng.poisson(expected) + rng.normal(0.0, read_e, expected.shape)
    return replace(frame.frame, data_e=noisy.astype(np.float64))


def resampled(frame: StackFrame, wcs_out: WCS, shape_out: tuple[int, int]) -> StackFrame:
    """``frame`` on the grid (``wcs_out``, ``shape_out``) by ``reproject_interp``, bicubic.

    Background subtracted first, pixels, noiseless pixels and variance interpolated alike
    (the variance so interpolated is low by up to ~40 % per pixel at half-pixel shifts:
    interpolation averages neighbours; fine for fluxes, not for pulls), the mask is every
    output pixel not wholly inside the input. The PSF stays the spec's (the bicubic
    kernel widens it by well under a pixel in quadrature).
    """
    from reproject import reproject_interp

    out = {}
    footprint = None
    for name, values in (
        ("data_e", frame.frame.data_e - frame.frame.background_e),
        ("clean_e", frame.noiseless.data_e - frame.noiseless.background_e),
        ("variance_e2", frame.frame.variance_e2),
    ):
        out[name], footprint = reproject_interp(
            (values, frame.wcs), wcs_out, shape_out=shape_out, order="bicubic"
        )
    mask = ~(footprint >= 1.0) | ~np.isfinite(out["data_e"])
    common = dict(variance_e2=np.where(mask, 0.0, out["variance_e2"]), mask=mask, background_e=0.0)
    noisy = replace(frame.frame, data_e=np.where(mask, 0.0, out["data_e"]), **common)
    clean = replace(frame.noiseless, data_e=np.where(mask, 0.0, out["clean_e"]), **common)
    return replace(frame, frame=noisy, noiseless=clean, wcs=wcs_out)
