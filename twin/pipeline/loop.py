"""The in-loop pipeline: each exposure's frame rendered as it ends, site stages, centre.

DESIGN.md's data flow with a pipeline on: exposure ends → :class:`Exposure` record →
frame rendered (:func:`twin.imaging.frames.spec_for_row`, the same seed as ``skytwin
frame``, so an in-loop frame equals the post-run one) → the site's stages → their
results travel over the site's link (:meth:`Link.message_arrival_mjd`: latency and
outages; a result is a few hundred bytes, so bandwidth does not delay it) → the centre
acts: a frame whose score is below its programme's threshold does not count and the
centre repeats the visit (:meth:`Centre.repeat_visit`) → what the network *measured*
is kept per telescope (:attr:`SitePipeline.measured`) and shown to the next decisions
as :attr:`Conditions.measured <twin.ops.conditions.Conditions.measured>`.

With a stage that finds transients (``produces_candidates``), the candidates travel with
the results and the centre's discovery desk (:mod:`twin.pipeline.discovery`) decides
what each is: a known alert's detection, the network's own discovery (an alert, a
confirmation request at a second site, follow-up), an asteroid, or nothing. Every
candidate is written to ``candidates.parquet`` with its class and, from the frame's
truth table (which the loop has and the stages never see), the truth it matches
(:func:`truth_match`). The stage gets the run's survey products once
(:class:`~twin.pipeline.stage.StageContext`) and each frame the spec of its field's
reference (:func:`twin.pipeline.survey.reference_spec`).

With a stage that makes products at the centre from groups of frames (``fusion``,
:func:`~twin.pipeline.stage.makes_centre_products`), every frame also counts at the
centre from the moment its bytes arrived over the site's uplink, and the centre groups
and fuses them (:mod:`twin.pipeline.fusion`, ``fusion.parquet`` and ``fused/``).

The stages' results are a function of the frame only, and the site's compute time is
the scenario's ``processing_s``, not the wall clock: a run with a pipeline is the same
bit for bit on any machine. Wall-clock costs (render, models) are counted apart, in
:attr:`SitePipeline.wall_s`, for the summary and the benchmark.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.errors import ConfigError
from twin.ops.conditions import MeasuredFrame
from twin.ops.exposures import Exposure, exposure_columns, exposure_truth
from twin.pipeline.discovery import (
    END_MARGIN_DAYS,
    TRUE_DISCOVERY_TRUTH,
    DiscoveryDesk,
    FrameReport,
)
from twin.pipeline.spec import PipelineSpec
from twin.pipeline.stage import (
    FLAG_NAMES,
    Candidate,
    Frame,
    FrameAtCentre,
    PipelineStage,
    StageContext,
    StageResult,
    bind_stage,
    configure_stages,
    makes_centre_products,
    produces_candidates,
)

if TYPE_CHECKING:
    from twin.ops.network import NetworkTwin, TelescopeRun

S_PER_DAY = 86400.0
TRUTH_MATCH_PIX = 2.0
"""A candidate is matched to the nearest non-static truth source within this (pixels)."""
STATIC_TYPES = ("star", "galaxy", "trail")
"""Truth types that are never a candidate's truth (they are in the reference too, or are
artefacts the classifier must call bogus)."""


def detection_mode(spec: PipelineSpec, stages: list[PipelineStage]) -> str:
    """``m5`` or ``stage``: what detects alerts' transients (``pipeline.detection``)."""
    finds = any(produces_candidates(s) for s in stages)
    if spec.detection == "auto":
        return "stage" if finds else "m5"
    if spec.detection == "stage" and not finds:
        raise ConfigError("pipeline", "detection", "'stage' needs a stage that finds "
                          f"candidates (such as transient); the stages are "
                          f"{[s.name for s in stages]}: add one or use 'm5'")  # fmt: skip
    return spec.detection


