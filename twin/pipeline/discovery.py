"""The centre's discovery desk: real candidates → detections, the network's alerts, asteroids.

Why a desk of its own: the telescopes' processes observe and the centre's alert desk
(:class:`~twin.ops.centre.Centre`) follows alerts up; deciding what a candidate *is*
needs memory across frames (a candidate waits for the next frame of its field), which
neither has. It acts only through the centre's public methods
(:meth:`~twin.ops.centre.Centre.detection_reported`,
:meth:`~twin.ops.centre.Centre.raise_alert`), at the moment a frame's results reach the
centre over its site's link, and reads nothing but the candidates (no truth).

The rules (``pipeline.discovery``, :class:`~twin.pipeline.spec.DiscoverySpec`), applied
to each frame's candidates in this order:

1. **Bogus**: the stage's classifier said bogus (``is_real`` False) → recorded, no more.
2. **Negative**: real but fainter than the reference (``sign`` −1: a source that faded) →
   recorded, never an alert (the network looks for new light). **Variable**: real and
   within ``known_star_radius_pix`` of a catalogue star (the stage's ``star_dist_pix``
   feature: the registration catalogue the site already has) → that star varying (a
   variable, a flare), recorded, never an alert.
3. **Held candidates of earlier frames** whose position this frame covers are decided,
   oldest first, against this frame's real candidates:

   - one within ``stationary_radius_arcsec`` → the source did not move: a **transient**. If
     it is not a known alert, the centre raises the network's own alert (source
     ``network``), counts it detected at the first frame's site (which asks another site
     to confirm it, confirmation mode) and releases its follow-up in the plan's bands;
   - else the nearest one displaced by ``rate × Δt`` with the rate between
     ``asteroid_min_deg_per_day`` and ``asteroid_max_deg_per_day`` (and further than the
     stationary radius) → both are an **asteroid**: recorded (event
     ``asteroid_recognised``, value the rate), never followed;
   - else, if the frame is conclusive → **single**: real in one frame only (a
     classifier's false positive, or a source too faint in the second band), not
     raised. A frame that was not differenced, or that the centre rejected for quality,
     decides nothing: the candidate stays held for the next one.

4. **Known alerts**: a real candidate within the match radius of an alert the centre
   has received (broker or network) is that alert's detection
   (:meth:`~twin.ops.centre.Centre.detection_reported`, method ``stage``).
5. **Held**: any other real candidate that may raise an alert (``alert_grade``: the
   classifier's stricter operating point, 0.5 % false positives on validation) waits
   for the next frame of its field, at most ``hold_max_s`` (then **single**; still
   waiting when the run ends: **single** too). A real one below that grade is
   **weak**: recorded, and still a counterpart for a held candidate or a detection of
   a known alert, but never the start of a network alert.

Why hold rather than raise at once and cancel: every visit of the scenarios takes two or
more exposures a minute or two apart, so the second frame arrives within minutes and
the hold costs that much latency, while a raised-then-cancelled alert would already have
sent follow-up and confirmation requests to the sites. Why a stationary radius tighter
than the 2″ match radius: two frames of one visit are ~90 s apart, in which a main-belt
asteroid (0.1–0.5 °/day) moves 0.4–1.9″ — inside 2″, so a 2″ test would call nearly
every asteroid a transient. 0.8″ is ~4σ of the difference of two positions of a faint
(S/N ≈ 8) point source under 1.2″ seeing after registration. What the rule still cannot
see: an asteroid slower than ``stationary_radius / Δt`` (~0.2 °/day for frames 90 s
apart) is raised; the second site's frame hours later does not find it at the same
place, so it is never confirmed (a false network alert).

Same seed, same decisions: everything runs on simulated times (the frames' shutter times
and the link's arrival times), in the order the frames arrive.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twin.alerts.stream import Alert
from twin.pipeline.spec import DiscoverySpec
from twin.pipeline.stage import Candidate

if TYPE_CHECKING:
    from twin.ops.centre import AlertState
    from twin.ops.network import NetworkTwin

S_PER_DAY = 86400.0
ARCSEC_PER_DEG = 3600.0
END_MARGIN_DAYS = 1e-6
"""A hold still open at the run's end is decided this long before it (0.09 s)."""
TRUE_DISCOVERY_TRUTH = ("sn_ia", "sn_cc", "fast", "transient")
"""Truth kinds (``candidates.truth_kind``) that make a network alert a true discovery: the
population's explosions and an announced alert's transient (truth type ``transient``).
Asteroids, variable stars, AGN and artefacts make a false one. For measurements only:
the desk never reads the truth."""
NETWORK_ALERT_KIND = "unclassified"
"""The kind of the network's own alerts: a candidate says where and how bright, not what."""


