"""The constraint engine's fast path: the same candidates, with per-request state kept.

Why: :class:`~twin.ops.candidates.CandidateBuilder` (the reference) recomputes at every
decision what changes only once a night or when the queue grows (the rows' sin/cos of
declination times the site's latitude, the altitude each airmass limit means, the hour
angle at which each target sets, the rows of each slot), and pays numpy's call overhead
on a few hundred rows for each step. This builder keeps those per request, checks the
queue's progress on the slot's rows only, and inlines the slew and the Earth rotation
angle. Every value is computed with the same floating-point operations, in the same
order, as the reference's, so the two give bit-identical candidates, and runs give
identical logs (``tests/twin/ops/test_ops_engine_paths.py`` checks every shipped
scenario). Change the reference first, then this, and let the test compare them.
"""

from __future__ import annotations

import numpy as np

from twin.ops.candidates import (
    ANGLE_MARGIN_DEG,
    MOON_MOTION_DEG_PER_S,
    S_PER_DAY,
    SIDEREAL_RATE,
    CandidateBuilder,
)
from twin.ops.conditions import Candidates
from twin.ops.quality import TEFF_DEX_PER_MAG, QualityModel
from twin.ops.queue import UNLIMITED
from twin.physics.etc import _GAUSSIAN_NEA_PER_FWHM2 as _NEA
from twin.physics.etc import _PIXELISATION_NEA as _PIX_NEA
from twin.physics.extinction import extinction_coefficient
from twin.programme import constraints

_TWO_PI = 2 * np.pi
_ZERO = np.asarray(0.0, dtype=float)  # etc.source_rate_e_per_s's source_mag=0.0


