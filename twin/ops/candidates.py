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

import functools
import math

import numpy as np

from twin.astro.almanac import enu_vectors
from twin.astro.visibility import SiteVisibility
from twin.ops.conditions import Candidates
from twin.ops.quality import QualityModel
from twin.ops.queue import RequestQueue
from twin.ops.slew import slew_time_s
from twin.physics.extinction import airmass_from_alt
from twin.physics.sky import sky_mag_arcsec2
from twin.programme import constraints
from twin.world.telescope import Telescope

S_PER_DAY = 86400.0
SIDEREAL_RATE = 1.0027379  # sidereal hours per solar hour
# Margins keep the log strictly inside every limit although the engine uses the fast
# prepared astrometry (< 0.5" from the full path that writes the log).
AIRMASS_MARGIN = 1e-4
ANGLE_MARGIN_DEG = 0.02
MOON_MOTION_DEG_PER_S = 1.0 / 3600.0
"""Bound on how fast the topocentric moon moves against the stars: ~0.55 deg/h orbital
motion plus up to ~0.25 deg/h from the changing diurnal parallax."""
HORIZON_SLACK_DEG = 2.0
"""A horizon mask that varies with azimuth is read at the azimuth before the slew; the
target moves a few degrees in azimuth by the visit's end, so the mask gets this slack."""
SKY_SLOT_MIN = 60.0
SLOT_MIN = 15.0
SLOT_AIRMASS_SLACK = 0.15
"""Per night, a coarse grid (every ``SLOT_MIN`` minutes) keeps for each slot only the rows
within ``SLOT_AIRMASS_SLACK`` of their airmass limit in that slot or the next: a superset
of what can be feasible, so decisions check a few hundred rows rather than all."""
SLOT_GRID_SPAN_D = 0.75
"""The longest a slot grid reaches (days): the whole of any night off the polar circles,
and what a grid built without a night's end (by day) covers."""


def alt_for_airmass(airmass: np.ndarray) -> np.ndarray:
    """Altitude (deg) where the logged (Pickering 2002) airmass equals ``airmass``: the
    inverse of :func:`twin.physics.extinction.airmass_from_alt`, by interpolation on a
    fine grid (the airmass falls monotonically with altitude)."""
    x, alt = _airmass_grid()
    return np.interp(np.asarray(airmass, dtype=float), x, alt)


