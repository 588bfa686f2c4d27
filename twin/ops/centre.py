"""The network's centre: the alert desk, request release and visit repeats.

Why its own module: the telescopes' processes (:mod:`twin.ops.network`) decide and
observe; the centre receives what the sites and the broker report and changes what the
sites may do next. Pipeline stages (DESIGN.md step 10) act only through the centre's
public methods — :meth:`Centre.release`, :meth:`Centre.repeat_visit`,
:meth:`Centre.raise_alert` — and everything the centre sends travels over each site's
link (latency, bandwidth, outages), as data does.

Alerts come from two sources (:attr:`AlertState.source`): the external broker
(``broker``, the scenario's alert stream) and the network itself (``network``, raised
from real candidates by :mod:`twin.pipeline.discovery`). What detects an alert's
transient in a follow-up frame is :attr:`Centre.detection`: ``m5``, the baseline (the
transient's truth magnitude against the exposure's 5σ depth, reported as the exposure
ends), or ``stage`` (a real candidate from the pixels within the match radius, reported
by the site's pipeline through :meth:`Centre.detection_reported`). Each detection and
confirmation records which made it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twin.alerts.stream import (
    Alert,
    FollowupSpec,
    confirmation_request,
    followup_request,
    is_confirmation,
)

if TYPE_CHECKING:
    from twin.ops.network import NetworkTwin
    from twin.ops.world import SiteWorld
    from twin.programme.requests import Request

S_PER_DAY = 86400.0


@dataclass
class AlertState:
    """What the centre knows of one alert as the run goes."""

    alert: Alert
    received_mjd: float = math.nan
    first_followup_mjd: float = math.nan
    first_followup_site: str = ""
    detected_mjd: float = math.nan
    detected_site: str = ""
    confirm_requested: bool = False
    confirmed_mjd: float = math.nan
    confirmed_site: str = ""
    n_exposures: int = 0
    source: str = "broker"  # broker | network
    detection_method: str = ""  # m5 | stage: what made the detection ("" before one)
    detected_shutter_mjd: float = math.nan  # shutter close of the frame that detected it
    confirmed_shutter_mjd: float = math.nan  # shutter close of the confirming frame
    followup: FollowupSpec | None = None  # None: the scenario's (a broker alert's kind)


class Centre:
    """The centre of a :class:`~twin.ops.network.NetworkTwin`."""

    def __init__(self, twin: NetworkTwin) -> None:
        self.twin = twin
        self.alerts = {a.alert_id: AlertState(a) for a in twin.world.alerts}
        # Received and not yet confirmed, kept as events happen: reading it per decision
        # must not scan every alert of the run.
        self.open_alerts: tuple[str, ...] = ()
        self.visits_repeated = 0
        # What detects an alert's transient: "m5" (the baseline, without a pipeline that
        # finds candidates) or "stage" (set by twin.pipeline.loop.SitePipeline).
        self.detection = "m5"

    def start(self) -> None:
        """Schedule the broker's alerts (called once, as the run starts)."""
        for state in self.alerts.values():
            self.twin.at(state.alert.issued_mjd, lambda s=state: self._alert_issued(s))

    # -- public actions -----------------------------------------------------------------
    def release(self, request: Request, mjd: float) -> None:
        """Add a request at the centre and send it to each site over its link."""
        twin = self.twin
        arrivals = np.array([sw.link.message_arrival_mjd(mjd) for sw in twin.world.sites])
        twin.queue.add([request], arrivals, mjd)
        for sw, t in zip(twin.world.sites, arrivals, strict=True):
            if request.sites and sw.site.name not in request.sites:
                continue
            twin.at(t, lambda sw=sw, t=t: self._arrived(sw, request, t))

    def repeat_visit(self, row: int, mjd: float, reason: str = "") -> None:
        """Ask for one more visit of the request in queue row ``row`` (a frame that does
        not count): the visit it lost is wanted again, without waiting for its cadence,
        from when the message reaches each site that may take it."""
        twin, queue = self.twin, self.twin.queue
        queue.repeat_visit(row)
        request = queue.requests[row]
        self.visits_repeated += 1
        twin.event(mjd, "visit_repeated", "", "", request.request_id, reason)
        for sw in twin.world.sites:
            if not np.isfinite(queue.released_mjd[sw.index, row]):
                continue  # never offered to this site
            t = sw.link.message_arrival_mjd(mjd)
            queue.released_mjd[sw.index, row] = max(queue.released_mjd[sw.index, row], t)
            twin.at(t, lambda sw=sw: twin.wake_site(sw.index))

    def raise_alert(self, alert: Alert, mjd: float, source: str = "network",
                    followup: FollowupSpec | None = None) -> AlertState:  # fmt: skip
        """An alert the network found itself (no broker): follow it up from ``mjd``.

        ``followup``: how (default the scenario's; a network alert's kind is unknown, so
        its caller gives a fixed ``window_days`` instead of the light curve's fade)."""
        state = AlertState(alert, source=source, followup=followup)
        self.alerts[alert.alert_id] = state
        self.twin.event(mjd, "alert_issued", "", "", alert.alert_id, alert.kind, alert.peak_mag_r)
        self._alert_received(state, mjd)
        return state

    def detection_reported(self, state: AlertState, site: str, mjd: float, *, method: str,
                           shutter_mjd: float = math.nan,
                           request_id: str = "") -> None:  # fmt: skip
        """A site's frame detected ``state``'s transient; the report reached the centre at
        ``mjd``. The first detection asks another site to confirm; a later one from
        another site in a frame of the confirmation request (``request_id`` ending in
        ``-confirm``) confirms it — the rule of the ``m5`` baseline
        (:meth:`alert_exposure`), so both detection methods confirm alike."""
        confirming = (state.confirm_requested and site != state.detected_site
                      and is_confirmation(request_id))  # fmt: skip
        self._detection_reported(state, site, mjd, confirming, method, shutter_mjd)

    # -- the alert desk -----------------------------------------------------------------
    def _alert_issued(self, state: AlertState) -> None:
        twin, a = self.twin, state.alert
        twin.event(a.issued_mjd, "alert_issued", "", "", a.alert_id, a.kind, a.peak_mag_r)
        received = a.issued_mjd + twin.ops.alert_broker_latency_s / S_PER_DAY
        twin.at(received, lambda: self._alert_received(state, received))

    def _followup_spec(self, state: AlertState):
        return self.twin.world.scenario.alerts if state.followup is None else state.followup

    def _alert_received(self, state: AlertState, mjd: float) -> None:
        twin, a = self.twin, state.alert
        state.received_mjd = mjd
        self.open_alerts = (*self.open_alerts, a.alert_id)
        twin.event(mjd, "alert_received", "", "", a.alert_id, a.kind,
                   (mjd - a.issued_mjd) * S_PER_DAY)  # fmt: skip
        self.release(followup_request(a, self._followup_spec(state), mjd), mjd)

    def _arrived(self, sw: SiteWorld, request: Request, mjd: float) -> None:
        self.twin.event(mjd, "request_released", sw.site.name, "", request.request_id,
                        request.alert_id)  # fmt: skip
        self.twin.wake_site(sw.index)

    def alert_exposure(self, state: AlertState, request: Request, site: str, t0: float,
                       t1: float, detected: bool, sw: SiteWorld) -> None:  # fmt: skip
        """A site exposed an alert's field; a detection is reported over its link."""
        twin, a = self.twin, state.alert
        state.n_exposures += 1
        if math.isnan(state.first_followup_mjd):
            state.first_followup_mjd, state.first_followup_site = t0, site
            twin.event(t0, "alert_followed", site, "", a.alert_id, request.request_id,
                       (t0 - a.issued_mjd) * S_PER_DAY)  # fmt: skip
        if not detected or self.detection != "m5":
            return  # with "stage", detections come from the pixels (detection_reported)
        report = sw.link.message_arrival_mjd(t1 + twin.ops.detection_processing_s / S_PER_DAY)
        confirming = is_confirmation(request.request_id)
        twin.at(report, lambda: self._detection_reported(state, site, report, confirming,
                                                         "m5", t1))  # fmt: skip

    def detection_matters(self, state: AlertState, request: Request, site: str) -> bool:
        """Whether an m5 detection in an exposure of ``request`` at ``site`` now could still
        change anything when its report arrives (``_detection_reported``'s two branches):
        the centre detects from m5, and the alert is not yet detected, or the exposure
        confirms from another site and nothing is confirmed yet. Detection and
        confirmation are only ever set, never cleared, so False now is False then, and the
        loop skips computing the exposure's depth (~1 ms) for it."""
        if self.detection != "m5":
            return False
        if math.isnan(state.detected_mjd):
            return True
        confirming = is_confirmation(request.request_id)
        return confirming and site != state.detected_site and math.isnan(state.confirmed_mjd)

    def _detection_reported(self, state: AlertState, site: str, mjd: float,
                            confirming: bool, method: str, shutter_mjd: float) -> None:  # fmt: skip
        twin, a = self.twin, state.alert
        spec = twin.world.scenario.alerts
        if confirming and site != state.detected_site and math.isnan(state.confirmed_mjd):
            state.confirmed_mjd, state.confirmed_site = mjd, site
            state.confirmed_shutter_mjd = shutter_mjd
            self.open_alerts = tuple(x for x in self.open_alerts if x != a.alert_id)
            twin.event(mjd, "alert_confirmed", site, "", a.alert_id,
                       "" if method == "m5" else method,
                       (mjd - state.detected_mjd) * S_PER_DAY)  # fmt: skip
            return
        if math.isnan(state.detected_mjd):
            state.detected_mjd, state.detected_site = mjd, site
            state.detection_method, state.detected_shutter_mjd = method, shutter_mjd
            twin.event(mjd, "alert_detected", site, "", a.alert_id, a.kind, math.nan)
            others = [s.site.name for s in twin.world.sites if s.site.name != site]
            if spec.followup.confirm and others and not state.confirm_requested:
                state.confirm_requested = True
                request = confirmation_request(a, spec, mjd, site, [*others, site])
                twin.event(mjd, "confirmation_requested", "", "", a.alert_id,
                           ",".join(request.sites))  # fmt: skip
                self.release(request, mjd)
