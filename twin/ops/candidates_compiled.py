"""The constraint engine compiled: the incremental path's candidates from numba kernels.

Why: after :mod:`twin.ops.candidates_fast` kept the per-request state, what a decision
still paid was numpy's call overhead, about a hundred calls of a few microseconds on a
few hundred rows. Here the arithmetic, the comparisons, the gathers and the rules run as
loops compiled by numba, a handful of calls per decision.

Bit for bit: on this kind of machine numpy evaluates ``arcsin``, ``arctan2``,
``arccos``, ``power`` and ``log10`` with vectorised (SVML) code whose last bits differ
from the C library's that numba calls, while ``sin``, ``cos``, ``sqrt``, ``mod``,
``degrees``, ``radians``, ``interp`` and IEEE arithmetic agree exactly. So each of those
five functions stays a numpy call between the kernels, and every other value is computed
with the same operations in the same order as the incremental path's. Runs give
identical logs to the reference path (``tests/twin/ops/test_ops_engine_paths.py`` checks
every shipped scenario and every candidate of a night). Change the reference first, then
the incremental path, then this, and let the tests compare them.

Cost: the kernels compile at their first call (~5 s) and are cached in ``__pycache__``;
after that a process pays ~0.8 s to import numba and load them, and ~80 MB of memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from twin.ops.candidates import (
    ANGLE_MARGIN_DEG,
    MOON_MOTION_DEG_PER_S,
    S_PER_DAY,
    SIDEREAL_RATE,
)
from twin.ops.candidates_fast import _NEA, _PIX_NEA, IncrementalCandidateBuilder
from twin.ops.conditions import Candidates
from twin.ops.quality import TEFF_DEX_PER_MAG
from twin.ops.queue import UNLIMITED

_TWO_PI = 2 * np.pi

# Quantity codes of the rules the kernel checks (airmass is folded into the horizon).
_QUANTITY_CODE = {
    "alt_deg": 0,
    "sun_alt_deg": 1,
    "moon_sep_deg": 2,
    "moon_illum": 3,
    "seeing_fwhm_arcsec": 4,
    "transparency": 5,
}
_MARGIN_NONE, _MARGIN_ANGLE, _MARGIN_MOON = 0, 1, 2
_MARGIN_CODE = {
    "alt_deg": _MARGIN_ANGLE,
    "sun_alt_deg": _MARGIN_ANGLE,
    "moon_sep_deg": _MARGIN_MOON,
}
_CACHE = True  # compiled kernels are kept in __pycache__, like the byte code
# numba freezes the globals a kernel reads into its cached machine code, and renews the
# cache only when this file changes: every constant defined in another module reaches
# the kernels as an argument, so a change there cannot leave a stale kernel behind.
_K = (float(S_PER_DAY), float(ANGLE_MARGIN_DEG), float(MOON_MOTION_DEG_PER_S),
      float(SIDEREAL_RATE), float(_NEA), float(_PIX_NEA), float(TEFF_DEX_PER_MAG))  # fmt: skip
"""(s per day, angle margin, moon motion, sidereal rate, Gaussian NEA per FWHM²,
pixelisation NEA, t_eff dex per mag), in the kernels' argument ``kc``."""
_UNLIMITED = int(UNLIMITED)


@njit(cache=_CACHE)
def _maximum(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN wins, the first of equals)."""
    return a if (a >= b or a != a) else b


@njit(cache=_CACHE)
def _minimum(a: float, b: float) -> float:
    return a if (a <= b or a != a) else b


@njit(cache=_CACHE)
def _clip1(v: float) -> float:
    """``np.clip(v, -1, 1)``."""
    return _minimum(_maximum(v, -1.0), 1.0)


@njit(cache=_CACHE)
def _open_now(slot_rows, wanted, done, last_visit, cadence0, in_progress, released, mjd,
              ha_offset, ra, sin_dec, cos_dec, lat_sin, lat_cos, unlimited):  # fmt: skip
    """The open rows of the slot (``_open_rows``) and, for each, the clipped sine of
    its altitude and the two arguments of its azimuth's arctan2, now."""
    rows = np.empty(slot_rows.size, np.int64)
    n = 0
    for r in slot_rows:
        w = wanted[r]
        if not (w == unlimited or done[r] < w):
            continue
        if mjd < last_visit[r] + cadence0[r] or in_progress[r] or not released[r] <= mjd:
            continue
        rows[n] = r
        n += 1
    rows = rows[:n]
    s_now, y, x = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        r = rows[i]
        ha = ha_offset - ra[r]
        cos_ha = np.cos(ha)
        s_now[i] = _clip1(lat_sin * sin_dec[r] + lat_cos * cos_dec[r] * cos_ha)
        y[i] = -cos_dec[r] * np.sin(ha)
        x[i] = lat_cos * sin_dec[r] - lat_sin * cos_dec[r] * cos_ha
    return rows, s_now, y, x


