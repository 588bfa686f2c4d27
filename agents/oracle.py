"""The offline oracle: an upper bound on one night's science value, and a policy that
replays the bound's plan.

Description
-----------
With the night's true weather, dome closures and failures known in advance (the
:class:`~twin.ops.world.World` draws them all before the first SimPy step), a MILP
bounds the science value that *any* scheduler could be credited with that night, the
twin's value being ``priority x quality / n_exposures`` per exposure
(:func:`twin.ops.exposures.exposure_truth`). Schedulers are compared with it as a
fraction of the attainable; :class:`OraclePolicy` follows its plan in the twin.

Formulation (solved with HiGHS through :func:`scipy.optimize.milp`)
--------------------------------------------------------------------
Each telescope's night window is cut into slots of ``slot_min``. A binary
``x[t, r, s, p]`` says: at telescope ``t`` a visit of request ``r`` whose *first
exposure starts* in slot ``s`` completes its first ``p`` exposures (a visit cut by a
dome closure, a failure, the night's end or a constraint still earns its finished
exposures and counts as a visit, so cut visits get variables of their own).

- Feasibility is checked on the truth at sub-slot samples (every ``sample_min``) of the
  first exposure's start, as the twin checks it. The visit must pass the constraint
  engine's check when it starts (horizon mask, airmass and sun at both ends of the
  visit, the moon at the decision, windows, the night's end, the release: alert
  requests are available from the alert's issue, before any link could bring them);
  each exposure is then cut by a dome closure, a failure or the night's end, or stopped
  by the true seeing (at the visit's worse airmass) or transparency as its shutter
  opens. The engine's own seeing and transparency test at the decision is left out. A
  sample stands for the starts within half a step of it: optimistic margins (the
  Earth's rotation in that time, weather extremes at the truth grid's knots) decide the
  longest prefix of exposures that may complete, pessimistic ones the shortest that may
  be cut, and every prefix length between gets a variable.
- The value of ``x`` is ``priority / n_exposures x`` the sum over its exposures of an
  upper bound on their true quality in the slot: the best airmass, darkest sky, best
  seeing, highest transparency and throughput, least defocus that any start in the slot
  meets, combined (quality rises monotonically with each).
- Time: a visit occupies its telescope from its first exposure's start to the end of its
  last finished exposure's readout (slews, with the first filter change, only add
  time, and are ignored). Visits starting in a run of consecutive slots ``[a, b)`` are disjoint
  and all begin in it, so their occupancies sum to at most ``b - a`` plus the largest
  overhang of one of them past ``b`` (and nothing ends after the night, bar the last
  readout). These rows are written for runs of 1, 2, 3, 4, 6, 8, ... slots from every
  slot, through one continuous load variable per slot.
- Requests: at most the visits still wanted (all of them: the oracle does not know
  earlier nights); first-exposure starts of one request at least ``cadence_days`` apart
  (one row per window of that length, over all telescopes; one visit a night when the
  cadence exceeds the network's night).
- Alerts: each alert issued before the night's end adds its follow-up request (from the
  issue time, any site) and, optimistically, its confirmation request (one visit, any
  site, any time after the issue) unless the transient is never bright enough for the
  deepest exposure the network could take that night to detect it.

Every relaxation above only adds schedules, so the MILP optimum is an upper bound on the
twin's credited value that night under any policy; the reported ``upper_bound`` is the
lower of HiGHS's dual bound (the optimum when solved, more when the time limit stops it)
and the LP relaxation's optimum. What remains approximate is the sampled geometry
(margins of 0.145 deg against the 0.125 deg the sky turns in half a minute) and the sky
brightness sampled at the same times (0.02 mag of margin).

Arguments of :func:`oracle_bound`
---------------------------------

| name           | unit | default | meaning                                            |
|----------------|------|---------|----------------------------------------------------|
| world          |      |         | the drawn world (truth) of the run                 |
| night          |      | 0       | night index of every site's window list            |
| slot_min       | min  | 5       | slot length                                        |
| time_limit_s   | s    | 60      | budget of the call (build, LP, then MILP)          |
| sample_min     | min  | 1       | sub-slot sampling of first-exposure starts         |
| mip_rel_gap    |      | 1e-4    | HiGHS stops when the gap is below this             |
| confirmations  |      | True    | include optimistic confirmation requests           |
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from agents.baselines import GreedyPolicy
from twin.alerts.stream import confirmation_request, followup_end_mjd, followup_request
from twin.astro.almanac import enu_vectors
from twin.ops.conditions import Conditions, Observe, Wait
from twin.ops.intervals import Intervals
from twin.ops.nights import NightWindow
from twin.ops.slew import slew_time_s
from twin.ops.world import SiteWorld, TelescopeWorld, World
from twin.physics.etc import delivered_seeing_arcsec
from twin.physics.extinction import airmass_from_alt
from twin.physics.sky import sky_mag_arcsec2
from twin.programme import constraints
from twin.programme.constraints import Rule
from twin.programme.feasibility import RequestTable
from twin.programme.requests import Request, Window
from twin.scenario import Scenario

S_PER_DAY = 86400.0
HORIZON_TOL_DEG = 0.5
"""Horizon-mask margin: the altitude margin plus the mask's slope under a moving azimuth."""
SKY_MARGIN_MAG = 0.02
"""Sky darker by this much than the darkest sampled, for starts between samples."""
DETECTION_MARGIN_MAG = 0.2
"""Margin on the confirmation test (transient brightness between 5-minute samples)."""
WINDOW_SLOTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
CHUNK_ROWS = 256
ALERT_MATCH_DEG = 0.1
"""How close (deg) a candidate must stand to an alert target to be taken for it."""
STATUS = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded", 4: "error"}