@dataclass(frozen=True)
class FrameReport:
    """One frame's candidates as they reach the centre, with where and when the frame was.

    ``mjd_mid``: mid-exposure (where a moving source is); ``centre_ra_deg``,
    ``centre_dec_deg``, ``half_width_deg``: the frame's footprint (believed pointing,
    half the larger side), to know which held candidates it can decide.
    """

    obs_id: int
    site: str
    telescope: str
    band: str
    mjd_mid: float
    mjd_shutter_close: float
    mjd_received: float
    centre_ra_deg: float
    centre_dec_deg: float
    half_width_deg: float
    candidates: tuple[Candidate, ...]
    # False: the frame cannot refute a held candidate (it was not differenced, or the
    # centre rejected it for quality); its own candidates are still used.
    conclusive: bool = True
    request_id: str = ""  # the request the frame was taken for (confirmation: "-confirm")

    def covers(self, ra_deg: float, dec_deg: float) -> bool:
        """Whether the position falls on the frame (a tangent-plane box, north up)."""
        dra = (ra_deg - self.centre_ra_deg + 180.0) % 360.0 - 180.0
        dx = dra * math.cos(math.radians(self.centre_dec_deg))
        return abs(dx) <= self.half_width_deg and abs(dec_deg - self.centre_dec_deg) <= (
            self.half_width_deg
        )


def separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle separation (haversine: exact at arcsecond scales)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin(0.5 * (d2 - d1)) ** 2
    h += math.cos(d1) * math.cos(d2) * math.sin(0.5 * (r2 - r1)) ** 2
    return math.degrees(2.0 * math.asin(min(1.0, math.sqrt(h)))) * ARCSEC_PER_DEG


ClassCallback = Callable[[FrameReport, int, str, str, float], None]
"""``(report, index, centre_class, alert_id, mjd)``: a candidate's class is decided."""


@dataclass
class _Held:
    report: FrameReport
    index: int

    @property
    def candidate(self) -> Candidate:
        return self.report.candidates[self.index]


