"""The oracle's discretisation of a night: slots with sampled first-exposure starts, the
layout of a visit's exposures, and the truth that depends on time only (closures,
weather extremes, sun, moon, equipment) at those samples.

Part of :mod:`agents.oracle` (the formulation is in its docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.ops.intervals import Intervals
from twin.ops.nights import NightWindow
from twin.ops.world import SiteWorld, TelescopeWorld
from twin.programme.requests import Request

S_PER_DAY = 86400.0


@dataclass
class Slots:
    """Slots of one telescope's night and the sampled first-exposure start times."""

    starts: np.ndarray  # (K,) MJD
    ends: np.ndarray  # (K,) MJD
    samples: np.ndarray  # (K, S) MJD, both ends of every slot included
    half_d: float  # half a sample step, days

    @classmethod
    def of(cls, win: NightWindow, slot_min: float, sample_min: float) -> Slots:
        slot_d = slot_min / 1440.0
        k = max(1, math.ceil((win.end_mjd - win.start_mjd) / slot_d - 1e-9))
        starts = win.start_mjd + slot_d * np.arange(k)
        ends = np.minimum(starts + slot_d, win.end_mjd)
        n_sub = max(1, math.ceil(slot_min / sample_min - 1e-9))
        frac = np.linspace(0.0, 1.0, n_sub + 1)
        samples = starts[:, None] + (ends - starts)[:, None] * frac[None, :]
        return cls(starts, ends, samples, 0.5 * slot_d / n_sub)


@dataclass(frozen=True)
class Layout:
    """Where each exposure of a visit starts, relative to the first, at one telescope."""

    bands: tuple[str, ...]
    exptime_s: np.ndarray
    offset_s: np.ndarray
    occupancy_s: np.ndarray  # occupancy of a visit that completes p exposures, at p - 1

    @classmethod
    def of(
        cls, plan_key: tuple[tuple[str, float], ...], readout_s: float, filter_change_s: float
    ) -> Layout:
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


def plan_key(request: Request) -> tuple[tuple[str, float], ...]:
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


def alt_tol_deg(half_s: float) -> float:
    """Most any altitude (target, sun, moon) moves in ``half_s`` seconds: the sky turns
    15.04 deg an hour; 0.02 deg more for the almanac's interpolation."""
    return 15.05 / 3600.0 * half_s + 0.02


def time_fields(
    tw: TelescopeWorld,
    win: NightWindow,
    slots: Slots,
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
