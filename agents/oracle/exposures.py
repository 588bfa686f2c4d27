"""Feasibility and value of one exposure for a chunk of requests: the constraint engine's
start check with optimistic and pessimistic margins, and the quality upper bound.

Part of :mod:`agents.oracle` (the formulation is in its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.oracle.slots import S_PER_DAY, Slots, alt_tol_deg
from twin.astro.almanac import enu_vectors
from twin.ops.nights import NightWindow
from twin.ops.slew import slew_time_s
from twin.ops.world import TelescopeWorld
from twin.physics.etc import delivered_seeing_arcsec
from twin.physics.extinction import airmass_from_alt
from twin.physics.sky import sky_mag_arcsec2
from twin.programme import constraints
from twin.programme.constraints import Rule
from twin.programme.feasibility import RequestTable
from twin.programme.requests import Request

HORIZON_TOL_DEG = 0.5
"""Horizon-mask margin: the altitude margin plus the mask's slope under a moving azimuth."""
SKY_MARGIN_MAG = 0.02
"""Sky darker by this much than the darkest sampled, for starts between samples."""


@dataclass
class RequestColumns:
    """Per-request limits, shaped (R, 1, 1) to broadcast against (K, S) samples."""

    prepared: tuple
    priority: np.ndarray
    limits: dict[str, np.ndarray]  # one per rule (twin.programme.constraints), (R, 1, 1)
    window_start: np.ndarray  # (R, 1, 1, W)
    window_end: np.ndarray
    available: np.ndarray

    @classmethod
    def of(
        cls, tw: TelescopeWorld, requests: list[Request], available: np.ndarray, ref_mjd: float
    ) -> RequestColumns:
        def col(values) -> np.ndarray:
            return np.asarray(values, dtype=float).reshape(-1, 1, 1)

        table = RequestTable.from_requests(requests)
        p = tw.site.visibility.prepare(table.ra_deg, table.dec_deg, ref_mjd)
        return cls(
            prepared=(*(a.reshape(-1, 1, 1) for a in p[:3]), p[3]),
            priority=table.priority,
            limits={name: col(values) for name, values in table.limits.items()},
            window_start=table.window_start_mjd[:, None, None, :],
            window_end=table.window_end_mjd[:, None, None, :],
            available=col(available),
        )

    def window_span(self, slot_start: np.ndarray, slot_end: np.ndarray) -> tuple:
        """(R, K) earliest start and latest end of a visit starting in each slot: the
        earliest start and the latest end of the windows open during the slot (the engine
        lets a visit start only inside a window and end inside it); -inf and inf for a
        request without windows."""
        ws, we = self.window_start[:, 0, 0, :], self.window_end[:, 0, 0, :]  # (R, W)
        open_ = (ws[:, None, :] < slot_end[None, :, None]) & (
            we[:, None, :] > slot_start[None, :, None]
        )
        earliest = np.where(open_, ws[:, None, :], np.inf).min(axis=-1)
        latest = np.where(open_, we[:, None, :], -np.inf).max(axis=-1)
        return earliest, latest

    def in_window(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """True where [start, end) (shape (K, S)) lies inside one of the windows."""
        s, e = start[None, :, :, None], end[None, :, :, None]
        return ((s >= self.window_start) & (e <= self.window_end)).any(axis=-1)


def _optimistic(rule: Rule, ends: list[tuple], limit: np.ndarray) -> np.ndarray:
    """Whether ``rule`` may hold: every end's (lowest, highest) range reaches its limit."""
    if rule.sense == "max":
        return np.maximum.reduce([lo for lo, _ in ends]) <= limit
    return np.minimum.reduce([hi for _, hi in ends]) >= limit


def _pessimistic(rule: Rule, ends: list[tuple], limit: np.ndarray) -> np.ndarray:
    """Whether ``rule`` must hold: every end's whole range meets its limit."""
    if rule.sense == "max":
        return np.maximum.reduce([hi for _, hi in ends]) <= limit
    return np.minimum.reduce([lo for lo, _ in ends]) >= limit


@dataclass
class _Geometry:
    alt0: np.ndarray
    alt1: np.ndarray
    az0: np.ndarray
    horizon: np.ndarray  # least margin above the horizon mask at both ends, deg
    alt_low: np.ndarray  # lower altitude of both ends (the higher airmass)
    moon_sep: np.ndarray  # at the start

    @classmethod
    def of(
        cls,
        tw: TelescopeWorld,
        rc: RequestColumns,
        t0: np.ndarray,
        t1: np.ndarray,
        moon_enu: np.ndarray,
    ) -> _Geometry:
        vis, mask = tw.site.visibility, tw.site.site.horizon_min_alt_deg
        alt0, az0, _ = vis.altaz_prepared(rc.prepared, t0)
        alt1, az1, _ = vis.altaz_prepared(rc.prepared, t1)
        cos_sep = np.sum(enu_vectors(alt0, az0) * moon_enu[None], axis=-1)
        return cls(
            alt0,
            alt1,
            az0,
            np.minimum(alt0 - mask(az0), alt1 - mask(az1)),
            np.minimum(alt0, alt1),
            np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0))),
        )