@njit(cache=_CACHE)
def _era(t: float, dut1_d: float) -> float:
    """EarthOrientation.earth_rotation_angle_rad, same operations."""
    tu = t + dut1_d - 51544.5
    frac = np.mod(tu, 1.0) + 0.7790572732640 + 0.00273781191135448 * tu
    return _TWO_PI * np.mod(frac, 1.0)


@njit(cache=_CACHE)
def _axis(d: float, v: float, a: float) -> float:
    """twin.ops.slew.axis_move_time_s, same operations."""
    return d / v + v / a if d >= v * v / a else 2.0 * np.sqrt(d / a)


@njit(cache=_CACHE)
def _visit_geometry(rows, asin_now, atan_now, alt_from, az_from, slew_consts, has_band,
                    band_change, groups_all, visit_all, mjd, dut1_d, lon, ra, a_all, b_all,
                    alm_mjd, sun_grid, moon, night_end, any_time, all_any_time, win_start,
                    win_end, sin_min_flat, sin_min, h_lim, never_sets, kc):  # fmt: skip
    """Everything of a visit from its slew to its end that needs no numpy-only function:
    the slew, the two ends' times, sines of altitude, airmasses, hour angle, sun, the
    cosine of the moon distance, the window, night-end and horizon checks."""
    n = rows.size
    v_alt, v_az, acc, dome_speed, settle, filter_s = slew_consts
    s_per_day, angle_margin, moon_motion, sidereal_rate = kc[0], kc[1], kc[2], kc[3]
    az_now, slew, visit = np.empty(n), np.empty(n), np.empty(n)
    t_start, t_end, s0, s1 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    x0, x1, x_worst, ha0 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    dot, margin, setting = np.empty(n), np.empty(n), np.empty(n)
    feasible = np.empty(n, np.bool_)
    for i in range(n):
        r = rows[i]
        alt = np.degrees(asin_now[i])
        az = np.degrees(np.mod(atan_now[i], _TWO_PI))
        az_now[i] = az
        d_alt = abs(alt - alt_from)
        diff = np.mod(az - az_from, 360.0)
        d_az = _minimum(diff, 360.0 - diff)
        t = _maximum(_maximum(_axis(d_alt, v_alt, acc), _axis(d_az, v_az, acc)), d_az / dome_speed)
        t = t + (settle if (d_alt > 0.0 or d_az > 0.0) else 0.0)
        if has_band and band_change[groups_all[r]]:
            t = _maximum(t, filter_s)
        slew[i] = t
        visit[i] = visit_all[r]
        t0 = mjd + t / s_per_day
        t1 = t0 + visit[i] / s_per_day
        t_start[i], t_end[i] = t0, t1
        h0 = _era(t0, dut1_d) + lon - ra[r]
        h1 = _era(t1, dut1_d) + lon - ra[r]
        sa0 = a_all[r] + b_all[r] * np.cos(h0)
        sa1 = a_all[r] + b_all[r] * np.cos(h1)
        s0[i], s1[i] = sa0, sa1
        x0[i] = 1.0 / sa0 if sa0 > 0.0 else np.inf
        x1[i] = 1.0 / sa1 if sa1 > 0.0 else np.inf
        x_worst[i] = _maximum(x0[i], x1[i])
        ha = np.mod(np.degrees(h0) / 15.0 + 12.0, 24.0) - 12.0
        ha0[i] = ha
        alt_rad = np.radians(alt)
        cos_alt = np.cos(alt_rad)
        az_rad = np.radians(az)
        dot[i] = _clip1(
            cos_alt * np.sin(az_rad) * moon[0]
            + cos_alt * np.cos(az_rad) * moon[1]
            + np.sin(alt_rad) * moon[2]
        )
        margin[i] = angle_margin + moon_motion * (t + visit[i])
        ok = t1 <= night_end
        if ok and not all_any_time and not any_time[r]:
            inside = False
            for j in range(win_start.shape[1]):
                if t0 >= win_start[r, j] and t1 <= win_end[r, j]:
                    inside = True
                    break
            ok = inside
        limit = sin_min_flat[r] if sin_min.size == 0 else sin_min[i]
        feasible[i] = ok and sa0 >= limit and sa1 >= limit
        hours = (h_lim[r] - ha) / sidereal_rate
        setting[i] = np.inf if never_sets[r] else _maximum(hours, 0.0)
    sun0 = np.interp(t_start, alm_mjd, sun_grid)
    sun1 = np.interp(t_end, alm_mjd, sun_grid)
    return (az_now, slew, visit, s0, s1, x0, x1, x_worst, ha0, sun0, sun1, dot,
            margin, setting, feasible)  # fmt: skip