@dataclass
class OracleResult:
    """What :func:`oracle_bound` found.

    ``plan`` maps each telescope to its chosen visits as ``(slot_start_mjd,
    request_row)`` in time order, ``request_row`` indexing ``requests`` (the world's
    requests, then the alert requests the oracle made). ``value_by_telescope`` is the
    plan's MILP value per telescope; ``variables_by_telescope`` counts the visits the
    truth allowed there (0: the telescope could not observe at all).
    """

    upper_bound: float
    milp_objective: float
    status: str
    n_variables: int
    solve_s: float
    plan: dict[str, list[tuple[float, int]]]
    n_constraints: int = 0
    build_s: float = 0.0
    mip_gap: float = math.nan
    lp_bound: float = math.inf
    requests: list[Request] = field(default_factory=list, repr=False)
    value_by_telescope: dict[str, float] = field(default_factory=dict)
    variables_by_telescope: dict[str, int] = field(default_factory=dict)


# -- the requests of the night -------------------------------------------------------------
def oracle_requests(
    world: World, night: int = 0, confirmations: bool = True
) -> tuple[list[Request], np.ndarray]:
    """The world's requests plus follow-up (and confirmation) requests of the alerts issued
    before the night's end, with the MJD each becomes available (-inf: from the start)."""
    requests = list(world.requests)
    available = [-math.inf] * len(requests)
    spec = world.scenario.alerts
    wins = _night_windows(world, night)
    if spec is None or not wins:
        return requests, np.array(available)
    night_end = max(w.end_mjd for _, w in wins)
    latency_d = world.scenario.operations.alert_broker_latency_s / S_PER_DAY
    multi_site = len(world.sites) > 1
    for alert in world.alerts:
        if alert.issued_mjd >= night_end:
            continue
        # The twin opens the window when the centre receives the alert; its end can only
        # be later than the one computed from the issue time, so take the receipt's.
        end = followup_end_mjd(alert, spec, alert.issued_mjd + latency_d)
        fu = followup_request(alert, spec, alert.issued_mjd)
        fu = fu.model_copy(update={"windows": (Window(start_mjd=alert.issued_mjd, end_mjd=end),)})
        requests.append(fu)
        available.append(alert.issued_mjd)
        if confirmations and spec.followup.confirm and multi_site:
            if _could_be_detected(world, alert, spec.followup.plan, night_end):
                names = [s.site.name for s in world.sites]
                conf = confirmation_request(alert, spec, alert.issued_mjd, "", names)
                requests.append(conf.model_copy(update={"windows": (), "sites": ()}))
                available.append(alert.issued_mjd)
    return requests, np.array(available)


def _could_be_detected(world: World, alert, plan, night_end: float) -> bool:
    """False only if no follow-up exposure before ``night_end`` could reach the transient:
    it stays fainter than the m5 of the best conditions any telescope could meet."""
    grid = np.arange(alert.issued_mjd, night_end + 5.0 / 1440.0, 5.0 / 1440.0)
    for tw in world.telescopes:
        site = tw.site.site
        seeing = float(np.min(tw.site.weather.sample(grid)["seeing_fwhm_arcsec"]))
        for item in plan:
            centre = tw.telescope.filter(item.band).center_nm
            sky = sky_mag_arcsec2(
                item.band, 90.0, -30.0, 90.0, 0.0, -30.0, site.sky_brightening_mag, site.height_m
            )
            depth = float(
                tw.quality.depth(
                    item.band,
                    item.exptime_s,
                    airmass=1.0,
                    seeing_fwhm_arcsec=delivered_seeing_arcsec(seeing, 1.0, centre),
                    sky_mag_arcsec2=sky + SKY_MARGIN_MAG,
                    transparency=1.0,
                    throughput=1.0,
                )
            )
            brightest = float(np.min(alert.mag(item.band, grid)))
            if brightest <= depth + DETECTION_MARGIN_MAG:
                return True
    return False