class IncrementalCandidateBuilder(CandidateBuilder):
    """:class:`CandidateBuilder` with per-request state; identical :class:`Candidates`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rows_n = 0  # queue rows the per-row columns below cover
        self._night_key = None
        mount = self.telescope.mount
        self._slew_consts = (
            mount.max_speed_alt_deg_s,
            mount.max_speed_az_deg_s,
            mount.accel_deg_s2,
            self.telescope.dome.rotation_speed_deg_s,
            mount.settle_s,
            self.telescope.filter_change_s,
        )
        self._slot_cache: tuple | None = None
        self._depth_consts: dict[int, tuple] = {}  # per (band, exposure time) group

    # -- state per request -----------------------------------------------------------
    def _per_row(self) -> None:
        """Columns that depend on the request only (grown when the queue grows)."""
        queue, n = self.queue, len(self.queue)
        if self._rows_n == n:
            return
        self._rows_n = n
        rules = constraints.rules()
        self._rules = rules
        self._airmass_field = next((r.field for r in rules if r.quantity == "airmass"), None)
        self._seeing_factor_row = self._group_seeing_factor[self._groups]
        self._cadence0 = np.nan_to_num(queue.cadence_days, nan=0.0)
        # A first window of (-inf, inf) (no windows) contains every visit.
        self._any_time = np.isneginf(queue.window_start[:, 0]) & np.isposinf(queue.window_end[:, 0])
        self._all_any_time = bool(self._any_time.all())
        # _hours_to_limit's hour angle of the airmass limit, per row.
        dec = np.radians(queue.dec_deg)
        alt_lim = np.arcsin(1.0 / queue.max_airmass)
        cos_h = (np.sin(alt_lim) - self._sin_lat * np.sin(dec)) / (self._cos_lat * np.cos(dec))
        self._h_lim = np.degrees(np.arccos(np.clip(cos_h, -1.0, 1.0))) / 15.0
        self._never_sets = cos_h <= -1.0
        self._night_key = None

    def _per_night(self) -> None:
        """sin(lat) sin(dec) and cos(lat) cos(dec) of the prepared rows (per night)."""
        key = (self._prepared_day, self._prepared_rows, self._rows_n)
        if self._night_key == key:
            return
        self._night_key = key
        ra, sin_dec, cos_dec, dut1 = self._prepared
        self._ra, self._sin_dec, self._cos_dec, self._dut1 = ra, sin_dec, cos_dec, dut1
        self._a = self._sin_lat * sin_dec
        self._b = self._cos_lat * cos_dec
        frame = self.visibility.frame
        self._lat_sin, self._lat_cos = frame._sin_lat, frame._cos_lat
        self._dut1_d = dut1 / 86400.0
        if self._flat_horizon is not None:
            limit = (
                np.full(self._rows_n, -90.0)
                if self._airmass_field is None
                else self._alt_min(self._airmass_field)
            )
            self._sin_min_flat = np.sin(
                np.radians(np.maximum(limit, self._flat_horizon + ANGLE_MARGIN_DEG))
            )

    def _alt_min(self, field: str) -> np.ndarray:
        if len(self._alt_min_airmass) < len(self.queue):
            self._sin_alt_min(np.empty(0, dtype=np.int64), np.empty(0), field)
        return self._alt_min_airmass

    def _open_rows(self, mjd: float, until_mjd: float) -> np.ndarray:
        """The reference's ``queue.open_rows(site, mjd, slot mask)``, on the slot's rows."""
        r = self._slot_index(mjd, until_mjd)
        return r[self.queue.openable(self.site_index, mjd, r) & ~self.queue.in_progress[r]]

    def _slot_index(self, mjd: float, until_mjd: float) -> np.ndarray:
        """``flatnonzero(self._slot_rows(mjd, until_mjd))``, kept while the slot and the
        queue last."""
        n, cache = len(self.queue), self._slot_cache
        k = self._slot_k(mjd)
        if cache is not None and k >= 0 and cache[0] == (self._slot_t0, k, n):
            return cache[1]
        index = np.flatnonzero(self._slot_rows(mjd, until_mjd))  # may rebuild the slot grid
        self._slot_cache = ((self._slot_t0, self._slot_k(mjd), n), index)
        return index

    # -- the constraint engine -------------------------------------------------------
    def build(
        self, mjd: float, alt_deg: float, az_deg: float, band: str | None,
        seeing_zenith_arcsec: float, transparency: float, night_end_mjd: float,
    ) -> Candidates:  # fmt: skip
        queue = self.queue
        if len(queue) == 0:  # nothing requested yet (no programme; alerts may come later)
            return Candidates.empty()
        self._prepare(mjd)
        self._per_row()
        rows = self._open_rows(mjd, night_end_mjd)
        if rows.size == 0:
            return Candidates.empty()
        self._per_night()
        n = rows.size
        groups = self._groups[rows]
        ra = self._ra[rows]
        sin_dec, cos_dec = self._sin_dec[rows], self._cos_dec[rows]
        dut1_d = self._dut1_d
        lon = self.visibility.frame._lon_rad
        # Now (SiteFrame.altaz_prepared at one time, without the hour angle).
        tu = mjd + dut1_d - 51544.5
        era_now = _TWO_PI * ((tu % 1.0 + 0.7790572732640 + 0.00273781191135448 * tu) % 1.0)
        ha = era_now + lon - ra
        cos_ha = np.cos(ha)
        alt_now = np.degrees(
            np.arcsin(np.clip(self._lat_sin * sin_dec + self._lat_cos * cos_dec * cos_ha, -1, 1))
        )
        y = -cos_dec * np.sin(ha)
        x = self._lat_cos * sin_dec - self._lat_sin * cos_dec * cos_ha
        az_now = np.degrees(np.mod(np.arctan2(y, x), _TWO_PI))
        slew = self._slew(alt_deg, az_deg, band, alt_now, az_now, groups)
        visit = self._visit_s[rows]
        t_start = mjd + slew / S_PER_DAY
        t_end = t_start + visit / S_PER_DAY
        h0 = self._era(t_start, dut1_d) + lon - ra
        h1 = self._era(t_end, dut1_d) + lon - ra
        a, b = self._a[rows], self._b[rows]
        sin_alt0 = a + b * np.cos(h0)
        sin_alt1 = a + b * np.cos(h1)
        alt0 = np.degrees(np.arcsin(np.clip(sin_alt0, -1.0, 1.0)))
        x0 = np.full(n, np.inf)
        np.divide(1.0, sin_alt0, out=x0, where=sin_alt0 > 0.0)
        x1 = np.full(n, np.inf)
        np.divide(1.0, sin_alt1, out=x1, where=sin_alt1 > 0.0)
        ha0 = np.mod(np.degrees(h0) / 15.0 + 12.0, 24.0) - 12.0
        az0 = az_now
        alm = self.visibility.almanac
        sun0 = np.interp(t_start, alm.mjd, alm.sun_alt_deg_grid)
        sun1 = np.interp(t_end, alm.mjd, alm.sun_alt_deg_grid)
        moon = self._moon_enu(mjd)
        alt_rad = np.radians(alt_now)
        cos_alt = np.cos(alt_rad)
        az_rad = np.radians(az_now)
        target_dot_moon = (cos_alt * np.sin(az_rad) * moon[0]
                           + cos_alt * np.cos(az_rad) * moon[1]
                           + np.sin(alt_rad) * moon[2])  # fmt: skip
        moon_sep = np.degrees(np.arccos(np.clip(target_dot_moon, -1.0, 1.0)))
        moon_alt = float(np.degrees(np.arcsin(min(max(moon[2], -1.0), 1.0))))
        moon_illum = float(np.interp(mjd, alm.mjd, alm.moon_illum_grid))
        factor = self._seeing_factor_row[rows]
        seeing0 = seeing_zenith_arcsec * x0**0.6 * factor
        seeing_worst = seeing_zenith_arcsec * np.maximum(x0, x1) ** 0.6 * factor
        feasible = t_end <= night_end_mjd
        if not self._all_any_time:
            timed = np.flatnonzero(~self._any_time[rows])
            if timed.size:
                r = rows[timed]
                inside = (
                    (t_start[timed, None] >= queue.window_start[r])
                    & (t_end[timed, None] <= queue.window_end[r])
                ).any(axis=1)
                feasible[timed] &= inside
        m = ANGLE_MARGIN_DEG + MOON_MOTION_DEG_PER_S * (slew + visit)
        values = {
            "sun_alt_deg": (sun0, sun1),
            "moon_sep_deg": (moon_sep,),
            "moon_illum": (moon_illum,),
            "seeing_fwhm_arcsec": (seeing_worst,),
            "transparency": (transparency,),
        }
        margins = {"alt_deg": ANGLE_MARGIN_DEG, "sun_alt_deg": ANGLE_MARGIN_DEG, "moon_sep_deg": m}
        moon_rules = None
        for rule in self._rules:
            if rule.quantity == "airmass":
                continue
            if rule.quantity == "alt_deg":
                values["alt_deg"] = (alt0, np.degrees(np.arcsin(np.clip(sin_alt1, -1.0, 1.0))))
            limit = queue.limits[rule.field][rows]
            margin = margins.get(rule.quantity)
            if margin is not None:
                limit = limit - margin if rule.sense == "max" else limit + margin
            ends = values[rule.quantity]
            if rule.sense == "max":
                passed = ends[0] <= limit
                if "end" in rule.ends:
                    passed &= ends[1] <= limit
            else:
                passed = ends[0] >= limit
                if "end" in rule.ends:
                    passed &= ends[1] >= limit
            if rule.moon_up_only:
                moon_rules = passed if moon_rules is None else moon_rules & passed
            else:
                feasible &= passed
        if moon_rules is not None:
            feasible &= (moon_alt < -m) | moon_rules
        if self._flat_horizon is not None:
            sin_min = self._sin_min_flat[rows]
        else:
            sin_min = self._sin_alt_min(rows, az0, self._airmass_field)
        feasible &= sin_alt0 >= sin_min
        feasible &= sin_alt1 >= sin_min
        quality = np.zeros(n)
        idx = np.flatnonzero(feasible)
        if idx.size:
            quality[idx] = self._expected_quality(
                rows[idx], groups[idx], x0[idx], seeing0[idx], transparency, mjd
            )
        priority = queue.priority[rows]
        hours = (self._h_lim[rows] - ha0) / SIDEREAL_RATE
        setting = np.where(self._never_sets[rows], np.inf, np.maximum(hours, 0.0))
        wanted = queue.visits_wanted[rows]
        done = queue.visits_done[rows]
        return Candidates(
            request_index=rows,
            priority=priority,
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
            value=priority * quality,
            setting_h=setting,
            visits_left=np.where(wanted == UNLIMITED, UNLIMITED, wanted - done),
            visits_done=done,
            feasible=feasible,
        )

    def _expected_quality(self, rows, groups, airmass, seeing, transparency, mjd) -> np.ndarray:
        """The reference's expected quality with the exposure-time calculator's m5 and the
        quality model's ratio written out per (band, exposure time), their constants
        kept: the same operations on the same values as ``QualityModel.depth`` and
        ``.quality`` (a quality model replaced or patched takes the reference's way)."""
        if not self._quality_inlined():
            return super()._expected_quality(rows, groups, airmass, seeing, transparency, mjd)
        sky = self._slot_sky(rows, mjd)
        t_eff = np.asarray(transparency) * np.asarray(1.0)  # depth(): x throughput 1
        unique = np.unique(groups)
        if unique.size == 1:
            return self._quality_of(int(unique[0]), airmass, seeing, sky, t_eff)
        out = np.empty(rows.size)
        for g in unique:
            sel = groups == g
            out[sel] = self._quality_of(int(g), airmass[sel], seeing[sel], sky[sel], t_eff)
        return out

    def _quality_inlined(self) -> bool:
        """Whether the quality model is the plain :class:`QualityModel` whose m5 and
        ratio this path writes out (a replaced or patched one takes the reference's way)."""
        model = self.quality
        return type(model) is QualityModel and not {"quality", "depth"} & vars(model).keys()

    def _quality_of(self, group: int, airmass, seeing, sky, t_eff) -> np.ndarray:
        zp, k, area, dark_t, rn2, scale, exptime, m5_ref = self._depth_constants(group)
        # twin.physics.etc.m5 at snr 5 (nu2 = 25), operation for operation.
        per_arcsec2 = 10.0 ** (-0.4 * (sky - zp))
        pedestal = exptime * per_arcsec2 * area * t_eff + dark_t
        n_eff = _NEA * (seeing / scale) ** 2 + _PIX_NEA
        noise2 = n_eff * (pedestal + rn2)
        signal = 0.5 * (25.0 + np.sqrt(625.0 + 100.0 * noise2))
        zero_mag = exptime * (10.0 ** (-0.4 * (_ZERO - zp + k * airmass)) * t_eff)
        with np.errstate(divide="ignore"):
            depth = 2.5 * np.log10(zero_mag / signal)
        ratio = 10.0 ** (TEFF_DEX_PER_MAG * (depth - m5_ref))
        return np.clip(np.nan_to_num(ratio, nan=0.0, neginf=0.0), 0.0, 1.0)

    def _depth_constants(self, group: int) -> tuple:
        """The m5's constants of a (band, exposure time) group, computed once."""
        if group in self._depth_consts:
            return self._depth_consts[group]
        band, exptime = self._group_key[group]
        tel, model = self.telescope, self.quality
        t = np.asarray(exptime)
        consts = (
            tel.zeropoint_mag(band),
            extinction_coefficient(band, model.site.height_m),
            tel.pixel_scale_arcsec**2,
            tel.detector.dark_current_e_per_s * t,
            tel.detector.read_noise_e**2,
            np.asarray(tel.pixel_scale_arcsec),
            t,
            model.m5_ref(band, exptime),
        )
        self._depth_consts[group] = consts
        return consts

    @staticmethod
    def _era(mjd: np.ndarray, dut1_d: float) -> np.ndarray:
        """EarthOrientation.earth_rotation_angle_rad, same operations."""
        tu = mjd + dut1_d - 51544.5
        frac = np.mod(tu, 1.0) + 0.7790572732640 + 0.00273781191135448 * tu
        return _TWO_PI * np.mod(frac, 1.0)

    def _slew(self, alt_from, az_from, band, alt_to, az_to, groups) -> np.ndarray:
        """twin.ops.slew.slew_time_s (no band) and the filter change, same operations."""
        v_alt, v_az, acc, dome_speed, settle, filter_s = self._slew_consts
        d_alt = np.abs(alt_to - float(alt_from))
        diff = np.mod(az_to - float(az_from), 360.0)
        d_az = np.minimum(diff, 360.0 - diff)
        t_alt = _axis(d_alt, v_alt, acc)
        t_az = _axis(d_az, v_az, acc)
        t_dome = d_az / dome_speed
        moved = (d_alt > 0.0) | (d_az > 0.0)
        slew = np.maximum(np.maximum(t_alt, t_az), t_dome) + np.where(moved, settle, 0.0)
        if band is not None:
            change = self._group_band[groups] != band
            slew = np.where(change, np.maximum(slew, filter_s), slew)
        return slew


def _axis(d: np.ndarray, v: float, a: float) -> np.ndarray:
    """twin.ops.slew.axis_move_time_s, same operations (no argument checks)."""
    return np.where(d >= v * v / a, d / v + v / a, 2.0 * np.sqrt(d / a))