@functools.cache
def _airmass_grid() -> tuple[np.ndarray, np.ndarray]:
    """(airmass, altitude) on the grid, airmass increasing; built once (it is called at
    every slot grid and every growth of the queue)."""
    grid = np.linspace(0.5, 90.0, 20001)
    x = airmass_from_alt(grid)
    x, grid = x[::-1].copy(), grid[::-1].copy()
    x.flags.writeable = grid.flags.writeable = False
    return x, grid


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
        mask = np.asarray(self.site.horizon_alt_deg, dtype=float)
        self._flat_horizon = float(mask[0]) if np.all(mask == mask[0]) else None
        self._alt_min_airmass = np.empty(0)

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
            self._update_groups()
        return self._prepared

    def _sin_alt_min(self, rows: np.ndarray, az_deg: np.ndarray, airmass_field: str | None
                     ) -> np.ndarray:  # fmt: skip
        """sin of the lowest altitude allowed: the airmass limit (the column
        ``airmass_field``; None: none) or the horizon mask (with margins), whichever is
        higher. A mask that is not flat is read at the current azimuth, with a wider
        margin for the slew and the visit."""
        if airmass_field is None:
            limit = np.full(rows.size, -90.0)
        else:
            if len(self._alt_min_airmass) < len(self.queue):
                self._alt_min_airmass = (
                    alt_for_airmass(self.queue.limits[airmass_field]) + ANGLE_MARGIN_DEG
                )
            limit = self._alt_min_airmass[rows]
        if self._flat_horizon is not None:
            horizon = self._flat_horizon + ANGLE_MARGIN_DEG
        else:
            horizon = self.site.horizon_min_alt_deg(az_deg) + HORIZON_SLACK_DEG
        return np.sin(np.radians(np.maximum(limit, horizon)))

    def _moon_enu(self, mjd: float) -> np.ndarray:
        """The moon's east-north-up unit vector (interpolated; no span check: hot path)."""
        alm = self.visibility.almanac
        grid = alm._moon_enu
        i = min(max(int((mjd - alm.mjd[0]) / alm.step_d), 0), len(alm.mjd) - 2)
        f = (mjd - alm.mjd[i]) / alm.step_d
        v = grid[i] + f * (grid[i + 1] - grid[i])
        return v / np.sqrt(v @ v)

    def _update_groups(self) -> None:
        """Rows grouped by the (band, exposure time) of their first exposure: depths are
        computed per group."""
        keys = getattr(self, "_group_key", [])
        index = {k: i for i, k in enumerate(keys)}
        groups = list(getattr(self, "_groups", np.empty(0, dtype=np.int64)))
        for request in self.queue.requests[len(groups) :]:
            key = (request.plan[0].band, float(request.plan[0].exptime_s))
            if key not in index:
                index[key] = len(keys)
                keys.append(key)
            groups.append(index[key])
        self._group_key = keys
        self._groups = np.asarray(groups, dtype=np.int64)
        self._group_band = np.array([k[0] for k in keys], dtype=object)
        # The sky depends on the band only: _fill_sky batches the groups of one band.
        self._sky_bands = sorted({k[0] for k in keys})
        self._group_sky_band = np.array([self._sky_bands.index(k[0]) for k in keys], dtype=np.int64)
        self._group_seeing_factor = np.array(
            [(self._band_centre[k[0]] / 500.0) ** -0.2 for k in keys]
        )

    def seeing_factor(self, band: str, airmass_start: float, airmass_end: float) -> float:
        """Zenith-500nm seeing to the delivered FWHM in ``band`` at the visit's worst airmass."""
        return max(airmass_start, airmass_end) ** 0.6 * (self._band_centre[band] / 500.0) ** -0.2

    def _slot_rows(self, mjd: float, until_mjd: float = math.nan) -> np.ndarray:
        """Mask of rows possibly up in the slot containing ``mjd``. The grid is built when
        ``mjd`` is past it (a night's first decision) and runs to ``until_mjd``, the
        night's end (``SLOT_GRID_SPAN_D`` at most, or without one): one grid a night, not
        one per UTC day reaching 18 h into the day."""
        k = self._slot_k(mjd)
        if k < 0:
            self._build_slot_grid(mjd, until_mjd)
            k = 0
        col = self._slot_ok[:, k]
        if col.size < len(self.queue):  # rows added since (alerts): always considered
            col = np.concatenate([col, np.ones(len(self.queue) - col.size, dtype=bool)])
        return col

    def _slot_k(self, mjd: float) -> int:
        """The column of the slot grid for ``mjd``; -1 when the grid does not cover it."""
        ok = getattr(self, "_slot_ok", None)
        if ok is None or mjd < self._slot_t0:
            return -1
        k = int((mjd - self._slot_t0) * 1440.0 / SLOT_MIN)
        return k if k < ok.shape[1] - 1 else -1

    def _build_slot_grid(self, mjd: float, until_mjd: float) -> None:
        step = SLOT_MIN / 1440.0
        span = until_mjd - mjd if until_mjd > mjd else SLOT_GRID_SPAN_D  # False for NaN
        grid = mjd + np.arange(0.0, min(span, SLOT_GRID_SPAN_D) + 2.0 * step, step)
        ra, sin_dec, cos_dec, dut1 = self._prepare(mjd)
        frame = self.visibility.frame
        era = frame.orientation.earth_rotation_angle_rad(grid, dut1)
        # Rows whose last window has closed can never be feasible again (a year's
        # expired alerts are half the queue by December): they stay off the grid.
        live = np.flatnonzero(~(self.queue.last_window_end() < mjd))
        cos_h = np.cos(era[None, :] + frame._lon_rad - ra[live, None])
        sin_alt = (self._sin_lat * sin_dec[live])[:, None] + (self._cos_lat * cos_dec[live])[
            :, None
        ] * cos_h
        slack_alt = alt_for_airmass(self.queue.max_airmass[live] + SLOT_AIRMASS_SLACK)
        ok_live = sin_alt >= np.sin(np.radians(slack_alt))[:, None]
        ok_live[:, :-1] |= ok_live[:, 1:]
        ok = np.zeros((ra.size, grid.size), dtype=bool)
        ok[live] = ok_live
        self._slot_t0, self._slot_ok = mjd, ok

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
        self._prepare(mjd)
        rows = queue.open_rows(self.site_index, mjd, self._slot_rows(mjd, night_end_mjd))
        if rows.size == 0:
            return Candidates.empty()
        groups = self._groups[rows]
        ra, sin_dec, cos_dec, dut1 = self._prepared
        sub = (ra[rows], sin_dec[rows], cos_dec[rows], dut1)
        alt_now, az_now, _ = self.visibility.altaz_prepared(sub, mjd)
        slew = self._slew_s(alt_deg, az_deg, band, alt_now, az_now, groups)
        visit = self._visit_s[rows]
        t_start = mjd + slew / S_PER_DAY
        t_end = t_start + visit / S_PER_DAY
        # Start and end only need sin(alt) = A + B cos(H): one cosine per row and time.
        frame = self.visibility.frame
        era = frame.orientation.earth_rotation_angle_rad(np.concatenate([t_start, t_end]), dut1)
        n = rows.size
        h01 = era + frame._lon_rad - np.concatenate([sub[0], sub[0]])
        a = self._sin_lat * sub[1]
        b = self._cos_lat * sub[2]
        sin_alt01 = np.concatenate([a, a]) + np.concatenate([b, b]) * np.cos(h01)
        sin_alt0, sin_alt1 = sin_alt01[:n], sin_alt01[n:]
        alt0 = np.degrees(np.arcsin(np.clip(sin_alt0, -1.0, 1.0)))
        with np.errstate(divide="ignore"):
            # Plane-parallel sec(z) >= the logged (Pickering) airmass: conservative.
            x0 = np.where(sin_alt0 > 0.0, 1.0 / sin_alt0, np.inf)
            x1 = np.where(sin_alt1 > 0.0, 1.0 / sin_alt1, np.inf)
        ha0 = np.mod(np.degrees(h01[:n]) / 15.0 + 12.0, 24.0) - 12.0
        az0 = az_now  # for features and the next slew: the slew moves it < 0.3 deg
        alm = self.visibility.almanac
        sun01 = np.interp(np.concatenate([t_start, t_end]), alm.mjd, alm.sun_alt_deg_grid)
        sun0, sun1 = sun01[:n], sun01[n:]
        # Target and moon both now (the sky turns 15 deg/h under both alike); the moon's
        # own motion and changing parallax until the visit ends are covered by the margin.
        moon = self._moon_enu(mjd)
        cos_alt = np.cos(np.radians(alt_now))
        az_rad = np.radians(az_now)
        target_dot_moon = (cos_alt * np.sin(az_rad) * moon[0]
                           + cos_alt * np.cos(az_rad) * moon[1]
                           + np.sin(np.radians(alt_now)) * moon[2])  # fmt: skip
        moon_sep = np.degrees(np.arccos(np.clip(target_dot_moon, -1.0, 1.0)))
        moon_alt = float(np.degrees(np.arcsin(min(max(moon[2], -1.0), 1.0))))
        moon_illum = float(np.interp(mjd, alm.mjd, alm.moon_illum_grid))
        seeing0 = seeing_zenith_arcsec * x0**0.6 * self._group_seeing_factor[groups]
        seeing_worst = (
            seeing_zenith_arcsec * np.maximum(x0, x1) ** 0.6 * self._group_seeing_factor[groups]
        )
        windows_ok = (
            (t_start[:, None] >= queue.window_start[rows])
            & (t_end[:, None] <= queue.window_end[rows])
        ).any(axis=1)
        m = ANGLE_MARGIN_DEG + MOON_MOTION_DEG_PER_S * (slew + visit)
        # Each rule's value at the ends it holds at, and the margin that keeps the log
        # inside it (the airmass limit is folded with the horizon mask, as an altitude).
        values = {
            "alt_deg": lambda: (alt0, np.degrees(np.arcsin(np.clip(sin_alt1, -1.0, 1.0)))),
            "sun_alt_deg": lambda: (sun0, sun1),
            "moon_sep_deg": lambda: (moon_sep,),
            "moon_illum": lambda: (moon_illum,),
            "seeing_fwhm_arcsec": lambda: (seeing_worst,),
            "transparency": lambda: (transparency,),
        }
        margins = {"alt_deg": ANGLE_MARGIN_DEG, "sun_alt_deg": ANGLE_MARGIN_DEG, "moon_sep_deg": m}
        feasible = windows_ok & (t_end <= night_end_mjd)
        moon_rules = np.ones(n, dtype=bool)
        airmass_field = None
        for rule in constraints.rules():
            if rule.quantity == "airmass":
                airmass_field = rule.field
                continue
            limit = queue.limits[rule.field][rows]
            margin = margins.get(rule.quantity)
            if margin is not None:
                limit = limit - margin if rule.sense == "max" else limit + margin
            ends = values[rule.quantity]()
            passed = rule.ok(ends[0], limit)
            if "end" in rule.ends:
                passed = passed & rule.ok(ends[1], limit)
            if rule.moon_up_only:
                moon_rules &= passed
            else:
                feasible &= passed
        feasible &= (moon_alt < -m) | moon_rules
        sin_min = self._sin_alt_min(rows, az0, airmass_field)
        feasible &= (sin_alt0 >= sin_min) & (sin_alt1 >= sin_min)
        quality = np.zeros(rows.size)
        idx = np.flatnonzero(feasible)
        if idx.size:
            quality[idx] = self._expected_quality(
                rows[idx], groups[idx], x0[idx], seeing0[idx], transparency, mjd
            )
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
            visits_done=queue.visits_done[rows],
            feasible=feasible,
        )

    def _slew_s(self, alt_deg, az_deg, band, alt_to, az_to, groups) -> np.ndarray:
        slew = np.asarray(slew_time_s(self.telescope, alt_deg, az_deg, alt_to, az_to),
                          dtype=float) * np.ones(alt_to.size)  # fmt: skip
        if band is not None:
            change = self._group_band[groups] != band
            slew = np.where(change, np.maximum(slew, self.telescope.filter_change_s), slew)
        return slew

    def _expected_quality(self, rows, groups, airmass, seeing, transparency, mjd) -> np.ndarray:
        """Quality of the visit's first exposure from measured conditions (no equipment
        truth: the scheduler does not know the focus drift or the mirror's dust). The sky
        brightness of each row is computed once per slot (it changes slowly)."""
        sky = self._slot_sky(rows, mjd)
        out = np.empty(rows.size)
        for g in np.unique(groups):
            sel = groups == g
            band, exptime = self._group_key[g]
            depth = self.quality.depth(band, exptime, airmass=airmass[sel],
                                       seeing_fwhm_arcsec=seeing[sel], sky_mag_arcsec2=sky[sel],
                                       transparency=transparency)  # fmt: skip
            out[sel] = self.quality.quality(band, exptime, depth)
        return out

    def _slot_sky(self, rows: np.ndarray, mjd: float) -> np.ndarray:
        """Sky brightness (first band of each row) at the middle of the current
        ``SKY_SLOT_MIN`` slot, computed once per slot for every row that may be up and open
        in it: an estimate for the scheduler's expected quality (the log has the exact
        value)."""
        slot = int(mjd * 1440.0 / SKY_SLOT_MIN)
        if getattr(self, "_sky_slot", None) != slot or self._sky.size < len(self.queue):
            self._sky_slot = slot
            self._sky = np.full(len(self.queue), np.nan)
            k = int((mjd - self._slot_t0) * 1440.0 / SLOT_MIN)
            width = int(SKY_SLOT_MIN / SLOT_MIN)
            up = self._slot_ok[:, k : k + width].any(axis=1)
            up = np.concatenate([up, np.ones(len(self.queue) - up.size, dtype=bool)])
            # Only rows that may open in the slot: on dense-8site three in four of the rows
            # up wait out their cadence. One this misses (a visit repeated) is filled below
            # when asked for, with the same values (the sky is computed row by row).
            up &= self.queue.openable(self.site_index, (slot + 1) * SKY_SLOT_MIN / 1440.0)
            self._fill_sky(np.flatnonzero(up), (slot + 0.5) * SKY_SLOT_MIN / 1440.0)
        sky = self._sky[rows]
        todo = np.isnan(sky)
        if todo.any():  # rows the slot's superset missed (rare)
            self._fill_sky(rows[todo], (slot + 0.5) * SKY_SLOT_MIN / 1440.0)
            sky = self._sky[rows]
        return sky

    def _fill_sky(self, rows: np.ndarray, t_mid: float) -> None:
        if rows.size == 0:
            return
        alt, az, _ = self.altaz(rows, t_mid)
        alm = self.visibility.almanac
        moon = self._moon_enu(t_mid)
        sep = np.degrees(np.arccos(np.clip(enu_vectors(alt, az) @ moon, -1.0, 1.0)))
        moon_alt = float(np.degrees(np.arcsin(np.clip(moon[2], -1.0, 1.0))))
        sun_alt = float(np.interp(t_mid, alm.mjd, alm.sun_alt_deg_grid))
        illum = float(np.interp(t_mid, alm.mjd, alm.moon_illum_grid))
        bands = self._group_sky_band[self._groups[rows]]
        values = np.empty(rows.size)
        for band in np.unique(bands):
            sel = bands == band
            values[sel] = sky_mag_arcsec2(
                self._sky_bands[band], np.maximum(alt[sel], 1.0), moon_alt, sep[sel], illum,
                min(sun_alt, 0.0), self.site.sky_brightening_mag, self.site.height_m,
            )  # fmt: skip
        self._sky[rows] = values

    def _hours_to_limit(self, rows: np.ndarray, ha_h: np.ndarray) -> np.ndarray:
        """Solar hours until the target passes its airmass limit westward (inf: never)."""
        dec = np.radians(self.queue.dec_deg[rows])
        alt_lim = np.arcsin(1.0 / self.queue.max_airmass[rows])
        cos_h = (np.sin(alt_lim) - self._sin_lat * np.sin(dec)) / (self._cos_lat * np.cos(dec))
        h_lim = np.degrees(np.arccos(np.clip(cos_h, -1.0, 1.0))) / 15.0
        hours = (h_lim - ha_h) / SIDEREAL_RATE
        return np.where(cos_h <= -1.0, np.inf, np.maximum(hours, 0.0))