class DiscoveryDesk:
    """The rules of the module docstring, for one run.

    ``act``: False records every candidate's class but changes nothing at the centre (the
    ``m5`` baseline with a stage that finds candidates). ``on_class`` is told each
    candidate's class once, when it is decided.
    """

    def __init__(self, twin: NetworkTwin, spec: DiscoverySpec, on_class: ClassCallback,
                 act: bool = True) -> None:  # fmt: skip
        self.twin = twin
        self.centre = twin.centre
        self.spec = spec
        self.on_class = on_class
        self.act = act
        self._held: dict[tuple[int, int], _Held] = {}
        self.network_alerts = 0
        self.asteroids = 0  # pairs of candidates recognised as one moving asteroid
        self.known_alert_detections = 0
        followup = twin.world.scenario.alerts.followup
        self.followup = followup.model_copy(update={"window_days": spec.followup_window_days})

    # -- a frame's candidates reach the centre ------------------------------------------
    def received(self, report: FrameReport) -> None:
        mjd = report.mjd_received
        open_ = []
        for i, c in enumerate(report.candidates):
            if not c.is_real:
                self.on_class(report, i, "bogus", "", mjd)
            elif c.sign < 0:
                self.on_class(report, i, "negative", "", mjd)
            elif self._on_known_star(c):
                self.on_class(report, i, "variable", "", mjd)
            else:
                open_.append(i)
        used = self._decide_held(report, open_)
        for i in open_:
            if i in used:
                continue
            c = report.candidates[i]
            state = self._known_alert(c.ra_deg, c.dec_deg, mjd)
            if state is not None:
                self._detected(state, report, i, mjd)
            elif c.raises_alert:
                self._hold(report, i)
            else:
                self.on_class(report, i, "weak", "", mjd)

    def close(self) -> None:
        """Decide what is still held (the run ends): single."""
        for key in list(self._held):
            self._single(key, self.twin.mjd())

    # -- the rules ----------------------------------------------------------------------
    def _on_known_star(self, c: Candidate) -> bool:
        """Rule 2, variable: the candidate sits on a catalogue star (module docstring)."""
        dist = c.features.get("star_dist_pix", math.inf)
        return math.isfinite(dist) and dist <= self.spec.known_star_radius_pix

    def _decide_held(self, report: FrameReport, open_: list[int]) -> set[int]:
        """Rule 3: held candidates this frame covers, oldest first; returns what they used."""
        used: set[int] = set()
        mjd = report.mjd_received
        for key, held in list(self._held.items()):
            h = held.candidate
            dt_days = report.mjd_mid - held.report.mjd_mid
            if dt_days <= 0.0 or not report.covers(h.ra_deg, h.dec_deg):
                continue
            free = [i for i in open_ if i not in used]
            seps = {
                i: separation_arcsec(h.ra_deg, h.dec_deg, report.candidates[i].ra_deg,
                                     report.candidates[i].dec_deg)
                for i in free
            }  # fmt: skip
            still = [i for i in free if seps[i] <= self.spec.stationary_radius_arcsec]
            if still:
                j = min(still, key=lambda i: (seps[i], i))
                used.add(j)
                del self._held[key]
                self._stationary(held, report, j, mjd)
                continue
            moving = [i for i in free if self._asteroid_rate(seps[i], dt_days) is not None]
            if moving:
                j = min(moving, key=lambda i: (seps[i], i))
                used.add(j)
                del self._held[key]
                self._asteroid(held, report, j, self._asteroid_rate(seps[j], dt_days), mjd)
                continue
            if report.conclusive:
                self._single(key, mjd)
        return used

    def _asteroid_rate(self, sep_arcsec: float, dt_days: float) -> float | None:
        """The rate in deg/day if ``sep_arcsec`` in ``dt_days`` is an asteroid's, else None."""
        r = self.spec.stationary_radius_arcsec
        rate = sep_arcsec / ARCSEC_PER_DEG / dt_days
        lo = self.spec.asteroid_min_deg_per_day * dt_days * ARCSEC_PER_DEG - r
        hi = self.spec.asteroid_max_deg_per_day * dt_days * ARCSEC_PER_DEG + r
        return rate if r < sep_arcsec and lo <= sep_arcsec <= hi else None

    def _stationary(self, held: _Held, report: FrameReport, j: int, mjd: float) -> None:
        h = held.candidate
        state = self._known_alert(h.ra_deg, h.dec_deg, mjd)
        if state is not None:  # announced while it was held
            self._detected(state, held.report, held.index, mjd)
            self._detected(state, report, j, mjd)
            return
        alert_id = self._raise(held, mjd) if self.act else ""
        self.on_class(held.report, held.index, "transient", alert_id, mjd)
        self.on_class(report, j, "transient", alert_id, mjd)

    def _raise(self, held: _Held, mjd: float) -> str:
        """The network's own alert at the held candidate, detected at its frame's site."""
        c, first = held.candidate, held.report
        self.network_alerts += 1
        alert = Alert(alert_id=f"net-{self.network_alerts:04d}", kind=NETWORK_ALERT_KIND,
                      ra_deg=c.ra_deg, dec_deg=c.dec_deg, t0_mjd=math.nan, issued_mjd=mjd,
                      peak_mag_r=c.mag)  # fmt: skip
        state = self.centre.raise_alert(alert, mjd, source="network", followup=self.followup)
        self.centre.detection_reported(state, first.site, mjd, method="stage",
                                       shutter_mjd=first.mjd_shutter_close)  # fmt: skip
        return alert.alert_id

    def _asteroid(self, held: _Held, report: FrameReport, j: int, rate_deg_per_day: float,
                  mjd: float) -> None:  # fmt: skip
        self.asteroids += 1
        self.twin.event(mjd, "asteroid_recognised", report.site, report.telescope,
                        f"obs {held.report.obs_id}+{report.obs_id}",
                        f"{held.report.band}->{report.band}", rate_deg_per_day)  # fmt: skip
        self.on_class(held.report, held.index, "asteroid", "", mjd)
        self.on_class(report, j, "asteroid", "", mjd)

    def _detected(self, state: AlertState, report: FrameReport, i: int, mjd: float) -> None:
        self.known_alert_detections += 1
        if self.act:
            self.centre.detection_reported(state, report.site, mjd, method="stage",
                                           shutter_mjd=report.mjd_shutter_close,
                                           request_id=report.request_id)  # fmt: skip
        self.on_class(report, i, "known-alert", state.alert.alert_id, mjd)

    def _hold(self, report: FrameReport, i: int) -> None:
        key = (report.obs_id, i)
        self._held[key] = _Held(report, i)
        expiry = report.mjd_received + self.spec.hold_max_s / S_PER_DAY
        expiry = min(expiry, self.twin.world.end_mjd - END_MARGIN_DAYS)
        self.twin.at(expiry, lambda: self._single(key, max(expiry, report.mjd_received)))

    def _single(self, key: tuple[int, int], mjd: float) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            self.on_class(held.report, held.index, "single", "", mjd)

    def _known_alert(self, ra_deg: float, dec_deg: float, mjd: float) -> AlertState | None:
        """The nearest alert the centre has received by ``mjd`` within the match radius."""
        best, best_sep = None, self.spec.match_radius_arcsec
        for state in self.centre.alerts.values():
            if not state.received_mjd <= mjd:  # not yet known at the centre (or NaN)
                continue
            a = state.alert
            if abs(a.dec_deg - dec_deg) * ARCSEC_PER_DEG > best_sep:
                continue
            sep = separation_arcsec(ra_deg, dec_deg, a.ra_deg, a.dec_deg)
            if sep <= best_sep:
                best, best_sep = state, sep
        return best