@njit(cache=_CACHE)
def _clip_all(v):
    out = np.empty(v.size)
    for i in range(v.size):
        out[i] = _clip1(v[i])
    return out


@njit(cache=_CACHE)
def _apply_rules(rows, feasible, codes, limits, asin0, asin1, sun0, sun1, acos_dot,
                 margin, moon_illum, moon_alt, p0, p_worst, seeing_zenith, factor_all,
                 transparency, kc):  # fmt: skip
    """The rules of :mod:`twin.programme.constraints` (codes per rule: quantity, max?,
    both ends?, moon-up only?, margin kind) on the visit's values; returns the altitude
    and moon distance in degrees and the seeing at the start (for the quality)."""
    n = rows.size
    alt0, moon_sep, seeing0 = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        r = rows[i]
        alt0[i] = np.degrees(asin0[i])
        sep = np.degrees(acos_dot[i])
        moon_sep[i] = sep
        factor = factor_all[r]
        seeing0[i] = seeing_zenith * p0[i] * factor
        worst = seeing_zenith * p_worst[i] * factor
        ok = feasible[i]
        moon_ok = True
        for j in range(codes.shape[0]):
            quantity, is_max, both = codes[j, 0], codes[j, 1], codes[j, 2]
            moon_only, margin_kind = codes[j, 3], codes[j, 4]
            limit = limits[j, r]
            if margin_kind != 0:
                m = kc[1] if margin_kind == 1 else margin[i]
                limit = limit - m if is_max else limit + m
            if quantity == 0:
                v0, v1 = alt0[i], np.degrees(asin1[i])
            elif quantity == 1:
                v0, v1 = sun0[i], sun1[i]
            elif quantity == 2:
                v0, v1 = sep, sep
            elif quantity == 3:
                v0, v1 = moon_illum, moon_illum
            elif quantity == 4:
                v0, v1 = worst, worst
            else:
                v0, v1 = transparency, transparency
            passed = v0 <= limit if is_max else v0 >= limit
            if both:
                passed = passed and (v1 <= limit if is_max else v1 >= limit)
            if moon_only:
                moon_ok = moon_ok and passed
            else:
                ok = ok and passed
        feasible[i] = ok and (moon_alt < -margin[i] or moon_ok)
    return alt0, moon_sep, seeing0


@njit(cache=_CACHE)
def _depth_exponents(groups, sky, airmass, seeing, consts, kc):
    """The m5's two powers of ten's exponents and its signal (``_quality_of``'s ops)."""
    n = groups.size
    e_sky, e_zero, signal_part = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        g = groups[i]
        zp, k, scale = consts[g, 0], consts[g, 1], consts[g, 5]
        e_sky[i] = -0.4 * (sky[i] - zp)
        e_zero[i] = -0.4 * (0.0 - zp + k * airmass[i])
        s = seeing[i] / scale
        signal_part[i] = kc[4] * (s * s) + kc[5]
    return e_sky, e_zero, signal_part


@njit(cache=_CACHE)
def _depth_ratio(groups, per_arcsec2, zero_pow, n_eff, t_eff, consts):
    n = groups.size
    out = np.empty(n)
    for i in range(n):
        g = groups[i]
        area, dark_t, rn2, exptime = consts[g, 2], consts[g, 3], consts[g, 4], consts[g, 6]
        pedestal = exptime * per_arcsec2[i] * area * t_eff + dark_t
        noise2 = n_eff[i] * (pedestal + rn2)
        signal = 0.5 * (25.0 + np.sqrt(625.0 + 100.0 * noise2))
        zero_mag = exptime * (zero_pow[i] * t_eff)
        out[i] = zero_mag / signal
    return out