@dataclass
class _Start:
    """Whether the constraint engine may let a visit start near each sample (optimistic),
    and the altitude range of its lower end, which sets the seeing the twin checks."""

    ok: np.ndarray  # (R, K, S)
    alt_low_hi: np.ndarray  # optimistic: highest the lower of the two ends can be
    alt_low_lo: np.ndarray  # pessimistic: lowest


def visit_start(
    tw: TelescopeWorld, rc: RequestColumns, slots: Slots, win: NightWindow, visit_s: float
) -> _Start:
    """The engine's check of a visit starting (first exposure) at ``t_start``: geometry at
    ``t_start`` and ``t_start + visit_s`` (horizon, airmass, sun), the moon when deciding
    (up to one slew earlier), the windows, the night's end and the release. Its seeing and
    transparency checks at the decision are left to the exposures' own."""
    tel = tw.telescope
    slew_max_s = max(float(slew_time_s(tel, 0.0, 0.0, 90.0, 180.0)), tel.filter_change_s)
    half_s = slots.half_d * S_PER_DAY
    tol = alt_tol_deg(half_s)
    alm = tw.site.visibility.almanac
    ts = slots.samples
    te = ts + visit_s / S_PER_DAY
    g = _Geometry.of(tw, rc, ts, te, alm.moon_enu(ts))
    # The moon is judged at the decision, up to one slew before the start: it may be that
    # much higher or lower, and have moved against the stars by up to 1 deg/h.
    moon_tol = tol + alt_tol_deg(slew_max_s)
    moon_down = alm.moon_alt_deg(ts) - moon_tol < 0.0
    # (lowest, highest) each geometric quantity can be at each end for a start near a
    # sample; a rule is met optimistically by the end of the range in its favour.
    illum = alm.moon_illum(ts)
    ranges = {
        "alt_deg": lambda: {"start": (g.alt0 - tol, g.alt0 + tol),
                            "end": (g.alt1 - tol, g.alt1 + tol)},
        "airmass": lambda: {
            "start": (airmass_from_alt(np.minimum(g.alt0 + tol, 90.0)),
                      airmass_from_alt(g.alt0 - tol)),
            "end": (airmass_from_alt(np.minimum(g.alt1 + tol, 90.0)),
                    airmass_from_alt(g.alt1 - tol)),
        },
        "sun_alt_deg": lambda: {
            "start": (alm.sun_alt_deg(ts) - tol, alm.sun_alt_deg(ts) + tol),
            "end": (alm.sun_alt_deg(te) - tol, alm.sun_alt_deg(te) + tol),
        },
        "moon_sep_deg": lambda: {"start": (g.moon_sep - moon_tol, g.moon_sep + moon_tol)},
        "moon_illum": lambda: {"start": (illum - 1e-3, illum + 1e-3)},
    }  # fmt: skip
    visit_d = visit_s / S_PER_DAY
    ok = (
        (g.horizon + HORIZON_TOL_DEG >= 0.0)
        & rc.in_window(ts + slots.half_d, ts - slots.half_d + visit_d)
        & (ts - slots.half_d + visit_d <= win.end_mjd)
        & (ts + slots.half_d >= rc.available)
    )
    moon_rules = np.ones_like(ok)
    for rule in constraints.rules():
        if rule.kind != "geometric":
            continue
        by_end = ranges[rule.quantity]()
        passed = _optimistic(rule, [by_end[end] for end in rule.ends], rc.limits[rule.field])
        if rule.moon_up_only:
            moon_rules = moon_rules & passed
        else:
            ok = ok & passed
    ok = ok & (moon_down | moon_rules)
    return _Start(ok, np.minimum(g.alt_low + tol, 90.0), g.alt_low - tol)


