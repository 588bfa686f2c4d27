"""The requests of one night as the oracle sees them: the world's, plus the follow-up and
(optimistic) confirmation requests of every alert issued before the night ends.

Part of :mod:`agents.oracle` (the formulation is in its docstring).
"""

from __future__ import annotations

import math

import numpy as np

from agents.oracle.exposures import SKY_MARGIN_MAG
from agents.oracle.slots import S_PER_DAY
from twin.alerts.stream import confirmation_request, followup_end_mjd, followup_request
from twin.ops.nights import NightWindow
from twin.ops.world import TelescopeWorld, World
from twin.physics.etc import delivered_seeing_arcsec
from twin.physics.sky import sky_mag_arcsec2
from twin.programme.requests import Request, Window

DETECTION_MARGIN_MAG = 0.2
"""Margin on the confirmation test (transient brightness between 5-minute samples)."""


def night_visit_cap(request: Request, span_d: float) -> float:
    """Most visits ``request`` can get within ``span_d`` days: all it wants (0 = no end),
    but one when its cadence is at least that span."""
    cap = request.visits if request.visits > 0 else math.inf
    return min(cap, 1) if (request.cadence_days or 0.0) >= span_d else cap


def oracle_requests(
    world: World, night: int = 0, confirmations: bool = True
) -> tuple[list[Request], np.ndarray]:
    """The world's requests plus follow-up (and confirmation) requests of the alerts issued
    before the night's end, with the MJD each becomes available (-inf: from the start)."""
    requests = list(world.requests)
    available = [-math.inf] * len(requests)
    spec = world.scenario.alerts
    wins = night_windows(world, night)
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


def night_windows(world: World, night: int) -> list[tuple[TelescopeWorld, NightWindow]]:
    out = []
    for tw in world.telescopes:
        for win in tw.site.nights:
            if win.night == night:
                out.append((tw, win))
    return out