def truth_match(truth: pd.DataFrame, x_pix: float, y_pix: float, band: str = ""
                ) -> tuple[str, str, float, float]:  # fmt: skip
    """``(kind, id, mag, sep_pix)`` of the nearest non-static truth source within
    :data:`TRUTH_MATCH_PIX` of a candidate, or ``("", "", nan, nan)``.

    Kind and id are the population's (``pop_kind``, ``pop_id``) where the truth has them,
    else the truth type and the alert id (or source id)."""
    none = ("", "", math.nan, math.nan)
    if truth is None or len(truth) == 0 or "x_pix" not in truth:
        return none
    moving = ~truth["type"].isin(STATIC_TYPES).to_numpy()
    if "pop_kind" in truth:
        kinds = truth["pop_kind"].fillna("").astype(str).to_numpy()
        moving |= kinds != ""
    rows = truth[moving]
    if rows.empty:
        return none
    sep = np.hypot(rows["x_pix"].to_numpy(float) - x_pix, rows["y_pix"].to_numpy(float) - y_pix)
    k = int(np.argmin(sep))
    if not sep[k] <= TRUTH_MATCH_PIX:
        return none
    row = rows.iloc[k]
    kind = _text(row.get("pop_kind")) or _text(row.get("type"))
    ident = _text(row.get("pop_id")) or _text(row.get("alert_id")) or _text(row.get("source_id"))
    return kind, ident, float(row.get("mag", math.nan)), float(sep[k])


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


