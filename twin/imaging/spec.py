"""What rendering one exposure needs: the log row's truth plus the telescope.

A :class:`FrameSpec` is built from one row of ``observations.parquet`` and the run's
scenario (:func:`frame_spec`), so a frame can be rendered long after the run, on another
machine, from the run directory alone. Frames may be rendered smaller than the detector
(``nx``, ``ny``) for tests and previews; the optics, sky and noise stay those of the
exposure.

Conventions:

- ``ra_deg``, ``dec_deg``: where the telescope *believes* it points (the request's
  target); the header WCS uses it. The sky actually lands offset by the pointing error:
  true centre = believed + (``pointing_error_ra_arcsec`` / cos dec, ``pointing_error_dec_arcsec``).
- Fluxes in electrons use the exposure-time calculator (:mod:`twin.physics.etc`):
  ``source_electrons`` and ``sky_electrons_per_pixel`` with the log's airmass,
  transparency and the throughput loss, so photometry can be checked against it.
- ``seed`` makes the frame reproducible: the same row and seed give the same pixels.
- ``population``: the sky's own transients, variables and asteroids
  (:mod:`twin.alerts.population`), a function of the sky position, the mid-exposure time
  and ``sky_seed``; carried by the spec so that ``skytwin frame`` after the run and the
  frame in the loop (both through :func:`twin.imaging.frames.spec_for_row`) agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from twin.world.telescope import Telescope

if TYPE_CHECKING:
    from twin.alerts.population.spec import PopulationSpec


@dataclass(frozen=True)
class Transient:
    """A transient in the field: its id, truth position and magnitude at the exposure."""

    alert_id: str
    ra_deg: float
    dec_deg: float
    mag: float


@dataclass(frozen=True)
class FrameSpec:
    obs_id: int
    site: str
    site_height_m: float
    telescope: Telescope
    band: str
    exptime_s: float
    mjd_start: float
    ra_deg: float  # believed pointing (header WCS centre)
    dec_deg: float
    pointing_error_ra_arcsec: float  # true - believed, RA offset times cos(dec)
    pointing_error_dec_arcsec: float
    airmass: float
    alt_deg: float
    az_deg: float
    sky_mag_arcsec2: float
    seeing_fwhm_arcsec: float  # delivered by the atmosphere at this airmass and band
    defocus_fwhm_arcsec: float
    tracking_error_arcsec: float  # image elongation (trail length) from tracking
    tracking_pa_deg: float
    transparency: float
    throughput: float  # mirror/coating relative to new: multiplies all light
    n_hot_pixels: int
    n_bad_columns: int
    moon_illum: float
    moon_sep_deg: float
    seed: int
    nx: int
    ny: int
    transient: Transient | None = None
    target_id: str = ""
    request_id: str = ""
    # Defect positions on the full detector from the equipment model (numpy frame
    # convention): hot pixels as (row, col) pairs, bad columns as column indices. None:
    # draw ``n_hot_pixels`` / ``n_bad_columns`` positions from ``seed``.
    hot_pixels: np.ndarray | None = field(default=None, compare=False)
    bad_columns: np.ndarray | None = field(default=None, compare=False)
    # Rare faults injected into this frame (names from twin.imaging.faults.FAULT_KINDS,
    # drawn by RunFrames from the scenario's imaging.faults rates); () = none.
    faults: tuple[str, ...] = ()
    # The telescope's reference 5σ depth for this band and exposure time (zenith, dark
    # sky, the site's median seeing, clear): a calibration constant the site pipeline
    # knows, written as the header's M5REF so a measured depth becomes a quality score.
    # Derived from the telescope, band and exposure time (already compared), and NaN
    # when unset, which never equals itself: left out of equality.
    m5_ref_mag: float = field(default=math.nan, compare=False)
    # Transients nobody announced, variables, AGN and asteroids (the scenario's
    # imaging.population, twin.alerts.population); None: none (the frame as before).
    population: PopulationSpec | None = None
    # A reference survey's view (twin.alerts.population.frame): variables and AGN at their
    # mean, no transients or asteroids. Set by the deep template.
    population_reference: bool = False

    @property
    def pixel_scale_arcsec(self) -> float:
        return self.telescope.pixel_scale_arcsec

    @property
    def true_ra_deg(self) -> float:
        cos_dec = max(math.cos(math.radians(self.dec_deg)), 1e-6)
        return (self.ra_deg + self.pointing_error_ra_arcsec / 3600.0 / cos_dec) % 360.0

    @property
    def true_dec_deg(self) -> float:
        return self.dec_deg + self.pointing_error_dec_arcsec / 3600.0

    @property
    def image_fwhm_arcsec(self) -> float:
        """Seeing and defocus in quadrature (tracking elongates separately)."""
        return math.hypot(self.seeing_fwhm_arcsec, self.defocus_fwhm_arcsec)

    def resized(self, nx: int, ny: int) -> FrameSpec:
        return replace(self, nx=int(nx), ny=int(ny))


def frame_spec(row: dict, telescope: Telescope, seed: int, nx: int | None = None,
               ny: int | None = None, transient: Transient | None = None) -> FrameSpec:  # fmt: skip
    """The spec of the exposure in ``row`` (a dict of an ``observations.parquet`` row)."""
    return FrameSpec(
        obs_id=int(row["obs_id"]), site=str(row["site"]),
        site_height_m=float(row["site_height_m"]), telescope=telescope, band=str(row["band"]),
        exptime_s=float(row["exptime_s"]), mjd_start=float(row["mjd_start"]),
        ra_deg=float(row["ra_deg"]), dec_deg=float(row["dec_deg"]),
        pointing_error_ra_arcsec=float(row["pointing_error_ra_arcsec"]),
        pointing_error_dec_arcsec=float(row["pointing_error_dec_arcsec"]),
        airmass=float(row["airmass"]), alt_deg=float(row["alt_deg"]), az_deg=float(row["az_deg"]),
        sky_mag_arcsec2=float(row["sky_mag_arcsec2"]),
        seeing_fwhm_arcsec=float(row["seeing_fwhm_arcsec"]),
        defocus_fwhm_arcsec=float(row["defocus_fwhm_arcsec"]),
        tracking_error_arcsec=float(row["tracking_error_arcsec"]),
        tracking_pa_deg=float(row["tracking_pa_deg"]), transparency=float(row["transparency"]),
        throughput=float(row["throughput"]),
        n_hot_pixels=int(row["n_hot_pixels"]), n_bad_columns=int(row["n_bad_columns"]),
        moon_illum=float(row["moon_illum"]), moon_sep_deg=float(row["moon_sep_deg"]),
        seed=int(seed), nx=int(nx or telescope.detector.nx_pix),
        ny=int(ny or telescope.detector.ny_pix), transient=transient,
        target_id=str(row.get("target_id", "")), request_id=str(row.get("request_id", "")),
    )  # fmt: skip