@njit(cache=_CACHE)
def _teff_exponent(groups, log_ratio, consts, kc):
    out = np.empty(groups.size)
    for i in range(groups.size):
        out[i] = kc[6] * (2.5 * log_ratio[i] - consts[groups[i], 7])
    return out


@njit(cache=_CACHE)
def _clip_quality(ratio):
    """``np.clip(np.nan_to_num(ratio, nan=0.0, neginf=0.0), 0.0, 1.0)``."""
    out = np.empty(ratio.size)
    for i in range(ratio.size):
        q = ratio[i]
        out[i] = 0.0 if q != q else _minimum(_maximum(q, 0.0), 1.0)
    return out


@njit(cache=_CACHE)
def _finish(rows, feasible, quality_feasible, priority_all, wanted_all, done_all, unlimited):
    """The quality of every row (0 where infeasible), value, visits left and done."""
    n = rows.size
    quality, value, priority = np.zeros(n), np.empty(n), np.empty(n)
    left, done = np.empty(n, np.int64), np.empty(n, np.int64)
    j = 0
    for i in range(n):
        r = rows[i]
        if feasible[i]:
            quality[i] = quality_feasible[j]
            j += 1
        priority[i] = priority_all[r]
        value[i] = priority[i] * quality[i]
        w = wanted_all[r]
        done[i] = done_all[r]
        left[i] = unlimited if w == unlimited else w - done[i]
    return quality, value, priority, left, done