def exposure(
    tw: TelescopeWorld,
    rc: RequestColumns,
    f: dict,
    band: str,
    exptime_s: float,
    half_d: float,
    start: _Start,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(relaxed, strict, quality_bound) of one exposure: may some start within half a
    step of each sample complete it, must every such start, and the best quality it can
    reach in each slot.

    The twin re-checks only what may change during a visit: a dome closure, a failure or
    the night's end cuts the exposure; the true seeing (at the visit's worse airmass) and
    transparency as its shutter opens must meet the request's limits. Its geometry was
    fixed by the engine's check of the whole visit."""
    tol = alt_tol_deg(half_d * S_PER_DAY)
    g = _Geometry.of(tw, rc, f["t0"], f["t1"], f["moon_enu"])
    centre = tw.telescope.filter(band).center_nm
    # The engine's plane-parallel sec(z) is at least the (Pickering) airmass.
    x_best = airmass_from_alt(start.alt_low_hi)
    with np.errstate(divide="ignore"):
        sin_low = np.sin(np.radians(start.alt_low_lo))
        x_worst = np.where(sin_low > 0.0, 1.0 / sin_low, np.inf)
    # (lowest, highest) each measured quantity can be as the shutter opens.
    ranges = {
        "seeing_fwhm_arcsec": (
            delivered_seeing_arcsec(f["seeing_lo"], x_best, centre),
            delivered_seeing_arcsec(f["seeing_hi"], x_worst, centre),
        ),
        "transparency": (f["transparency_lo"], f["transparency_hi"]),
    }
    relaxed = f["open_relaxed"] & f["before_end_relaxed"]
    strict = f["open_strict"]
    for rule in constraints.rules():
        if rule.kind == "measured":
            limit = rc.limits[rule.field]
            relaxed = relaxed & _optimistic(rule, [ranges[rule.quantity]], limit)
            strict = strict & _pessimistic(rule, [ranges[rule.quantity]], limit)
    return relaxed, strict, _quality_bound(tw, f, g, band, exptime_s, tol)


def _quality_bound(
    tw: TelescopeWorld, f: dict, g: _Geometry, band: str, exptime_s: float, tol: float
) -> np.ndarray:
    """(R, K) upper bound on the quality of the exposure in each slot: the best of each
    ingredient of the depth over the slot's samples, combined."""
    site = tw.site.site
    sky = sky_mag_arcsec2(
        band,
        np.minimum(g.alt0 + tol, 90.0),
        f["moon_alt"] - tol,
        g.moon_sep,
        f["moon_illum"],
        f["sun0"] - tol,
        site.sky_brightening_mag,
        site.height_m,
    )
    sky_best = np.where(np.isnan(sky), -np.inf, sky).max(axis=-1) + SKY_MARGIN_MAG
    airmass = airmass_from_alt(np.minimum(g.alt0.max(axis=-1) + tol, 90.0))
    centre = tw.telescope.filter(band).center_nm
    seeing = delivered_seeing_arcsec(f["seeing_lo"].min(axis=-1), airmass, centre)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m5 = tw.quality.depth(
            band,
            exptime_s,
            airmass=airmass,
            seeing_fwhm_arcsec=np.hypot(seeing, f["defocus_min"]),
            sky_mag_arcsec2=sky_best,
            transparency=f["transparency_hi"].max(axis=-1),
            throughput=f["throughput_max"],
        )
        quality = tw.quality.quality(band, exptime_s, m5)
    return np.where(np.isfinite(sky_best), quality, 0.0)
