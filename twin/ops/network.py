"""The operations engine: one SimPy process per telescope; the centre is :mod:`twin.ops.centre`.

Each telescope, inside its site's night window: if a component is down it waits for the
repair; if the dome is closed it waits for it to reopen; otherwise it asks the policy.
``Observe`` slews (per-axis kinematics, dome, settle, filter), then takes the visit's
exposures one by one; before each exposure the constraints are checked exactly at both
ends and the conditions measured, and an exposure that a dome closure, a failure or the
night's end would cut is aborted (logged, not observed). ``Wait`` idles until the wait
ends, the next closure or failure, or a new request reaches the site.

The centre (:class:`~twin.ops.centre.Centre`) receives alerts from the broker, turns them
into follow-up requests and sends them over each site's link (latency, outages); a site
reports a detection back over its link and the centre asks another site to confirm.
Everything is logged through a
:class:`~twin.ops.recorder.Recorder` as the simulation advances.

SimPy time is seconds since the run's start; MJD = start + seconds / 86400.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import simpy

from twin.ops.candidates import CandidateBuilder
from twin.ops.centre import Centre
from twin.ops.conditions import (
    Candidates,
    Conditions,
    Observe,
    Policy,
    SiteStatus,
    TelescopeStatus,
    Wait,
)
from twin.ops.engines import DEFAULT_ENGINE, ENGINES
from twin.ops.exposures import Exposure, exposure_columns, exposure_detected, exposure_truth
from twin.ops.queue import RequestQueue
from twin.ops.recorder import Recorder
from twin.ops.world import SiteWorld, TelescopeWorld, World
from twin.programme import constraints

S_PER_DAY = 86400.0
EPS_S = 1e-6


@dataclass
class TelescopeRun:
    """Mutable state of one telescope during the run."""

    world: TelescopeWorld
    builder: CandidateBuilder
    alt_deg: float = 60.0
    az_deg: float = 180.0
    band: str | None = None
    state: str = "day"
    busy_until_mjd: float = -math.inf
    night: int = -1
    index: int = 0
    expected_quality: float = math.nan  # the scheduler's expectation for the current visit


CONFLICT_WAIT_S = 1.0
"""A telescope whose choice another took at the same instant waits this long and decides
again (it then sees the request as taken)."""


@dataclass
class RunCounters:
    exposures: int = 0
    visits: int = 0
    decisions: int = 0
    invalid_actions: int = 0
    conflicts: int = 0  # two telescopes chose one request at the same instant
    program_science_s: dict[str, float] = field(default_factory=dict)


class NetworkTwin:
    """Runs a :class:`World` under a policy, writing the run's tables to ``recorder``."""

    def __init__(self, world: World, policy: Policy, recorder: Recorder,
                 on_day: Callable[[int], None] | None = None,
                 engine: str = DEFAULT_ENGINE) -> None:  # fmt: skip
        self.world = world
        self.policy = policy
        self.rec = recorder
        self.on_day = on_day
        self.ops = world.scenario.operations
        self.env = simpy.Environment()
        self.t0_mjd = world.start_mjd
        program_names = list(world.program_shares)
        self.queue = RequestQueue([s.site.name for s in world.sites], program_names)
        self.queue.add(world.requests, np.full(len(world.sites), -math.inf), self.t0_mjd)
        self.share_target = np.array([world.program_shares.get(n, 0.0) for n in program_names])
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
        self.engine = engine
        builder = ENGINES[engine]
        self.units = [
            TelescopeRun(t, builder(self.queue, t.site.visibility, t.telescope, t.quality))
            for t in world.telescopes
        ]
        self.centre = Centre(self)
        self.alerts = self.centre.alerts  # by alert id: what the centre knows of each
        self.counters = RunCounters()
        self.science_s_by_program = np.zeros(len(program_names))
        self._wake = [self.env.event() for _ in world.sites]
        self._obs_id = 0
        self._visit_id = 0
        self._observers: list[Callable] = []
        # Each site's night starts and ends, in order and not overlapping (noon to noon):
        # bisected at every decision (a year's 365 nights were scanned one by one).
        self._night_bounds = {sw.index: ([n.start_mjd for n in sw.nights],
                                         [n.end_mjd for n in sw.nights])
                              for sw in world.sites}  # fmt: skip
        self._visit_observers: list[Callable] = []
        self.decisions: list | None = None  # set by SteppedTwin: decisions wait there
        self.pipeline = None  # a twin.pipeline.loop.SitePipeline when models run in the loop
        # By telescope, the latest measurement of its frames (filled by the pipeline);
        # policies see it read-only as Conditions.measured.
        self.measured: dict = {}
        self._measured_view = MappingProxyType(self.measured)
        # Per programme, the frame quality below which the centre rejects a frame (0
        # without a pipeline: nothing is rejected); a pipeline sets it, policies read it.
        self.program_min_quality = np.zeros(len(self.queue.program_names))
        self.record_truth = True  # False: skip the log's truth columns (training)
        self._pending: list[list[tuple]] = [[] for _ in self.units]
        for i, unit in enumerate(self.units):
            unit.index = i
        bind = getattr(policy, "bind", None)
        if callable(bind):  # offline policies (the oracle) may read the drawn world
            bind(world)
        policy.reset(world.policy_seed)

    # -- time ------------------------------------------------------------------------
    def mjd(self) -> float:
        return self.t0_mjd + self.env.now / S_PER_DAY

    def _until(self, mjd: float) -> simpy.Event:
        return self.env.timeout(max(0.0, (mjd - self.t0_mjd) * S_PER_DAY - self.env.now))

    def at(self, mjd: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the simulation reaches ``mjd`` (at once if already past)."""
        self._until(mjd).callbacks.append(lambda _event: fn())

    # -- logging ---------------------------------------------------------------------
    def event(self, mjd: float, kind: str, site: str = "", telescope: str = "", ref: str = "",
              detail: str = "", value: float = math.nan) -> None:  # fmt: skip
        self.rec["events"].append((mjd, kind, site, telescope, ref, detail, value))

    def span(self, unit: TelescopeRun, state: str, start: float, end: float) -> None:
        if end > start:
            w = unit.world
            self.rec["timeline"].append((w.name, w.site.site.name, unit.night, state, start, end))

    def wake_site(self, site_index: int) -> None:
        """Wake the idle telescopes of a site (a new request has reached it)."""
        wake = self._wake[site_index]
        self._wake[site_index] = self.env.event()
        wake.succeed()

    # -- run -------------------------------------------------------------------------
    def run(self) -> RunCounters:
        self.start()
        self.env.run(until=self.end_s)
        self.flush_observations()
        self.rec.end_day(self.n_days - 1)
        return self.counters

    @property
    def n_days(self) -> int:
        """Simulated days of the run (the recorder writes one part of each table per day)."""
        return max(1, math.ceil(self.end_s / S_PER_DAY - 1e-9))

    @property
    def end_s(self) -> float:
        return (self.world.end_mjd - self.t0_mjd) * S_PER_DAY

    def start(self) -> None:
        """Schedule every process; the caller then runs (or steps) ``self.env``."""
        env = self.env
        self._schedule_world_events()
        for unit in self.units:
            env.process(self._telescope(unit))
        self.centre.start()
        env.process(self._days())

    def add_visit_observer(self, fn: Callable) -> None:
        """``fn(unit, row, visit_id)`` when a visit ends (its visit is recorded, if any)."""
        self._visit_observers.append(fn)

    def add_observer(self, fn: Callable) -> None:
        """``fn(unit, exposure)`` after every exposure (an :class:`Exposure`)."""
        self._observers.append(fn)

    def _days(self):
        day = 0
        while True:
            yield self.env.timeout(S_PER_DAY)
            day += 1
            self.flush_observations()
            self.rec.end_day(day - 1)
            if self.on_day is not None:
                self.on_day(day)

    def _schedule_world_events(self) -> None:
        start, end = self.world.start_mjd, self.world.end_mjd
        rows: list[tuple] = []
        for sw in self.world.sites:
            name = sw.site.name
            for win in sw.nights:
                rows.append((win.start_mjd, "night_start", name, "", "", f"night {win.night}",
                             win.hours))  # fmt: skip
                rows.append((win.end_mjd, "night_end", name, "", "", f"night {win.night}",
                             win.hours))  # fmt: skip
            for a, b in sw.dome_closed:
                if b <= start:
                    continue
                rows.append((max(a, start), "dome_close", name, "", "", "weather", math.nan))
                rows.append((b, "dome_open", name, "", "", "weather", math.nan))
            for t, kind in sw.link.events():
                rows.append((t, kind, name, "", "link", "", math.nan))
        for tw in self.world.telescopes:
            for comp in ("mount", "dome", "camera"):
                for a, b in tw.equipment.failures.intervals(comp):
                    if b <= start:
                        continue
                    # Clamped like the dome: a failure from before the run is logged at
                    # its start, so every repair in the log has its failure.
                    rows.append((max(a, start), "failure", tw.site.site.name, tw.name, comp,
                                 "", math.nan))  # fmt: skip
                    rows.append((b, "repair", tw.site.site.name, tw.name, comp, "",
                                 (b - a) * 24.0))  # fmt: skip
        for row in sorted(r for r in rows if start <= r[0] < end):
            self.at(row[0], lambda row=row: self.event(*row))

    # -- one telescope -----------------------------------------------------------------
    def _telescope(self, unit: TelescopeRun):
        sw = unit.world.site
        for win in sw.nights:
            if self.mjd() >= win.end_mjd:
                continue
            unit.state = "day"
            yield from self._daytime_calibrations(unit, win)
            yield self._until(win.start_mjd)
            unit.night = win.night
            while True:
                mjd = self.mjd()
                if mjd >= win.end_mjd - EPS_S / S_PER_DAY:
                    break
                repair = unit.world.down.until(mjd)
                if repair is not None:
                    unit.state = "down"
                    end = min(repair, win.end_mjd)
                    yield self._until(end)
                    self.span(unit, "failure", mjd, self.mjd())
                    continue
                reopen = sw.dome_closed.until(mjd)
                if reopen is not None:
                    unit.state = "closed"
                    yield self._until(min(reopen, win.end_mjd))
                    self.span(unit, "weather", mjd, self.mjd())
                    continue
                conditions = self._conditions(unit, mjd, win.end_mjd)
                if self.decisions is not None:  # inverted control (the envs)
                    event = self.env.event()
                    self.decisions.append((unit, conditions, event))
                    action = yield event
                else:
                    action = self.policy.decide(conditions)
                self.counters.decisions += 1
                if isinstance(action, Observe):
                    cand = conditions.candidates
                    k = action.candidate
                    if not 0 <= k < len(cand):
                        raise ValueError(
                            f"policy {self.policy.name!r} chose candidate {k}; "
                            f"allowed: 0..{len(cand) - 1}"
                        )
                    taken = self.queue.in_progress[cand.request_index[k]]
                    if cand.feasible[k] and not taken:
                        yield from self._visit(unit, win, cand, k)
                        continue
                    if taken:  # another telescope started it at this same instant
                        self.counters.conflicts += 1
                        action = Wait(CONFLICT_WAIT_S)
                    else:
                        self.counters.invalid_actions += 1
                        action = Wait(60.0)
                yield from self._idle(unit, win, mjd, action.seconds if isinstance(action, Wait)
                                      else self.ops.idle_wait_s)  # fmt: skip
            unit.state = "day"
            self._night_data(unit, win)

    def _idle(self, unit: TelescopeRun, win, mjd: float, seconds: float):
        sw = unit.world.site
        seconds = min(max(seconds, 1.0), self.ops.idle_wait_s)
        end = min(mjd + seconds / S_PER_DAY, win.end_mjd, sw.dome_closed.next_start(mjd),
                  unit.world.down.next_start(mjd))  # fmt: skip
        unit.state = "idle"
        yield self.env.any_of([self._until(end), self._wake[sw.index]])
        self.span(unit, "idle", mjd, self.mjd())

    def _daytime_calibrations(self, unit: TelescopeRun, win):
        """Biases and darks in the afternoon (dome shut), flats in evening twilight."""
        sw, name = unit.world.site, unit.world.name
        site = sw.site.name
        t_cal = win.start_mjd - 2.0 / 24.0
        if self.mjd() <= t_cal:
            yield self._until(t_cal)
            if unit.world.down.until(t_cal) is None:
                if self.ops.bias_frames:
                    self.event(t_cal, "calibration", site, name, "", "bias", self.ops.bias_frames)
                if self.ops.dark_frames:
                    self.event(t_cal, "calibration", site, name, "", "dark", self.ops.dark_frames)
        t_flat = win.start_mjd - 20.0 / 1440.0
        if self.mjd() <= t_flat:
            yield self._until(t_flat)
            ok = sw.dome_closed.until(t_flat) is None and unit.world.down.until(t_flat) is None
            if ok and self.ops.flat_frames_per_band:
                bands = [b for b in self.ops.flat_bands if b in unit.world.telescope.bands]
                self.event(t_flat, "calibration", site, name, "", "twilight_flat",
                           self.ops.flat_frames_per_band * len(bands))  # fmt: skip

    def _night_data(self, unit: TelescopeRun, win) -> None:
        uplink = unit.world.site.uplink
        if uplink.busy_until_mjd > -math.inf:
            arrival = uplink.busy_until_mjd + uplink.link.spec.latency_days
            self.event(self.mjd(), "data_delivered", unit.world.site.site.name, unit.world.name,
                       f"night {win.night}", f"last byte at MJD {arrival:.5f}",
                       float(unit.world.frame_bytes))  # fmt: skip

    # -- conditions ----------------------------------------------------------------------
    def _measured(self, sw: SiteWorld, mjd: float) -> dict[str, float]:
        return {k: sw.weather.at(mjd, k) for k in ("seeing_fwhm_arcsec", "transparency",
                                                    "cloud_cover")}  # fmt: skip

    def _site_status(self, sw: SiteWorld, mjd: float, night_end: float | None = None
                     ) -> SiteStatus:  # fmt: skip
        w = self._measured(sw, mjd)
        alm = sw.visibility.almanac
        starts, ends = self._night_bounds[sw.index]
        if night_end is None:
            j = bisect.bisect_right(ends, mjd)  # the first night ending after now
            night_end = ends[j] if j < len(ends) else math.nan
        i = bisect.bisect_right(starts, mjd) - 1  # the last night started by now
        is_night = i >= 0 and mjd < ends[i]
        return SiteStatus(
            name=sw.site.name, is_night=is_night, dome_open=sw.dome_closed.until(mjd) is None,
            seeing_zenith_arcsec=w["seeing_fwhm_arcsec"], transparency=w["transparency"],
            cloud_cover=w["cloud_cover"], night_end_mjd=night_end,
            sun_alt_deg=float(np.interp(mjd, alm.mjd, alm.sun_alt_deg_grid)),
            moon_alt_deg=float(np.interp(mjd, alm.mjd, alm.moon_alt_deg_grid)),
            moon_illum=float(np.interp(mjd, alm.mjd, alm.moon_illum_grid)),
        )  # fmt: skip

    def _status(self, unit: TelescopeRun) -> TelescopeStatus:
        return TelescopeStatus(
            unit.world.name,
            unit.world.site.site.name,
            unit.state,
            unit.alt_deg,
            unit.az_deg,
            unit.band,
            unit.busy_until_mjd,
        )

    def _conditions(self, unit: TelescopeRun, mjd: float, night_end: float) -> Conditions:
        sw = unit.world.site
        site = self._site_status(sw, mjd, night_end)
        candidates = unit.builder.build(mjd, unit.alt_deg, unit.az_deg, unit.band,
                                        site.seeing_zenith_arcsec, site.transparency,
                                        night_end)  # fmt: skip
        total = self.science_s_by_program.sum()
        used = self.science_s_by_program / total if total > 0 else self.share_target.copy()
        issued = mjd

        def forecast(site_name: str, when: np.ndarray, fields=None) -> dict[str, np.ndarray]:
            return self.world.forecast.predict(site_name, np.asarray(when, float), issued,
                                               fields)  # fmt: skip

        def network():
            sites = tuple(self._site_status(s, mjd) for s in self.world.sites)
            return sites, tuple(self._status(u) for u in self.units)

        return Conditions(
            mjd=mjd, telescope=self._status(unit), site=site, candidates=candidates,
            program_names=tuple(self.queue.program_names),
            program_share_target=self.share_target, program_share_used=used,
            open_alerts=self.centre.open_alerts, forecast=forecast, network=network,
            measured=self._measured_view, program_min_quality=self.program_min_quality,
        )  # fmt: skip

    # -- a visit -------------------------------------------------------------------------
    def _visit(self, unit: TelescopeRun, win, cand: Candidates, k: int):
        queue, sw, tw = self.queue, unit.world.site, unit.world
        row = int(cand.request_index[k])
        request = queue.requests[row]
        queue.in_progress[row] = True
        unit.state = "observing"
        unit.expected_quality = float(cand.quality[k])
        unit.busy_until_mjd = self.mjd() + (cand.slew_s[k] + cand.visit_s[k]) / S_PER_DAY
        self._visit_id += 1
        visit_id = self._visit_id
        slew_start = self.mjd()
        slew_s = float(cand.slew_s[k])
        yield self.env.timeout(slew_s)
        self.span(unit, "slew", slew_start, self.mjd())
        unit.alt_deg, unit.az_deg = float(cand.alt_deg[k]), float(cand.az_deg[k])
        unit.band = request.plan[0].band  # the filter changed during the slew
        exposures = [(p.band, p.exptime_s) for p in request.plan for _ in range(p.count)]
        n_done, first_start = 0, math.nan
        measured_rules = [
            (rule, float(queue.limits[rule.field][row]))
            for rule in constraints.rules()
            if rule.kind == "measured"
        ]
        for j, (band, exptime_s) in enumerate(exposures):
            if band != unit.band:
                t = self.mjd()
                yield self.env.timeout(tw.telescope.filter_change_s)
                self.span(unit, "slew", t, self.mjd())
                unit.band = band
            t0 = self.mjd()
            t1 = t0 + exptime_s / S_PER_DAY
            cut = min(sw.dome_closed.next_start(t0), tw.down.next_start(t0), win.end_mjd)
            if sw.dome_closed.until(t0) is not None or tw.down.until(t0) is not None:
                cut = t0
            if cut < t1:
                yield self._until(cut)
                self.span(unit, "aborted", t0, self.mjd())
                self.event(self.mjd(), "exposure_aborted", sw.site.name, tw.name,
                           request.request_id, "dome, failure or night end", exptime_s)  # fmt: skip
                break
            # The site's monitors measure the conditions as the shutter opens; the geometry
            # of the whole visit was checked by the constraint engine before the slew.
            measured = {
                "seeing_fwhm_arcsec": sw.weather.at(t0, "seeing_fwhm_arcsec")
                * unit.builder.seeing_factor(
                    band, float(cand.airmass[k]), float(cand.airmass_end[k])
                ),
                "transparency": sw.weather.at(t0, "transparency"),
            }
            if not all(r.holds(measured[r.quantity], limit) for r, limit in measured_rules):
                detail = ", ".join(
                    f"{rule.name} {measured[rule.quantity]:.2f} ({rule.sense} {limit})"
                    for rule, limit in measured_rules
                )
                self.event(t0, "visit_cut", sw.site.name, tw.name, request.request_id, detail)
                break
            yield self.env.timeout(exptime_s)
            self.span(unit, "science", t0, self.mjd())
            self._obs_id += 1
            exposure = Exposure(self._obs_id, visit_id, j, unit.night, row, band, exptime_s,
                                t0, t1, slew_s if j == 0 else 0.0, len(exposures), tw.name,
                                sw.site.name)  # fmt: skip
            self._pending[unit.index].append(exposure)
            self.counters.exposures += 1
            self.science_s_by_program[queue.program_index[row]] += exptime_s
            sw.uplink.send(t1 + tw.telescope.readout_s / S_PER_DAY, tw.frame_bytes)
            if request.alert_id:
                state = self.alerts[request.alert_id]
                detected = self.centre.detection_matters(
                    state, request, sw.site.name
                ) and exposure_detected(tw, queue, exposure, self._alert_mag)
                self.centre.alert_exposure(state, request, sw.site.name, t0, t1, detected, sw)
            for observer in self._observers:
                observer(unit, exposure)
            if n_done == 0:
                first_start = t0
            n_done += 1
            t = self.mjd()
            yield self.env.timeout(tw.telescope.readout_s)
            self.span(unit, "readout", t, self.mjd())
        queue.in_progress[row] = False
        unit.busy_until_mjd = self.mjd()
        if n_done:
            queue.record_visit(row, first_start)
            self.counters.visits += 1
        for observer in self._visit_observers:
            observer(unit, row, visit_id)

    def _alert_mag(self, alert_id: str, band: str, mjd: float) -> float:
        """The truth magnitude of a broker alert's transient; NaN for the network's own
        alerts (what they found is in the sky's truth, not in a light curve of theirs)."""
        state = self.alerts[alert_id]
        if state.source != "broker":
            return math.nan
        return float(state.alert.mag(band, mjd))

    def flush_observations(self) -> None:
        """Compute the truth of the exposures recorded since the last flush and write it."""
        for unit in self.units:
            pending = self._pending[unit.index]
            if pending and not self.record_truth:
                pending.clear()
            if pending:
                truth = exposure_truth(unit.world, self.queue, exposure_columns(pending),
                                       self._alert_mag)  # fmt: skip
                self.rec["observations"].write_columns(truth)
                pending.clear()