class CompiledCandidateBuilder(IncrementalCandidateBuilder):
    """:class:`IncrementalCandidateBuilder` with its per-decision work in numba
    kernels; identical :class:`Candidates`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._slew_floats = tuple(float(c) for c in self._slew_consts)
        if self._flat_horizon is None:  # the kernel reads the mask's limits instead
            self._sin_min_flat = np.empty(0)

    def _per_row(self) -> None:
        fresh = self._rows_n != len(self.queue)
        super()._per_row()
        if fresh or not hasattr(self, "_rule_codes"):
            rules = [r for r in self._rules if r.quantity != "airmass"]
            self._rule_codes = np.array(
                [[_QUANTITY_CODE[r.quantity], r.sense == "max", "end" in r.ends,
                  r.moon_up_only, _MARGIN_CODE.get(r.quantity, _MARGIN_NONE)]
                 for r in rules],
                dtype=np.int64,
            ).reshape(len(rules), 5)  # fmt: skip
            self._rule_limits = np.array(
                [self.queue.limits[r.field] for r in rules], dtype=float
            ).reshape(len(rules), self._rows_n)
            self._needs_alt_end = any(r.quantity == "alt_deg" for r in rules)

    def _band_change(self, band: str | None) -> np.ndarray:
        key = (band, len(self._group_key))
        if getattr(self, "_band_key", None) != key:
            self._band_key = key
            self._band_flags = (
                np.zeros(len(self._group_key), dtype=np.bool_)
                if band is None
                else np.asarray(self._group_band != band, dtype=np.bool_)
            )
        return self._band_flags

    def build(
        self, mjd: float, alt_deg: float, az_deg: float, band: str | None,
        seeing_zenith_arcsec: float, transparency: float, night_end_mjd: float,
    ) -> Candidates:  # fmt: skip
        queue = self.queue
        if len(queue) == 0:
            return Candidates.empty()
        self._prepare(mjd)
        self._per_row()
        slot_rows = self._slot_index(mjd, night_end_mjd)
        self._per_night()
        lon = self.visibility.frame._lon_rad
        dut1_d = self._dut1_d
        tu = mjd + dut1_d - 51544.5
        era_now = _TWO_PI * ((tu % 1.0 + 0.7790572732640 + 0.00273781191135448 * tu) % 1.0)
        rows, s_now, y, x = _open_now(
            slot_rows, queue.visits_wanted, queue.visits_done, queue.last_visit_mjd,
            self._cadence0, queue.in_progress, queue.released_mjd[self.site_index], mjd,
            era_now + lon, self._ra, self._sin_dec, self._cos_dec, self._lat_sin,
            self._lat_cos, _UNLIMITED,
        )  # fmt: skip
        if rows.size == 0:
            return Candidates.empty()
        asin_now, atan_now = np.arcsin(s_now), np.arctan2(y, x)
        alm = self.visibility.almanac
        moon = self._moon_enu(mjd)
        if self._flat_horizon is None:
            # The horizon mask at the current azimuth (read by the reference's method).
            az = np.degrees(np.mod(atan_now, _TWO_PI))
            sin_min = self._sin_alt_min(rows, az, self._airmass_field)
        else:
            sin_min = np.empty(0)
        (az_now, slew, visit, s0, s1, x0, x1, x_worst, ha0, sun0, sun1, dot, margin,
         setting, feasible) = _visit_geometry(
            rows, asin_now, atan_now, float(alt_deg), float(az_deg), self._slew_floats,
            band is not None, self._band_change(band), self._groups, self._visit_s, mjd,
            dut1_d, lon, self._ra, self._a, self._b, alm.mjd, alm.sun_alt_deg_grid, moon,
            night_end_mjd, self._any_time, self._all_any_time, queue.window_start,
            queue.window_end, self._sin_min_flat, sin_min, self._h_lim, self._never_sets, _K,
        )  # fmt: skip
        asin0 = np.arcsin(_clip_all(s0))
        asin1 = np.arcsin(_clip_all(s1)) if self._needs_alt_end else asin0
        acos_dot = np.arccos(dot)
        moon_alt = float(np.degrees(np.arcsin(min(max(moon[2], -1.0), 1.0))))
        moon_illum = float(np.interp(mjd, alm.mjd, alm.moon_illum_grid))
        alt0, moon_sep, seeing0 = _apply_rules(
            rows, feasible, self._rule_codes, self._rule_limits, asin0, asin1, sun0, sun1,
            acos_dot, margin, moon_illum, moon_alt, x0**0.6, x_worst**0.6,
            float(seeing_zenith_arcsec), self._seeing_factor_row, float(transparency), _K,
        )  # fmt: skip
        idx = np.flatnonzero(feasible)
        quality_feasible = (
            self._expected_quality(
                rows[idx], self._groups[rows[idx]], x0[idx], seeing0[idx], transparency, mjd
            )
            if idx.size
            else np.empty(0)
        )
        quality, value, priority, left, done = _finish(
            rows, feasible, quality_feasible, queue.priority, queue.visits_wanted,
            queue.visits_done, _UNLIMITED,
        )  # fmt: skip
        return Candidates(
            request_index=rows,
            priority=priority,
            program_index=queue.program_index[rows],
            is_alert=queue.is_alert[rows],
            alt_deg=alt0,
            az_deg=az_now,
            airmass=x0,
            airmass_end=x1,
            hour_angle_h=ha0,
            moon_sep_deg=moon_sep,
            slew_s=slew,
            visit_s=visit,
            quality=quality,
            value=value,
            setting_h=setting,
            visits_left=left,
            visits_done=done,
            feasible=feasible,
        )

    def _expected_quality(self, rows, groups, airmass, seeing, transparency, mjd) -> np.ndarray:
        """The incremental path's quality, the m5's arithmetic in kernels."""
        if not self._quality_inlined():
            return super()._expected_quality(rows, groups, airmass, seeing, transparency, mjd)
        sky = self._slot_sky(rows, mjd)
        t_eff = float(transparency)  # depth()'s transparency x throughput 1.0: exact
        consts = self._const_table()
        e_sky, e_zero, n_eff = _depth_exponents(groups, sky, airmass, seeing, consts, _K)
        ratio = _depth_ratio(groups, 10.0**e_sky, 10.0**e_zero, n_eff, t_eff, consts)
        with np.errstate(divide="ignore"):
            log_ratio = np.log10(ratio)
        return _clip_quality(10.0 ** _teff_exponent(groups, log_ratio, consts, _K))

    def _const_table(self) -> np.ndarray:
        """The depth constants of every (band, exposure time) group, one row each."""
        n = len(self._group_key)
        table = getattr(self, "_consts_table", None)
        if table is None or len(table) != n:
            rows = [[float(c) for c in self._depth_constants(g)] for g in range(n)]
            table = self._consts_table = np.array(rows, dtype=float).reshape(n, 8)
        return table