def _night_windows(world: World, night: int) -> list[tuple[TelescopeWorld, NightWindow]]:
    out = []
    for tw in world.telescopes:
        for win in tw.site.nights:
            if win.night == night:
                out.append((tw, win))
    return out


# -- slots and exposure layout ------------------------------------------------------------
@dataclass
class _Slots:
    """Slots of one telescope's night and the sampled first-exposure start times."""

    starts: np.ndarray  # (K,) MJD
    ends: np.ndarray  # (K,) MJD
    samples: np.ndarray  # (K, S) MJD, both ends of every slot included
    half_d: float  # half a sample step, days

    @classmethod
    def of(cls, win: NightWindow, slot_min: float, sample_min: float) -> _Slots:
        slot_d = slot_min / 1440.0
        k = max(1, math.ceil((win.end_mjd - win.start_mjd) / slot_d - 1e-9))
        starts = win.start_mjd + slot_d * np.arange(k)
        ends = np.minimum(starts + slot_d, win.end_mjd)
        n_sub = max(1, math.ceil(slot_min / sample_min - 1e-9))
        frac = np.linspace(0.0, 1.0, n_sub + 1)
        samples = starts[:, None] + (ends - starts)[:, None] * frac[None, :]
        return cls(starts, ends, samples, 0.5 * slot_d / n_sub)


@dataclass(frozen=True)
class _Layout:
    """Where each exposure of a visit starts, relative to the first, at one telescope."""

    bands: tuple[str, ...]
    exptime_s: np.ndarray
    offset_s: np.ndarray
    occupancy_s: np.ndarray  # occupancy of a visit that completes p exposures, at p - 1

    @classmethod
    def of(
        cls, plan_key: tuple[tuple[str, float], ...], readout_s: float, filter_change_s: float
    ) -> _Layout:
        offsets, t, prev = [], 0.0, None
        for j, (band, exptime) in enumerate(plan_key):
            if j > 0:
                t += readout_s + (filter_change_s if band != prev else 0.0)
            offsets.append(t)
            t += exptime
            prev = band
        exptime = np.array([e for _, e in plan_key])
        offset = np.array(offsets)
        return cls(tuple(b for b, _ in plan_key), exptime, offset, offset + exptime + readout_s)


def _plan_key(request: Request) -> tuple[tuple[str, float], ...]:
    return tuple((p.band, float(p.exptime_s)) for p in request.plan for _ in range(p.count))


# -- truth that depends on time only ------------------------------------------------------
def _blocked(blocks: Intervals, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """True where [t0, t1) meets a closure or failure (the twin aborts such exposures)."""
    if len(blocks) == 0:
        return np.zeros(np.shape(t0), dtype=bool)
    starts, ends = np.array(blocks.starts), np.array(blocks.ends)
    k = np.searchsorted(starts, t1, side="left") - 1
    return (k >= 0) & (ends[np.maximum(k, 0)] > t0)


def _weather_extremes(sw: SiteWorld, t: np.ndarray, half_d: float) -> dict:
    """Lowest and highest seeing and transparency within ``half_d`` of each time, on the
    site's truth grid (what the twin checks and logs): it interpolates linearly, so the
    extremes are at both ends or at the grid's knots between."""
    names = ("seeing_fwhm_arcsec", "transparency")
    points = [sw.weather.sample(t + d) for d in (-half_d, 0.0, half_d)]
    lo = {n: np.minimum.reduce([p[n] for p in points]) for n in names}
    hi = {n: np.maximum.reduce([p[n] for p in points]) for n in names}
    knots = sw.weather.mjd
    first = np.searchsorted(knots, t - half_d, side="right")
    last = np.searchsorted(knots, t + half_d, side="left")
    for step in range(int(np.max(last - first, initial=0))):
        inside = first + step < last
        idx = np.minimum(first + step, knots.size - 1)
        for n in names:
            v = sw.weather.samples[n][idx]
            lo[n] = np.where(inside, np.minimum(lo[n], v), lo[n])
            hi[n] = np.where(inside, np.maximum(hi[n], v), hi[n])
    return {
        "seeing_lo": lo[names[0]],
        "seeing_hi": hi[names[0]],
        "transparency_lo": lo[names[1]],
        "transparency_hi": hi[names[1]],
    }


def _alt_tol_deg(half_s: float) -> float:
    """Most any altitude (target, sun, moon) moves in ``half_s`` seconds: the sky turns
    15.04 deg an hour; 0.02 deg more for the almanac's interpolation."""
    return 15.05 / 3600.0 * half_s + 0.02


def _time_fields(
    tw: TelescopeWorld,
    win: NightWindow,
    slots: _Slots,
    blocks: Intervals,
    offset_s: float,
    exptime_s: float,
) -> dict:
    """Sun, moon, weather, equipment and closures at the samples of one exposure."""
    alm = tw.site.visibility.almanac
    h = slots.half_d
    t0 = slots.samples + offset_s / S_PER_DAY
    t1 = t0 + exptime_s / S_PER_DAY
    halfway = np.concatenate([t0 - h, t0, t0 + h], axis=1)
    f = {
        "t0": t0,
        "t1": t1,
        "sun0": alm.sun_alt_deg(t0),
        "moon_enu": alm.moon_enu(t0),
        "moon_alt": alm.moon_alt_deg(t0),
        "moon_illum": alm.moon_illum(t0),
        "open_relaxed": ~_blocked(blocks, t0 + h, t1 - h),
        "open_strict": ~_blocked(blocks, t0 - h, t1 + h),
        "before_end_relaxed": t1 - h <= win.end_mjd,
        "throughput_max": tw.equipment.throughput.at(halfway).max(axis=1),
        "defocus_min": tw.equipment.focus.at(halfway)[1].min(axis=1),
    }
    f.update(_weather_extremes(tw.site, t0, h))
    return f


# -- feasibility and value of one exposure for a chunk of requests ------------------------
@dataclass
class _RequestColumns:
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
    ) -> _RequestColumns:
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
        rc: _RequestColumns,
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


