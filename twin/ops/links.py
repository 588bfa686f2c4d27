"""Network links between each site and the operations centre: latency, bandwidth, outages.

Why: the network is spread over remote sites, and everything the centre decides rests on
what has reached it. An alert raised at a site, the centre's follow-up command and the
site's acknowledgement each cross a link, so the alert-to-decision time of a transient
includes the link latency, and more when the link is down. Links fail: a site keeps
observing, buffers what it would have sent, and resynchronises when the link is back, so
a night's data reach the archive late but complete (DOMAIN.md, "Link latency").

Figures (DOMAIN.md): 10-100 Mbit/s upload per site (1 Gbit/s ideal); 50-500 ms round
trip; a night makes 50-200 GB raw, which at 50 Mbit/s takes 2-9 h to send. Defaults:
150 ms one way, 50 Mbit/s, an outage every 72 h on average lasting 1 h (median).

Model:

- outages form an alternating renewal process drawn once, up front, from the seed: up
  times are exponential with mean ``mtbf_h``; outage durations are log-normal with
  median ``mttr_h`` and log-sigma ``outage_sigma_ln`` (so a mean of
  ``mttr_h * exp(sigma² / 2)``: most outages are short, a few last many hours). The long
  run down fraction is ``mean_outage / (mtbf + mean_outage)``. Every link is up at the
  start of the run, and no outage is drawn after ``end_mjd`` (the link is up from the end
  of the last one on);
- an outage covers ``[start, end)``: down at its start, up again at its end;
- a small control message (alert, command, detection notice) is buffered at the sender
  while the link is down and arrives ``latency`` after it was sent, or after the link
  came back. If the link goes down while the message is in flight it is lost and sent
  again when the link comes back. Both directions use the same link and the same rule;
- bulk data (frames, logs) go out first in, first out at ``bandwidth``; sending pauses
  during outages and resumes where it stopped (no restart penalty). The last packet
  then travels as a control message: arrival = end of sending + latency.

Times are MJD (days, UTC); sizes in bytes; 1 Mbit = 10^6 bit. Look-ups bisect the outage
arrays, so each query is O(log n) in the number of outages.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from twin.weather.noise import as_seed_sequence, child_seed, name_key

SECONDS_PER_DAY = 86_400.0
HOURS_PER_DAY = 24.0
BITS_PER_BYTE = 8

# Seed keys: (link component, site, stream). Never renumber: schedules depend on them.
_LINK_COMPONENT = name_key("link")
_UP_TIMES, _OUTAGE_DURATIONS = range(2)


class LinkSpec(BaseModel):
    """One site's link to the centre.

    | name            | unit    | default | meaning                                        |
    |-----------------|---------|---------|------------------------------------------------|
    | latency_ms      | ms      | 150     | one-way delay (round trip 2x: 50-500 ms typ.)  |
    | bandwidth_mbit_s| Mbit/s  | 50      | site upload rate (10-100 typical, 1000 ideal)  |
    | mtbf_h          | h       | 72      | mean up time between outages (exponential)     |
    | mttr_h          | h       | 1       | median outage duration (log-normal)            |
    | outage_sigma_ln |         | 0.8     | sigma of ln(outage duration)                   |

    Bounds (finite numbers only): latency up to 1 h (a store-and-forward link); bandwidth
    1 kbit/s to 100 Gbit/s; ``mtbf_h`` at least 0.1 h, as shorter up times only multiply
    the outages drawn (their number is span / mtbf); ``mttr_h`` 3.6 s to a year;
    ``outage_sigma_ln`` at most 3 (mean outage = 90 x median already; 1000 overflows
    ``exp(sigma² / 2)``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    latency_ms: float = Field(default=150.0, gt=0.0, le=3.6e6, description="One-way latency, ms.")
    bandwidth_mbit_s: float = Field(
        default=50.0, ge=1e-3, le=1e5, description="Upload rate, Mbit/s."
    )
    mtbf_h: float = Field(default=72.0, ge=0.1, le=1e6, description="Mean time between outages, h.")
    mttr_h: float = Field(default=1.0, ge=1e-3, le=8760.0, description="Median outage duration, h.")
    outage_sigma_ln: float = Field(
        default=0.8, ge=0.0, le=3.0, description="Sigma of the log of the outage duration."
    )

    @property
    def latency_days(self) -> float:
        return self.latency_ms / 1000.0 / SECONDS_PER_DAY

    @property
    def bytes_per_s(self) -> float:
        return self.bandwidth_mbit_s * 1e6 / BITS_PER_BYTE

    @property
    def mean_outage_h(self) -> float:
        """Mean of the log-normal outage duration: median * exp(sigma² / 2)."""
        return self.mttr_h * math.exp(self.outage_sigma_ln**2 / 2.0)

    @property
    def down_fraction(self) -> float:
        """Long-run share of time the link is down."""
        return self.mean_outage_h / (self.mtbf_h + self.mean_outage_h)


def frame_size_bytes(nx: int, ny: int, bytes_per_pixel: int = 2, compression: float = 1.0) -> int:
    """Bytes of one frame of ``nx`` x ``ny`` pixels, divided by a ``compression`` ratio.

    ``compression`` is raw size / sent size (1 = uncompressed; lossless Rice compression
    of sky frames gives about 2-3). A 4096 x 4096 16-bit frame is 32 MiB raw.
    """
    if nx <= 0 or ny <= 0 or bytes_per_pixel <= 0:
        raise ValueError(
            f"nx = {nx}, ny = {ny}, bytes_per_pixel = {bytes_per_pixel}; all must be > 0"
        )
    if compression <= 0.0:
        raise ValueError(f"compression = {compression}; it is raw / sent size, so must be > 0")
    return math.ceil(nx * ny * bytes_per_pixel / compression)


class Link:
    """The link of one site to the centre, with its outage schedule drawn from ``seed``.

    | name      | unit | meaning                                                    |
    |-----------|------|------------------------------------------------------------|
    | site_name |      | site at the far end; keys the random stream                |
    | spec      |      | latency, bandwidth and outage statistics                   |
    | seed      |      | int or SeedSequence of the run (or of the links component) |
    | start_mjd | day  | start of the run; the link is up then                      |
    | end_mjd   | day  | end of the run; no outage starts at or after it            |

    The same seed and site give the same schedule; two sites' schedules are independent
    and a longer span extends a schedule without changing its start.
    """

    def __init__(
        self,
        site_name: str,
        spec: LinkSpec,
        seed: int | np.random.SeedSequence,
        start_mjd: float,
        end_mjd: float,
    ) -> None:
        _check_span(site_name, start_mjd, end_mjd)
        self.site_name = site_name
        self.spec = spec
        self.start_mjd = float(start_mjd)
        self.end_mjd = float(end_mjd)
        starts, ends = _draw_outages(spec, as_seed_sequence(seed), site_name, start_mjd, end_mjd)
        self._set_schedule(starts, ends)

    @classmethod
    def from_outages(
        cls,
        site_name: str,
        spec: LinkSpec,
        outages: Sequence[tuple[float, float]],
        start_mjd: float,
        end_mjd: float,
    ) -> Link:
        """A link with a given schedule: a recorded outage log, or ``[]`` for an ideal link.

        ``outages`` are (start, end) MJD pairs, sorted, each ending before the next starts.
        """
        _check_span(site_name, start_mjd, end_mjd)
        starts = np.array([start for start, _ in outages], dtype=float)
        ends = np.array([end for _, end in outages], dtype=float)
        if np.any(ends <= starts) or np.any(starts[1:] <= ends[:-1]):
            raise ValueError(
                f"link {site_name!r}: outages must be sorted (start, end) pairs with "
                f"start < end, each ending before the next starts; got {list(outages)}"
            )
        link = cls.__new__(cls)
        link.site_name, link.spec = site_name, spec
        link.start_mjd, link.end_mjd = float(start_mjd), float(end_mjd)
        link._set_schedule(starts, ends)
        return link

    def _set_schedule(self, starts: np.ndarray, ends: np.ndarray) -> None:
        self._latency_days = self.spec.latency_days
        starts.setflags(write=False)
        ends.setflags(write=False)
        self._starts_arr, self._ends_arr = starts, ends
        self._starts: list[float] = starts.tolist()
        self._ends: list[float] = ends.tolist()
        # _down_before[j]: total downtime (days) of outages 0..j-1.
        self._down_before: list[float] = np.concatenate(([0.0], np.cumsum(ends - starts))).tolist()
        # Uptime clock u(t) = t - downtime before t stands still during an outage; at the
        # start of outage j it reads _clock_at_outage[j] (strictly increasing).
        self._clock_at_outage = (starts - np.asarray(self._down_before[:-1])).tolist()

    def outages(self) -> list[tuple[float, float]]:
        """(start, end) of every outage, MJD, sorted; the last may end after ``end_mjd``."""
        return list(zip(self._starts, self._ends, strict=True))

    def events(self) -> list[tuple[float, str]]:
        """("link_down" / "link_up") events inside [start_mjd, end_mjd], sorted by time."""
        out: list[tuple[float, str]] = []
        for start, end in zip(self._starts, self._ends, strict=True):
            out.append((start, "link_down"))
            if end <= self.end_mjd:
                out.append((end, "link_up"))
        return out

    def is_up(self, mjd: float) -> bool:
        i = bisect_right(self._starts, mjd) - 1
        return i < 0 or mjd >= self._ends[i]

    def up_mask(self, mjd: npt.ArrayLike) -> np.ndarray:
        """Vectorised ``is_up``: a bool array of the shape of ``mjd``."""
        t = np.asarray(mjd, dtype=float)
        i = np.searchsorted(self._starts_arr, t, side="right") - 1
        if self._ends_arr.size == 0:
            return np.ones(t.shape, dtype=bool)
        end = self._ends_arr[np.clip(i, 0, None)]
        return (i < 0) | (t >= end)

    def next_up_mjd(self, mjd: float) -> float:
        """``mjd`` if the link is up then, else the end of the outage under way."""
        i = bisect_right(self._starts, mjd) - 1
        if i >= 0 and mjd < self._ends[i]:
            return self._ends[i]
        return mjd

    def message_arrival_mjd(self, sent_mjd: float) -> float:
        """When a small message sent at ``sent_mjd`` arrives at the other end (either way).

        It waits while the link is down, then takes the latency; if an outage starts
        while it is in flight, it is sent again when that outage ends.
        """
        t = self.next_up_mjd(sent_mjd)
        while True:
            arrival = t + self._latency_days
            j = bisect_right(self._starts, t)
            if j == len(self._starts) or self._starts[j] >= arrival:
                return arrival
            t = self._ends[j]

    def uptime_s(self, start_mjd: float, end_mjd: float) -> float:
        """Seconds the link is up between two times (0 if ``end_mjd <= start_mjd``)."""
        return max(0.0, self._clock(end_mjd) - self._clock(start_mjd)) * SECONDS_PER_DAY

    def after_uptime_mjd(self, start_mjd: float, uptime_s: float) -> float:
        """Earliest time by which the link has been up ``uptime_s`` seconds since start."""
        target = self._clock(start_mjd) + uptime_s / SECONDS_PER_DAY
        passed = bisect_left(self._clock_at_outage, target)  # outages lived through
        return target + self._down_before[passed]

    def _clock(self, mjd: float) -> float:
        """Uptime clock: ``mjd`` minus the downtime before it (days)."""
        i = bisect_right(self._starts, mjd) - 1
        if i < 0:
            return mjd
        if mjd < self._ends[i]:
            return self._clock_at_outage[i]
        return mjd - self._down_before[i + 1]


class DataUplink:
    """Bulk data from a site to the centre over its ``Link``: a FIFO queue at bandwidth.

    Call ``send`` in order of ``sent_mjd``. Each transfer starts when the previous one is
    done (or when sent, if later), pauses while the link is down and arrives one latency
    after its last byte went out (``Link.message_arrival_mjd`` of that moment).
    """

    def __init__(self, link: Link) -> None:
        self.link = link
        self._bytes_per_s = link.spec.bytes_per_s
        self._last_sent_mjd = -math.inf
        self._busy_until_mjd = -math.inf

    @property
    def busy_until_mjd(self) -> float:
        """When the last queued byte has been sent (-inf before the first ``send``)."""
        return self._busy_until_mjd

    def send(self, sent_mjd: float, size_bytes: float) -> float:
        """Queue ``size_bytes`` at ``sent_mjd``; returns the MJD it has all arrived."""
        if sent_mjd < self._last_sent_mjd:
            raise ValueError(
                f"link {self.link.site_name!r}: sent_mjd = {sent_mjd} is before the previous "
                f"send at {self._last_sent_mjd}; call send in time order"
            )
        if size_bytes < 0:
            raise ValueError(f"size_bytes = {size_bytes}; must be >= 0")
        self._last_sent_mjd = sent_mjd
        start = max(sent_mjd, self._busy_until_mjd)
        self._busy_until_mjd = self.link.after_uptime_mjd(start, size_bytes / self._bytes_per_s)
        return self.link.message_arrival_mjd(self._busy_until_mjd)

    def backlog_bytes(self, mjd: float) -> float:
        """Bytes queued but not yet sent at ``mjd`` (not before the last ``send``)."""
        if mjd < self._last_sent_mjd:
            raise ValueError(
                f"link {self.link.site_name!r}: backlog asked at mjd = {mjd}, before the last "
                f"send at {self._last_sent_mjd}; ask at or after it"
            )
        return self.link.uptime_s(mjd, self._busy_until_mjd) * self._bytes_per_s


def _check_span(site_name: str, start_mjd: float, end_mjd: float) -> None:
    if not end_mjd > start_mjd:
        raise ValueError(
            f"link {site_name!r}: end_mjd = {end_mjd} must be after start_mjd = {start_mjd}"
        )


def _draw_outages(
    spec: LinkSpec,
    root: np.random.SeedSequence,
    site_name: str,
    start_mjd: float,
    end_mjd: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Outage (starts, ends) in MJD: up, down, up, down... from ``start_mjd``.

    Up times and durations come from two streams and are summed in one ``cumsum`` over
    the whole draw, so a longer span only appends outages.
    """
    site = name_key(site_name)
    up_rng = np.random.default_rng(child_seed(root, _LINK_COMPONENT, site, _UP_TIMES))
    down_rng = np.random.default_rng(child_seed(root, _LINK_COMPONENT, site, _OUTAGE_DURATIONS))
    span_h = (end_mjd - start_mjd) * HOURS_PER_DAY
    batch = int(span_h / (spec.mtbf_h + spec.mean_outage_h) * 1.2) + 16
    ups: list[np.ndarray] = []
    downs: list[np.ndarray] = []
    total_h = 0.0
    while total_h <= span_h:
        ups.append(up_rng.exponential(spec.mtbf_h, batch))
        downs.append(down_rng.lognormal(math.log(spec.mttr_h), spec.outage_sigma_ln, batch))
        total_h += float(ups[-1].sum() + downs[-1].sum())
    edges_h = np.cumsum(np.column_stack((np.concatenate(ups), np.concatenate(downs))).ravel())
    starts_h, ends_h = edges_h[0::2], edges_h[1::2]
    keep = starts_h < span_h
    starts = start_mjd + starts_h[keep] / HOURS_PER_DAY
    ends = start_mjd + ends_h[keep] / HOURS_PER_DAY
    return starts, ends