class SitePipeline:
    """Runs ``stages`` on every exposure's frame of a :class:`NetworkTwin`."""

    def __init__(self, twin: NetworkTwin, stages: list[PipelineStage], spec: PipelineSpec,
                 run_dir: Path | None = None) -> None:  # fmt: skip
        """``run_dir``: where ``frames/`` goes when ``spec.keep_frames``."""
        from twin.imaging.frames import GALAXY_BANK_DIR, options_for

        configure_stages(stages, spec)  # again here for the envs, which skip run_scenario
        self.twin = twin
        self.stages = stages
        self.spec = spec
        self.frames_dir = run_dir if spec.keep_frames else None
        scenario = twin.world.scenario
        self.options = options_for(scenario.imaging)
        if run_dir is not None:  # a learned galaxy source caches its stamps in the run
            bank = str(Path(run_dir) / GALAXY_BANK_DIR)
            self.options = replace(self.options, galaxy_bank_dir=bank)
        self.thresholds = {p.name: p.min_frame_quality for p in scenario.programmes
                           if p.min_frame_quality is not None}  # fmt: skip
        self.measured: dict[str, MeasuredFrame] = twin.measured  # shown in Conditions
        self.wall_s = Counter()  # render, each stage: wall-clock seconds
        self.frames = 0
        self.rejected = 0
        self._repeats = Counter()  # queue row -> repeats asked
        self._to_repeat: dict[int, str] = {}  # row in progress -> reason, applied at its end
        self._repeated_visits: set[int] = set()
        self._flag_run = Counter()  # (flag, telescope) -> consecutive frames flagged
        self.refocus_orders = 0
        self.service_orders = 0
        # What the centre rejects, per programme in the queue's order: policies see it
        # (Conditions.program_min_quality) and can avoid visits whose frames would fail.
        names = twin.queue.program_names
        twin.program_min_quality[:] = [self.thresholds.get(n, spec.min_quality) for n in names]
        # Transients: what detects alerts, the discovery desk, the stages' survey products.
        self.detection = detection_mode(spec, stages)
        twin.centre.detection = self.detection
        self.finds_candidates = any(produces_candidates(s) for s in stages)
        self.desk = None
        if self.finds_candidates:
            self.desk = DiscoveryDesk(twin, spec.discovery, self._classified,
                                      act=self.detection == "stage")  # fmt: skip
            twin.at(twin.world.end_mjd - END_MARGIN_DAYS, self._run_ends)
        self._candidate_rows: dict[tuple[int, int], tuple] = {}
        self._alert_truth: dict[str, str] = {}  # network alert -> its discovery's truth kind
        self.candidate_counts: Counter = Counter()
        self._latency_s: list[float] = []  # shutter close -> candidate at the centre
        context = StageContext(self.options, spec.reference,
                               None if run_dir is None else Path(run_dir))  # fmt: skip
        for stage in stages:
            bind_stage(stage, context)
        # Fusion at the centre: the one stage that fuses groups of frames, if any.
        self.fusion = None
        centre = [s for s in stages if makes_centre_products(s)]
        if len(centre) > 1:
            raise ConfigError("pipeline", "stages", "one stage at most may fuse groups at the "
                              f"centre; got {[s.name for s in centre]}")  # fmt: skip
        if centre:
            from twin.pipeline.fusion import FusionCentre

            self.fusion = FusionCentre(twin, centre[0], spec.fusion, run_dir)
        twin.add_observer(self.on_exposure)
        twin.add_visit_observer(self._visit_ended)

    def summary(self) -> dict:
        """Counts for metrics.json and the run's summary (wall seconds are the machine's)."""
        n = max(self.frames, 1)
        models_s = sum(v for k, v in self.wall_s.items() if k != "render")
        return {
            "stages": [s.name for s in self.stages],
            "versions": {s.name: s.version for s in self.stages},
            "frames": self.frames,
            "rejected": self.rejected,
            "visits_repeated": self.twin.centre.visits_repeated,
            "refocus_orders": self.refocus_orders,
            "service_orders": self.service_orders,
            "frame_size_pix": self.spec.frame_size_pix,
            "render_s_per_frame": round(self.wall_s["render"] / n, 4),
            "models_s_per_frame": round(models_s / n, 4),
            "stage_s_per_frame": {
                k: round(v / n, 4) for k, v in self.wall_s.items() if k != "render"
            },
            "detection": self.detection,
            **({"discovery": self.discovery_summary()} if self.finds_candidates else {}),
            **({"fusion": self.fusion.summary()} if self.fusion is not None else {}),
        }

    def discovery_summary(self) -> dict:
        """Candidates by class, the network's discoveries, confirmations, false alerts (a
        discovery whose candidate's truth is not a transient: an asteroid, a variable star,
        an AGN, an artefact), asteroids, latencies."""
        states = [s for s in self.twin.alerts.values() if s.source == "network"]
        confirmed = [s for s in states if math.isfinite(s.confirmed_mjd)]
        false = [s for s in states if self._alert_truth.get(s.alert.alert_id, "")
                 not in TRUE_DISCOVERY_TRUTH]  # fmt: skip
        to_alert_s = [(s.detected_mjd - s.detected_shutter_mjd) * S_PER_DAY for s in states]
        to_confirm_s = [(s.confirmed_mjd - s.detected_shutter_mjd) * S_PER_DAY for s in confirmed]
        broker = [s for s in self.twin.alerts.values() if s.source == "broker"]
        by_pixels = [s for s in broker if s.detection_method == "stage"]
        failed = sum(int(getattr(stage, "frames_failed", 0)) for stage in self.stages)
        broker_confirm_s = [(s.confirmed_mjd - s.detected_shutter_mjd) * S_PER_DAY
                            for s in by_pixels if math.isfinite(s.confirmed_mjd)]  # fmt: skip
        nights = max(self.twin.world.scenario.nights, 1)
        return {
            "candidates": int(sum(self.candidate_counts.values())),
            "by_class": dict(sorted(self.candidate_counts.items())),
            "discoveries": len(states),
            "confirmed": len(confirmed),
            "false_network_alerts": len(false),
            "false_network_alerts_per_night": len(false) / nights,
            "asteroids_recognised": self.desk.asteroids if self.desk else 0,
            "broker_alerts_detected": len(by_pixels),
            "broker_alerts_confirmed": len(broker_confirm_s),
            "frames_without_difference": failed,
            # From the shutter closing on the frame that found it: to the candidate at the
            # centre (readout + processing_s + link), to the network's alert (the second
            # frame held for), to a second site's confirmation.
            "latency_to_centre_median_s": _median(self._latency_s),
            "latency_to_alert_median_s": _median(to_alert_s),
            "latency_to_confirmation_median_s": _median(to_confirm_s),
            "broker_latency_to_confirmation_median_s": _median(broker_confirm_s),
        }

    # -- at the site ----------------------------------------------------------------------
    def on_exposure(self, unit: TelescopeRun, exposure: Exposure) -> None:
        """The shutter has closed: render the frame, run the stages, send the results."""
        twin, tw = self.twin, unit.world
        row = self._truth_row(unit, exposure)
        t0 = time.perf_counter()
        spec = self.frame_spec(tw, row)
        frame, truth = self.render(tw, row, exposure, spec)
        self.wall_s["render"] += time.perf_counter() - t0
        results = []
        for stage in self.stages:
            t0 = time.perf_counter()
            results.append(stage.process(frame))
            self.wall_s[stage.name] += time.perf_counter() - t0
        self.frames += 1
        done = exposure.mjd_end + (tw.telescope.readout_s + self.spec.processing_s) / S_PER_DAY
        arrival = tw.site.link.message_arrival_mjd(done)
        expected = unit.expected_quality  # what the scheduler expected when it chose the visit
        report = self._candidates_at_site(exposure, row, frame, truth, results, arrival)
        twin.at(arrival, lambda: self._received(tw, exposure, row, results, done, arrival,
                                                expected, report))  # fmt: skip
        if self.fusion is not None:
            self.fusion.frame_taken(self._frame_at_centre(tw, exposure, row, results, spec))

    def _frame_at_centre(self, tw, exposure: Exposure, row: dict, results: list[StageResult],
                         spec) -> FrameAtCentre:  # fmt: skip
        """The frame as the centre will hold it. The network queued its bytes on the
        site's uplink as its readout ended, just before calling this observer
        (:meth:`twin.ops.network.NetworkTwin._visit`): the uplink is busy until that
        frame's last byte is out, and it arrives one message later, as
        ``DataUplink.send`` returned."""
        uplink = tw.site.uplink
        arrival_mjd = uplink.link.message_arrival_mjd(uplink.busy_until_mjd)
        seeing = next((r.seeing_arcsec for r in results if math.isfinite(r.seeing_arcsec)),
                      math.nan)  # fmt: skip
        target = row.get("target_id")
        return FrameAtCentre(exposure.obs_id, exposure.site, exposure.telescope,
                             "" if target is None else str(target), exposure.band,
                             exposure.mjd_start, exposure.mjd_end, arrival_mjd, seeing,
                             spec)  # fmt: skip

    def _candidates_at_site(self, exposure: Exposure, row: dict, frame: Frame,
                            truth: pd.DataFrame, results: list[StageResult], arrival: float
                            ) -> FrameReport | None:  # fmt: skip
        """The frame's candidates as the centre will get them; their table rows (with the
        truth match, which stays here) kept until the centre classifies them."""
        if not self.finds_candidates:
            return None
        found: list[Candidate] = []
        for r in results:
            for c in r.candidates:
                kind, ident, mag, sep = truth_match(truth, c.x_pix, c.y_pix, exposure.band)
                self._candidate_rows[(exposure.obs_id, len(found))] = (
                    exposure.obs_id, exposure.visit_id, exposure.site, exposure.telescope,
                    row["request_id"], exposure.band, r.stage, r.model_version,
                    exposure.mjd_end, arrival, c.ra_deg, c.dec_deg, c.x_pix, c.y_pix,
                    c.scorr, int(c.sign), c.flux_e, c.flux_err_e, c.mag, c.mag_err,
                    c.real_prob, bool(c.is_real), kind, ident, mag, sep,
                )  # fmt: skip
                found.append(c)
        scale_deg = float(frame.reference_spec.pixel_scale_arcsec) / 3600.0
        size_pix = max(frame.data_adu.shape)
        return FrameReport(
            exposure.obs_id, exposure.site, exposure.telescope, exposure.band,
            0.5 * (exposure.mjd_start + exposure.mjd_end), exposure.mjd_end, arrival,
            float(row["ra_deg"]), float(row["dec_deg"]), 0.5 * size_pix * scale_deg, tuple(found),
            request_id=str(row["request_id"]),
        )  # fmt: skip

    def _run_ends(self) -> None:
        """The run ends: what the desk still holds is decided (single), and candidates of
        frames whose results had not reached the centre yet are written as ``unsent``."""
        self.desk.close()
        for key in sorted(self._candidate_rows):
            self._write_candidate(key, "unsent", "", math.nan)

    def _classified(self, report: FrameReport, index: int, centre_class: str, alert_id: str,
                    mjd: float) -> None:  # fmt: skip
        """The desk decided a candidate's class: its row goes to ``candidates.parquet``."""
        self._write_candidate((report.obs_id, index), centre_class, alert_id, mjd)

    def _write_candidate(self, key: tuple[int, int], centre_class: str, alert_id: str,
                         mjd: float) -> None:  # fmt: skip
        row = self._candidate_rows.pop(key)
        (*head, kind, ident, mag, sep) = row
        self.candidate_counts[centre_class] += 1
        if centre_class != "unsent":
            self._latency_s.append((row[9] - row[8]) * S_PER_DAY)
        if centre_class == "transient" and alert_id and alert_id not in self._alert_truth:
            self._alert_truth[alert_id] = kind  # the discovering (first) candidate's truth
        full = (*head[:10], mjd, *head[10:], centre_class, alert_id, kind, ident, mag, sep)
        self.twin.rec["candidates"].append(full)

    def frame_spec(self, tw, row: dict):
        """The exposure's :class:`~twin.imaging.frames.FrameSpec` (as ``skytwin frame``'s)."""
        from twin.imaging.frames import spec_for_row

        world = self.twin.world
        # The centre's broker alerts, not the world's: one raised during the run renders
        # too. The network's own alerts are claims about the sky, not light: what they
        # found is already in it (the population), so they inject nothing.
        alert_id = row.get("alert_id")
        state = self.twin.alerts.get(alert_id)
        alerts = {alert_id: state.alert} if state is not None and state.source == "broker" else {}
        return spec_for_row(row, tw, alerts, world.seed, world.scenario.imaging,
                            self.spec.frame_size_pix)  # fmt: skip

    def render(self, tw, row: dict, exposure: Exposure, spec=None
               ) -> tuple[Frame, pd.DataFrame]:  # fmt: skip
        from twin.imaging.fits import frame_header, write_frame
        from twin.imaging.frames import frame_path, render_arrays, source_cards
        from twin.pipeline.survey import reference_spec, site_calibration

        if spec is None:
            spec = self.frame_spec(tw, row)
        detector, truth = render_arrays(spec, self.options)
        cards = source_cards(self.options)
        if self.frames_dir is not None:
            write_frame(frame_path(self.frames_dir, spec), detector.raw_adu, spec, truth,
                        detector=detector, header_extra=cards)  # fmt: skip
        ref = reference_spec(spec, self.spec.reference, self.options.sky_seed)
        cal = site_calibration(spec) if self.finds_candidates else {}
        return Frame(exposure, detector.raw_adu, frame_header(spec, cards), ref, cal), truth

    def _truth_row(self, unit: TelescopeRun, exposure: Exposure) -> dict:
        twin = self.twin
        cols = exposure_truth(unit.world, twin.queue, exposure_columns([exposure]),
                              twin._alert_mag)  # fmt: skip
        return {k: (v[0].item() if isinstance(v, np.ndarray) else v[0]) for k, v in cols.items()}

    # -- at the centre --------------------------------------------------------------------
    def _received(self, tw, exposure: Exposure, row: dict, results: list[StageResult],
                  done_mjd: float, mjd: float, expected: float,
                  report: FrameReport | None = None) -> None:  # fmt: skip
        twin = self.twin
        threshold = self.thresholds.get(row["program"], self.spec.min_quality)
        scores = [r.score for r in results if math.isfinite(r.score)]
        accepted = not scores or scores[0] >= 100.0 * threshold
        if report is not None:
            searched = all(r.searched for r in results)
            self.desk.received(replace(report, conclusive=accepted and searched))
        action = ""
        if not accepted:
            self.rejected += 1
            twin.event(mjd, "frame_rejected", exposure.site, exposure.telescope,
                       row["request_id"], f"obs {exposure.obs_id}: score {scores[0]:.1f} < "
                       f"{100 * threshold:.1f}", scores[0])  # fmt: skip
            action = self._ask_repeat(exposure, mjd)
        self._watch_equipment(tw, exposure, results, mjd)
        for r in results:
            if math.isfinite(r.score) or math.isfinite(r.seeing_arcsec) or r.flags:
                self.measured[exposure.telescope] = MeasuredFrame(
                    mjd, exposure.obs_id, r.score, r.seeing_arcsec, r.active_flags(), expected
                )
                break
        table = twin.rec["pipeline"]
        for r in results:
            table.append((
                exposure.obs_id, exposure.visit_id, exposure.site, exposure.telescope,
                row["request_id"], row["program"], r.stage, r.model_version, float(r.score),
                float(r.seeing_arcsec), float(r.anomaly),
                *(float(r.flags.get(name, math.nan)) for name in FLAG_NAMES),
                list(r.active_flags()), done_mjd, mjd, accepted, action,
            ))  # fmt: skip

    def _watch_equipment(self, tw, exposure: Exposure, results: list[StageResult],
                         mjd: float) -> None:  # fmt: skip
        """A ``focus`` flag on ``refocus_after`` consecutive frames of a telescope makes the
        centre order a refocus; a ``tracking`` flag on ``service_after`` frames a mount
        service, which clears the fault ``service_min`` after the order reaches the site.
        Drift and faults are caught from pixels, not from the equipment's truth."""
        flags = {f for r in results for f in r.active_flags()}
        self._watch(tw, exposure, mjd, "focus", "focus" in flags, self.spec.refocus_after)
        self._watch(tw, exposure, mjd, "tracking", "tracking" in flags, self.spec.service_after)

    def _watch(self, tw, exposure: Exposure, mjd: float, flag: str, flagged: bool,
               after: int) -> None:  # fmt: skip
        if not after:
            return
        key = (flag, exposure.telescope)
        self._flag_run[key] = self._flag_run[key] + 1 if flagged else 0
        if self._flag_run[key] < after:
            return
        self._flag_run[key] = 0
        arrival = tw.site.link.message_arrival_mjd(mjd)
        why = f"{flag} flagged on {after} frames up to obs {exposure.obs_id}"
        site, name = exposure.site, exposure.telescope
        if flag == "focus":
            self.refocus_orders += 1

            def act() -> None:
                tw.equipment.focus.refocus_at(arrival)
                self.twin.event(arrival, "refocus", site, name, "pipeline", why)

            self.twin.at(arrival, act)
            return
        self.service_orders += 1
        done = min(arrival + self.spec.service_min / 1440.0, tw.equipment.tracking.end_mjd)

        def service() -> None:
            found = "fault cleared" if tw.equipment.tracking.service_at(done) else "no fault"
            self.twin.event(done, "mount_service", site, name, "pipeline", f"{why}; {found}")

        self.twin.at(done, service)

    def _ask_repeat(self, exposure: Exposure, mjd: float) -> str:
        """Repeat the frame's visit once (per visit, up to ``max_repeats`` per request)."""
        row = exposure.request_row
        if exposure.visit_id in self._repeated_visits:
            return "repeat"  # another frame of the visit already asked
        if self._repeats[row] >= self.spec.max_repeats:
            return ""
        self._repeats[row] += 1
        self._repeated_visits.add(exposure.visit_id)
        reason = f"frame {exposure.obs_id} rejected"
        if self.twin.queue.in_progress[row]:
            self._to_repeat[row] = reason  # after the visit is recorded
        else:
            self.twin.centre.repeat_visit(row, mjd, reason)
        return "repeat"

    def _visit_ended(self, unit: TelescopeRun, row: int, visit_id: int) -> None:
        reason = self._to_repeat.pop(row, None)
        if reason is not None:
            self.twin.centre.repeat_visit(row, self.twin.mjd(), reason)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan
