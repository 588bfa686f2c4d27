"""The constraint engine: which requests one telescope could start now, with features.

Hard constraints filter before anything is scored (DOMAIN.md, "task assignment"): a
request is feasible when, starting after the slew and running its whole visit, the
target stays above the horizon mask and below its airmass limit, the sun stays below its
limit, the moon is far or faint enough (or down), the measured seeing and transparency
meet the request's limits, the visit fits inside one of its windows and before the
night ends. All K open requests are checked at once in numpy; the twin then re-checks
the chosen one exactly at each exposure, so the log never breaks a constraint.
"""

from __future__ import annotations

import numpy as np

from twin.astro.almanac import enu_vectors
from twin.astro.visibility import SiteVisibility
from twin.ops.conditions import Candidates
from twin.ops.quality import QualityModel
from twin.ops.queue import RequestQueue
from twin.ops.slew import slew_time_s
from twin.physics.etc import delivered_seeing_arcsec
from twin.physics.extinction import airmass_from_alt
from twin.physics.sky import sky_mag_arcsec2
from twin.world.telescope import Telescope

S_PER_DAY = 86400.0
SIDEREAL_RATE = 1.0027379  # sidereal hours per solar hour


class CandidateBuilder:
    """Builds :class:`Candidates` for one telescope; caches prepared targets per night."""

    def __init__(self, queue: RequestQueue, visibility: SiteVisibility, telescope: Telescope,
                 quality: QualityModel) -> None:  # fmt: skip
        self.queue = queue
        self.visibility = visibility
        self.site = visibility.site
        self.site_index = queue.site_index(self.site.name)
        self.telescope = telescope
        self.quality = quality
        self._prepared: tuple | None = None
        self._prepared_day = None
        self._prepared_rows = 0
        self._band_centre = {b: telescope.filter(b).center_nm for b in telescope.bands}
        self._visit_s = np.empty(0)
        self._sin_lat = np.sin(np.radians(self.site.lat_deg))
        self._cos_lat = np.cos(np.radians(self.site.lat_deg))

    # -- per-night caches ----------------------------------------------------------
    def _prepare(self, mjd: float) -> tuple:
        day = int(np.floor(mjd))
        queue = self.queue
        if self._prepared is None or day != self._prepared_day:
            self._prepared = self.visibility.prepare(queue.ra_deg, queue.dec_deg, mjd)
            self._prepared_day, self._prepared_rows = day, len(queue)
        elif self._prepared_rows < len(queue):
            new = self.visibility.prepare(
                queue.ra_deg[self._prepared_rows :], queue.dec_deg[self._prepared_rows :], mjd
            )
            old = self._prepared
            self._prepared = (
                *(np.concatenate([a, b]) for a, b in zip(old[:3], new[:3], strict=True)),
                old[3],
            )
            self._prepared_rows = len(queue)
        if len(self._visit_s) < len(queue):
            q = queue
            self._visit_s = (q.exptime_s + q.n_exposures * self.telescope.readout_s
                             + q.n_filter_changes * self.telescope.filter_change_s)  # fmt: skip
        return self._prepared

    def visit_s(self, rows: np.ndarray) -> np.ndarray:
        return self._visit_s[rows]

    def altaz(self, rows: np.ndarray, mjd: np.ndarray | float) -> tuple:
        """(alt_deg, az_deg, hour_angle_h) of queue rows at times (per row or shared)."""
        ra, sin_dec, cos_dec, dut1 = self._prepare(float(np.min(mjd)))
        return self.visibility.altaz_prepared((ra[rows], sin_dec[rows], cos_dec[rows], dut1), mjd)

    # -- the constraint engine -------------------------------------------------------
    def build(
        self, mjd: float, alt_deg: float, az_deg: float, band: str | None,
        seeing_zenith_arcsec: float, transparency: float, night_end_mjd: float,
    ) -> Candidates:  # fmt: skip
        queue = self.queue
        rows = queue.open_rows(self.site_index, mjd)
        if rows.size == 0:
            return Candidates.empty()
        self._prepare(mjd)
        alt_now, az_now, _ = self.altaz(rows, mjd)
        first_band = np.asarray(queue.first_band, dtype=object)[rows]
        slew = np.asarray(
            slew_time_s(self.telescope, alt_deg, az_deg, alt_now, az_now, band,
                        first_band.astype(str) if band is not None else None),
            dtype=float,
        ) * np.ones(rows.size)  # fmt: skip
        visit = self._visit_s[rows]
        t_start = mjd + slew / S_PER_DAY
        t_end = t_start + visit / S_PER_DAY
        alt0, az0, ha0 = self.altaz(rows, t_start)
        alt1, az1, _ = self.altaz(rows, t_end)
        x0, x1 = airmass_from_alt(alt0), airmass_from_alt(alt1)
        almanac = self.visibility.almanac
        sun0, sun1 = almanac.sun_alt_deg(t_start), almanac.sun_alt_deg(t_end)
        moon = almanac.moon_enu(t_start)
        target = enu_vectors(alt0, az0)
        moon_sep = np.degrees(np.arccos(np.clip(np.sum(target * moon, axis=-1), -1.0, 1.0)))
        moon_alt = np.degrees(np.arcsin(np.clip(moon[..., 2], -1.0, 1.0)))
        moon_illum = float(almanac.moon_illum(mjd))
        horizon = self.site.horizon_min_alt_deg
        centre = np.array([self._band_centre[b] for b in first_band])
        seeing = delivered_seeing_arcsec(seeing_zenith_arcsec, x0, centre)
        windows_ok = (
            (t_start[:, None] >= queue.window_start[rows])
            & (t_end[:, None] <= queue.window_end[rows])
        ).any(axis=1)
        moon_ok = (moon_alt < 0.0) | (
            (moon_sep >= queue.min_moon_sep_deg[rows]) & (moon_illum <= queue.max_moon_illum[rows])
        )
        feasible = (
            (alt0 >= horizon(az0)) & (alt1 >= horizon(az1))
            & (x0 <= queue.max_airmass[rows]) & (x1 <= queue.max_airmass[rows])
            & (sun0 <= queue.max_sun_alt_deg[rows]) & (sun1 <= queue.max_sun_alt_deg[rows])
            & moon_ok & windows_ok & (t_end <= night_end_mjd)
            & (seeing <= queue.max_seeing_arcsec[rows])
            & (transparency >= queue.min_transparency[rows])
        )  # fmt: skip
        quality = np.zeros(rows.size)
        idx = np.flatnonzero(feasible)
        if idx.size:
            quality[idx] = self._expected_quality(
                rows[idx], first_band[idx], alt0[idx], x0[idx], seeing[idx], moon_sep[idx],
                moon_alt[idx], moon_illum, sun0[idx], transparency,
            )  # fmt: skip
        return Candidates(
            request_index=rows,
            priority=queue.priority[rows],
            program_index=queue.program_index[rows],
            is_alert=queue.is_alert[rows],
            alt_deg=alt0,
            az_deg=az0,
            airmass=x0,
            airmass_end=x1,
            hour_angle_h=ha0,
            moon_sep_deg=moon_sep,
            slew_s=slew,
            visit_s=visit,
            quality=quality,
            value=queue.priority[rows] * quality,
            setting_h=self._hours_to_limit(rows, ha0),
            visits_left=queue.visits_left(rows),
            feasible=feasible,
        )

    def _expected_quality(self, rows, bands, alt, airmass, seeing, moon_sep, moon_alt,
                          moon_illum, sun_alt, transparency) -> np.ndarray:  # fmt: skip
        """Quality of the visit's first exposure from measured conditions (no equipment
        truth: the scheduler does not know the focus drift or the mirror's dust)."""
        queue = self.queue
        out = np.empty(rows.size)
        exptime = queue.exptime_s[rows] / queue.n_exposures[rows]
        for band in np.unique(bands):
            sel = bands == band
            sky = sky_mag_arcsec2(
                band,
                alt[sel],
                moon_alt[sel],
                moon_sep[sel],
                moon_illum,
                sun_alt[sel],
                self.site.sky_brightening_mag,
                self.site.height_m,
            )
            for t in np.unique(exptime[sel]):
                sub = exptime[sel] == t
                depth = self.quality.depth(
                    band, t, airmass=airmass[sel][sub], seeing_fwhm_arcsec=seeing[sel][sub],
                    sky_mag_arcsec2=sky[sub], transparency=transparency,
                )  # fmt: skip
                target = np.flatnonzero(sel)[sub]
                out[target] = self.quality.quality(band, t, depth)
        return out

    def _hours_to_limit(self, rows: np.ndarray, ha_h: np.ndarray) -> np.ndarray:
        """Solar hours until the target passes its airmass limit westward (inf: never)."""
        dec = np.radians(self.queue.dec_deg[rows])
        alt_lim = np.arcsin(1.0 / self.queue.max_airmass[rows])
        cos_h = (np.sin(alt_lim) - self._sin_lat * np.sin(dec)) / (self._cos_lat * np.cos(dec))
        h_lim = np.degrees(np.arccos(np.clip(cos_h, -1.0, 1.0))) / 15.0
        hours = (h_lim - ha_h) / SIDEREAL_RATE
        return np.where(cos_h <= -1.0, np.inf, np.maximum(hours, 0.0))