def _visit_start(
    tw: TelescopeWorld, rc: _RequestColumns, slots: _Slots, win: NightWindow, visit_s: float
) -> _Start:
    """The engine's check of a visit starting (first exposure) at ``t_start``: geometry at
    ``t_start`` and ``t_start + visit_s`` (horizon, airmass, sun), the moon when deciding
    (up to one slew earlier), the windows, the night's end and the release. Its seeing and
    transparency checks at the decision are left to the exposures' own."""
    tel = tw.telescope
    slew_max_s = max(float(slew_time_s(tel, 0.0, 0.0, 90.0, 180.0)), tel.filter_change_s)
    half_s = slots.half_d * S_PER_DAY
    tol = _alt_tol_deg(half_s)
    alm = tw.site.visibility.almanac
    ts = slots.samples
    te = ts + visit_s / S_PER_DAY
    g = _Geometry.of(tw, rc, ts, te, alm.moon_enu(ts))
    # The moon is judged at the decision, up to one slew before the start: it may be that
    # much higher or lower, and have moved against the stars by up to 1 deg/h.
    moon_tol = tol + _alt_tol_deg(slew_max_s)
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


def _exposure(
    tw: TelescopeWorld,
    rc: _RequestColumns,
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
    tol = _alt_tol_deg(half_d * S_PER_DAY)
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


# -- variables ------------------------------------------------------------------------------
@dataclass
class _Variables:
    """Columns of the MILP's visit variables, appended per telescope and request group."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))

    def add(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.parts[name].append(np.asarray(values))

    def get(self, name: str) -> np.ndarray:
        parts = self.parts.get(name)
        return np.concatenate(parts) if parts else np.empty(0)


def _telescope_variables(
    t_index: int,
    tw: TelescopeWorld,
    win: NightWindow,
    slots: _Slots,
    requests: list[Request],
    available: np.ndarray,
    out: _Variables,
) -> None:
    site_name = tw.site.site.name
    blocks = Intervals([*tw.site.dome_closed, *tw.down])
    rows = [
        i
        for i, r in enumerate(requests)
        if (not r.sites or site_name in r.sites)
        and available[i] < win.end_mjd
        and (
            not r.windows
            or any(w.start_mjd < win.end_mjd and w.end_mjd > win.start_mjd for w in r.windows)
        )
    ]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i in rows:
        groups[_plan_key(requests[i])].append(i)
    tel = tw.telescope
    for key, members in groups.items():
        layout = _Layout.of(key, tel.readout_s, tel.filter_change_s)
        fields = [
            _time_fields(tw, win, slots, blocks, off, e)
            for off, e in zip(layout.offset_s, layout.exptime_s, strict=True)
        ]
        for c in range(0, len(members), CHUNK_ROWS):
            chunk = np.array(members[c : c + CHUNK_ROWS])
            rc = _RequestColumns.of(
                tw, [requests[i] for i in chunk], available[chunk], win.start_mjd
            )
            _chunk_variables(tw, t_index, win, slots, layout, fields, rc, chunk, out)


def _chunk_variables(
    tw: TelescopeWorld,
    t_index: int,
    win: NightWindow,
    slots: _Slots,
    layout: _Layout,
    fields: list[dict],
    rc: _RequestColumns,
    chunk: np.ndarray,
    out: _Variables,
) -> None:
    """Variables of a chunk of requests with one exposure layout: for each slot, every
    number of completed exposures between the fewest and the most its starts allow."""
    n = len(layout.bands)
    start = _visit_start(tw, rc, slots, win, float(layout.occupancy_s[-1]))
    alive_r, alive_s = start.ok, None
    longest = shortest = 0
    qualities = []
    for j in range(n):
        relaxed, strict, quality = _exposure(
            tw, rc, fields[j], layout.bands[j], float(layout.exptime_s[j]), slots.half_d, start
        )
        alive_r = alive_r & relaxed
        alive_s = strict if alive_s is None else alive_s & strict
        longest = longest + alive_r
        shortest = shortest + alive_s
        qualities.append(quality)
    p_hi = longest.max(axis=-1)  # (R, K)
    p_lo = np.maximum(shortest.min(axis=-1), 1)
    cum_value = np.cumsum(qualities, axis=0) * (rc.priority / n)[None, :, None]
    for p in range(1, n + 1):
        r_idx, k_idx = np.nonzero((p_lo <= p) & (p <= p_hi))
        value = cum_value[p - 1][r_idx, k_idx]
        keep = value > 1e-12
        r_idx, k_idx = r_idx[keep], k_idx[keep]
        out.add(
            tel=np.full(r_idx.size, t_index),
            row=chunk[r_idx],
            slot=k_idx,
            prefix=np.full(r_idx.size, p),
            value=value[keep],
            occupancy_s=np.full(r_idx.size, layout.occupancy_s[p - 1]),
            t_lo=slots.starts[k_idx],
            t_hi=slots.ends[k_idx],
        )


# -- the MILP -------------------------------------------------------------------------------
class _Rows:
    """Sparse constraint rows ``lb <= A x <= ub`` built entry by entry."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lb: list[float] = []
        self.ub: list[float] = []

    def add(self, cols: np.ndarray, coefs: np.ndarray | float, lb: float, ub: float) -> None:
        cols = np.asarray(cols, dtype=np.int64)
        self.r.append(np.full(cols.size, len(self.lb)))
        self.c.append(cols)
        self.v.append(np.broadcast_to(np.asarray(coefs, dtype=float), cols.shape))
        self.lb.append(lb)
        self.ub.append(ub)

    def __len__(self) -> int:
        return len(self.lb)

    def constraint(self, n_cols: int) -> LinearConstraint:
        a = sparse.csr_array(
            (np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
            shape=(len(self.lb), n_cols),
        )
        return LinearConstraint(a, np.array(self.lb), np.array(self.ub))


def _capacity_rows(
    rows: _Rows,
    v: _Variables,
    t_index: int,
    slots: _Slots,
    win: NightWindow,
    readout_s: float,
    u0: int,
) -> None:
    """Load of each slot (column ``u0 + k``) and the time each run of slots can hold."""
    tel = v.get("tel")
    mine = np.flatnonzero(tel == t_index)
    slot, occ = v.get("slot")[mine], v.get("occupancy_s")[mine]
    k_total = slots.starts.size
    for k in range(k_total):
        sel = mine[slot == k]
        rows.add(np.append(sel, u0 + k), np.append(-occ[slot == k], 1.0), 0.0, 0.0)
    # Largest end of a visit starting in slot k: the slot's end plus its longest visit.
    reach = np.full(k_total, -np.inf)
    np.maximum.at(reach, slot, slots.ends[slot] + occ / S_PER_DAY)
    night_cap = win.end_mjd + readout_s / S_PER_DAY
    for m in sorted({w for w in WINDOW_SLOTS if w < k_total} | {k_total}):
        for k in range(k_total - m + 1):
            last = float(reach[k : k + m].max())
            if last == -np.inf:
                continue
            cap_d = min(last, night_cap) - slots.starts[k]
            rows.add(u0 + np.arange(k, k + m), 1.0, -np.inf, cap_d * S_PER_DAY)


def _request_rows(rows: _Rows, v: _Variables, requests: list[Request], span_d: float) -> None:
    """Visits wanted and cadence spacing of each request, over all telescopes."""
    row = v.get("row")
    order = np.argsort(row, kind="stable")
    bounds = np.flatnonzero(np.diff(row[order])) + 1
    t_lo, t_hi = v.get("t_lo"), v.get("t_hi")
    for cols in np.split(order, bounds) if order.size else []:
        request = requests[int(row[cols[0]])]
        cadence = request.cadence_days or 0.0
        cap = request.visits if request.visits > 0 else math.inf
        if cadence >= span_d:
            cap = min(cap, 1)
        if cap < cols.size:
            rows.add(cols, 1.0, -np.inf, float(cap))
        if cap > 1 and 0.0 < cadence < span_d:
            _cadence_rows(rows, cols, t_lo[cols], t_hi[cols], cadence)


def _cadence_rows(
    rows: _Rows, cols: np.ndarray, t_lo: np.ndarray, t_hi: np.ndarray, cadence_d: float
) -> None:
    """At most one first-exposure start in any [a, a + cadence): the visits whose slots
    lie inside such a window, for a at every slot start."""
    previous: frozenset = frozenset()
    for a in np.unique(t_lo):
        inside = (t_lo >= a) & (t_hi <= a + cadence_d)
        members = frozenset(np.flatnonzero(inside).tolist())
        if len(members) > 1 and not members <= previous:
            rows.add(cols[sorted(members)], 1.0, -np.inf, 1.0)
        previous = members


@dataclass
class _Model:
    """The MILP of one night: visit variables, then one load column per telescope slot."""

    names: list[str]
    requests: list[Request]
    variables: _Variables
    slots_of: dict[int, _Slots]
    rows: _Rows
    n_cols: int

    @property
    def n_x(self) -> int:
        return self.variables.get("value").size

    def per_telescope(self) -> dict[str, int]:
        counts = np.bincount(self.variables.get("tel").astype(np.int64), minlength=len(self.names))
        return {name: int(counts[i]) for i, name in enumerate(self.names)}


def _build(
    world: World, night: int, slot_min: float, sample_min: float, confirmations: bool
) -> _Model:
    requests, available = oracle_requests(world, night, confirmations)
    wins = _night_windows(world, night)
    names = [tw.name for tw in world.telescopes]
    v = _Variables()
    slots_of: dict[int, _Slots] = {}
    for tw, win in wins:
        t_index = names.index(tw.name)
        slots_of[t_index] = _Slots.of(win, slot_min, sample_min)
        _telescope_variables(t_index, tw, win, slots_of[t_index], requests, available, v)
    rows = _Rows()
    u0 = v.get("value").size
    if u0 == 0:
        return _Model(names, requests, v, slots_of, rows, 0)
    for tw, win in wins:
        t_index = names.index(tw.name)
        _capacity_rows(rows, v, t_index, slots_of[t_index], win, tw.telescope.readout_s, u0)
        u0 += slots_of[t_index].starts.size
    span_d = max(w.end_mjd for _, w in wins) - min(w.start_mjd for _, w in wins)
    _request_rows(rows, v, requests, span_d)
    return _Model(names, requests, v, slots_of, rows, u0)


def oracle_bound(
    world: World,
    night: int = 0,
    slot_min: float = 5.0,
    time_limit_s: float = 60.0,
    *,
    sample_min: float = 1.0,
    mip_rel_gap: float = 1e-4,
    confirmations: bool = True,
) -> OracleResult:
    """Upper bound on the science value any policy can be credited with on ``night``
    (see the module docstring for the formulation and its arguments).

    ``time_limit_s`` is the budget of the whole call: building the model, then its LP
    relaxation (a valid bound on its own, should the MILP be stopped before its root),
    then the MILP in the time left."""
    if slot_min <= 0.0 or sample_min <= 0.0:
        raise ValueError(f"slot_min and sample_min must be > 0 (got {slot_min}, {sample_min})")
    t_start = time.perf_counter()
    model = _build(world, night, slot_min, sample_min, confirmations)
    build_s = time.perf_counter() - t_start
    if model.n_x == 0:
        return OracleResult(
            0.0,
            0.0,
            "empty",
            0,
            0.0,
            {name: [] for name in model.names},
            build_s=build_s,
            requests=model.requests,
            lp_bound=0.0,
            value_by_telescope=dict.fromkeys(model.names, 0.0),
            variables_by_telescope=model.per_telescope(),
        )
    n_x, n_cols = model.n_x, model.n_cols
    c = np.concatenate([-model.variables.get("value"), np.zeros(n_cols - n_x)])
    integrality = np.concatenate([np.ones(n_x), np.zeros(n_cols - n_x)])
    bounds = Bounds(np.zeros(n_cols), np.concatenate([np.ones(n_x), np.full(n_cols - n_x, np.inf)]))
    constraint = model.rows.constraint(n_cols)

    def left_s() -> float:
        return max(1.0, time_limit_s - (time.perf_counter() - t_start))

    lp = milp(
        c,
        integrality=np.zeros(n_cols),
        bounds=bounds,
        constraints=constraint,
        options={"time_limit": left_s(), "disp": False},
    )
    lp_bound = -float(lp.fun) if lp.status == 0 else math.inf
    res = milp(
        c,
        integrality=integrality,
        bounds=bounds,
        constraints=constraint,
        options={"time_limit": left_s(), "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    solve_s = time.perf_counter() - t_start - build_s
    return _result(res, model, lp_bound, build_s, solve_s)


def _result(res, model: _Model, lp_bound: float, build_s: float, solve_s: float) -> OracleResult:
    v, names, n_x = model.variables, model.names, model.n_x
    status = STATUS.get(res.status, str(res.status))
    value = v.get("value")
    chosen = np.zeros(n_x, dtype=bool) if res.x is None else res.x[:n_x] > 0.5
    objective = float(value[chosen].sum())
    # Every bound below is valid; the tightest is reported (never below the plan found).
    dual = getattr(res, "mip_dual_bound", None)
    candidates = [lp_bound, float(value.sum())]
    if dual is not None and np.isfinite(dual):
        candidates.append(-float(dual))
    upper = max(min(candidates), objective)
    tel, slot, row = v.get("tel"), v.get("slot"), v.get("row")
    plan: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
    by_tel = dict.fromkeys(names, 0.0)
    for i in np.flatnonzero(chosen):
        t = int(tel[i])
        plan[names[t]].append((float(model.slots_of[t].starts[slot[i]]), int(row[i])))
        by_tel[names[t]] += float(value[i])
    for name in names:
        plan[name].sort()
    gap = getattr(res, "mip_gap", None)
    return OracleResult(
        upper_bound=upper,
        milp_objective=objective,
        status=status,
        n_variables=n_x,
        solve_s=solve_s,
        plan=plan,
        n_constraints=len(model.rows),
        build_s=build_s,
        mip_gap=math.nan if gap is None else float(gap),
        lp_bound=lp_bound,
        requests=model.requests,
        value_by_telescope=by_tel,
        variables_by_telescope=model.per_telescope(),
    )


def oracle_value_for_scenario(
    scenario: Scenario, night: int = 0, seed: int | None = None, **kwargs
) -> OracleResult:
    """:func:`oracle_bound` of ``scenario``'s world (drawn from ``seed``, default the
    scenario's), without running the twin."""
    return oracle_bound(World(scenario, seed), night, **kwargs)


# -- the policy -----------------------------------------------------------------------------
class OraclePolicy:
    """Replays the oracle's plan in the twin; greedy where the plan has nothing to do.

    Description: plans are solved once per night (:func:`oracle_bound`), the first time a
    telescope decides in it. At each decision, among the feasible candidates planned at
    this telescope from ``lookback_slots`` slots ago to ``lookahead_slots`` ahead and not
    yet taken, it takes the best by greedy's rate (value per second, slew included);
    with none, greedy (:class:`agents.baselines.GreedyPolicy`) among the feasible
    candidates no telescope has planned for later; with none of those either, it waits
    for its next planned visit. Planned visits left more than ``lookback_slots`` behind
    are given up (the plan ignores slews, so a telescope falls behind it).

    The oracle needs the World (the truth). :class:`~twin.ops.network.NetworkTwin` calls
    :meth:`bind` with it before ``reset``; it can also be given at construction
    (``world=``, or ``scenario=`` to draw it from the run's seed at ``reset``) and
    ``results=`` replays saved plans (``{night: OracleResult}``). Without a world it is
    greedy. This policy sees the truth: it is a reference, not a fair competitor, and
    its runs are reproducible only when the MILP finishes within ``time_limit_s`` (a
    plan found at a time limit depends on the machine's speed).

    Arguments:

    | name            | unit | default | meaning                                     |
    |-----------------|------|---------|---------------------------------------------|
    | world           |      | None    | the run's World (else bound by the twin)    |
    | scenario        |      | None    | draw the World at ``reset`` instead         |
    | slot_min        | min  | 5       | the oracle's slot length                    |
    | time_limit_s    | s    | 60      | budget of each night's plan                 |
    | lookahead_slots |      | 2       | planned visits taken this many slots early  |
    | lookback_slots  |      | 3       | and until this many slots late              |
    | idle_wait_s     | s    | 300     | wait when nothing is feasible               |
    | oracle_kwargs   |      | None    | more keyword arguments of ``oracle_bound``  |
    | results         |      | None    | plans already solved, by night              |
    """

    name = "oracle"

    def __init__(
        self,
        world: World | None = None,
        scenario: Scenario | None = None,
        slot_min: float = 5.0,
        time_limit_s: float = 60.0,
        lookahead_slots: int = 2,
        lookback_slots: int = 3,
        idle_wait_s: float = 300.0,
        oracle_kwargs: dict | None = None,
        results: dict[int, OracleResult] | None = None,
    ) -> None:
        self.world = world
        self.scenario = scenario
        self.slot_min = slot_min
        self.time_limit_s = time_limit_s
        self.lookahead_slots = lookahead_slots
        self.lookback_slots = lookback_slots
        self.idle_wait_s = idle_wait_s
        self.oracle_kwargs = oracle_kwargs or {}
        self.results: dict[int, OracleResult] = dict(results or {})
        self._greedy = GreedyPolicy(idle_wait_s)
        self._pending: dict[tuple[int, str], list[list]] = {}
        self._alert_ids: dict[int, str] = {}

    def bind(self, world: World) -> None:
        """Give the policy the run's World (the twin calls this before ``reset``)."""
        self.world = world
        self._pending.clear()
        self._alert_ids.clear()

    def reset(self, seed: np.random.SeedSequence) -> None:
        self._greedy.reset(seed)
        if self.world is None and self.scenario is not None:
            entropy = seed.entropy if isinstance(seed.entropy, int) else None
            self.bind(World(self.scenario, entropy))

    def decide(self, conditions: Conditions) -> Observe | Wait:
        c = conditions.candidates
        feasible = np.flatnonzero(c.feasible)
        if feasible.size == 0:
            return Wait(self.idle_wait_s)
        night = self._night(conditions)
        if night is None:
            return Observe(int(feasible[self._greedy.choose(conditions, feasible)]))
        pending = self._plan(night, conditions.telescope.name)
        ids = [self._request_id(conditions, int(k)) for k in feasible]
        slot_d = self.slot_min / 1440.0
        lo = conditions.mjd - self.lookback_slots * slot_d
        hi = conditions.mjd + self.lookahead_slots * slot_d
        due = {item[1]: item for item in pending if lo <= item[0] <= hi}
        pool = np.array([k for k, rid in zip(feasible, ids, strict=True) if rid in due])
        if pool.size == 0:
            later = [item for item in pending if item[0] > hi]
            planned = {
                item[1]
                for (n, _), items in self._pending.items()
                if n == night
                for item in items
                if item[0] > lo
            }
            pool = np.array([k for k, rid in zip(feasible, ids, strict=True) if rid not in planned])
            if pool.size == 0:  # keep the planned visits for their time
                next_s = (min(item[0] for item in later) - hi) * S_PER_DAY if later else 0.0
                return Wait(min(self.idle_wait_s, max(60.0, next_s)))
        k = int(pool[self._greedy.choose(conditions, pool)])
        chosen = ids[int(np.flatnonzero(feasible == k)[0])]
        if chosen in due:
            pending.remove(due[chosen])
        return Observe(k)

    # -- helpers ---------------------------------------------------------------------------
    def _night(self, conditions: Conditions) -> int | None:
        if self.world is None:
            return None
        for tw in self.world.telescopes:
            if tw.name == conditions.telescope.name:
                for win in tw.site.nights:
                    if win.start_mjd <= conditions.mjd < win.end_mjd:
                        return win.night
        return None

    def _plan(self, night: int, telescope: str) -> list[list]:
        if night not in self.results:
            self.results[night] = oracle_bound(
                self.world, night, self.slot_min, self.time_limit_s, **self.oracle_kwargs
            )
        if (night, telescope) not in self._pending:
            result = self.results[night]
            for name, items in result.plan.items():
                self._pending[(night, name)] = [
                    [t, result.requests[row].request_id] for t, row in items
                ]
        return self._pending.setdefault((night, telescope), [])

    def _request_id(self, conditions: Conditions, k: int) -> str:
        """The request id of candidate ``k``: the world's requests are the queue's first
        rows; alert requests are told apart by priority and where their target stands."""
        row = int(conditions.candidates.request_index[k])
        if row < len(self.world.requests):
            return self.world.requests[row].request_id
        if row not in self._alert_ids:
            self._alert_ids[row] = self._match_alert(conditions, k)
        return self._alert_ids[row]

    def _match_alert(self, conditions: Conditions, k: int) -> str:
        """The oracle's alert request with the candidate's priority whose target stands
        where the candidate's does: the engine gives the altitude after the slew and the
        azimuth at the decision."""
        c = conditions.candidates
        site = next(s for s in self.world.sites if s.site.name == conditions.telescope.site)
        after_slew = conditions.mjd + float(c.slew_s[k]) / S_PER_DAY
        best, best_d = f"row-{int(c.request_index[k])}", ALERT_MATCH_DEG
        n_world = len(self.world.requests)
        extra = {r.request_id: r for res in self.results.values() for r in res.requests[n_world:]}
        for request in extra.values():
            if not math.isclose(request.priority, float(c.priority[k])):
                continue
            alt, _, _ = site.visibility.altaz(request.ra_deg, request.dec_deg, after_slew)
            _, az, _ = site.visibility.altaz(request.ra_deg, request.dec_deg, conditions.mjd)
            d_az = (float(az) - float(c.az_deg[k]) + 180.0) % 360.0 - 180.0
            d = math.hypot(float(alt) - float(c.alt_deg[k]), d_az * math.cos(math.radians(alt)))
            if d < best_d:
                best, best_d = request.request_id, d
        return best
