"""The centre's multi-site fusion in the loop: frames over the links, groups, products.

DESIGN.md's data flow: "the centre acts (... run fusion when the frames of a group have
all arrived)". With a stage that makes centre products (``fusion``,
:func:`~twin.pipeline.stage.makes_centre_products`) in the pipeline:

1. **Frames travel.** Every frame already goes to the centre as bulk data over its site's
   :class:`~twin.ops.links.DataUplink` (:mod:`twin.ops.network` queues the detector's
   full frame, ``frame_size_bytes``, when readout ends: first in, first out at the
   link's bandwidth, paused by outages). The centre counts a frame from that transfer's
   arrival, read off the uplink as the frame is queued (the same value ``send``
   returned). Why not send it a second time for fusion: the archive and the fusion are
   fed by the one raw frame, and sending it twice would halve the link for everything.
2. **Groups.** Frames of one field (``target_id``) and band whose shutters opened
   within ``window_h`` of the group's first, the windows laid end to end from the first
   frame of the field, as :func:`models.fusion.run.find_groups` lays them after a run. A
   window closes ``window_h`` after its first frame began plus :data:`CLOSE_GRACE_DAYS`
   (the longest exposure a request may ask), when no exposure begun inside it can still
   be open; at the run's end every window still open closes.
3. **Fusion.** A closed window with frames from at least ``min_sites`` sites is a
   :class:`~twin.pipeline.stage.FusionGroup` (each site's sharpest frame, then the
   sharpest others up to ``max_frames``, by the seeing a site stage measured). It is fused
   when its last input has arrived (at once if all have); the product's ``fused_mjd`` is
   that arrival, the earliest simulated time the centre holds every input. A window
   closed by the run's end keeps only the frames that arrived by then.
4. **Products.** The stage writes ``fused/FIELD_BAND_N.fits``; the centre lists it in
   ``fusion.parquet`` (:data:`FUSION_SCHEMA`), rewritten whole, atomically, after every
   group (a table of tens of rows): a killed run keeps every product fused before it
   stopped, and a resumed one replays them to the same bits (simulated times only).
   Groups the stage could not fuse are listed with their reason and no product.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from twin.pipeline.spec import FusionSpec
from twin.pipeline.stage import FUSED_COLUMNS, FrameAtCentre, FusionGroup, GroupSkipped
from twin.programme.requests import MAX_EXPTIME_S

if TYPE_CHECKING:
    from twin.ops.network import NetworkTwin

S_PER_DAY = 86400.0
TABLE = "fusion.parquet"
FUSED_DIR = "fused"
CLOSE_GRACE_DAYS = MAX_EXPTIME_S / S_PER_DAY
"""A window closes this long after its end: an exposure begun inside it has ended."""
END_MARGIN_DAYS = 1e-6
"""Windows still open at the run's end close this long before it (0.09 s)."""

FUSION_SCHEMA = pa.schema(
    [
        ("product", pa.string()),  # fused/FIELD_BAND_N.fits; "" if the group was skipped
        ("target_id", pa.string()),
        ("band", pa.string()),
        ("index", pa.int64()),  # the group's rank among its field and band's, in time order
        ("method", pa.string()),
        ("status", pa.string()),  # "fused" | "skipped: why"
        ("n_inputs", pa.int64()),  # frames in the group
        ("n_used", pa.int64()),  # frames that entered the coadd (registered, with stars)
        ("sites", pa.string()),  # comma-separated, sorted
        ("obs_ids", pa.list_(pa.int64())),
        ("window_start_mjd", pa.float64()),  # the group's first shutter opening
        ("last_shutter_close_mjd", pa.float64()),
        ("fused_mjd", pa.float64()),  # the last input reached the centre: it could fuse
        ("closed_mjd", pa.float64()),  # the window closed (or the run ended)
        ("delay_s", pa.float64()),  # fused_mjd - last_shutter_close_mjd, seconds
        ("m5", pa.float64()),  # 5-sigma point-source depth of the coadd, AB mag
        ("m5_best_input", pa.float64()),  # of its deepest input
        ("depth_gain_mag", pa.float64()),  # m5 - m5_best_input
        ("registration_rms_pix_max", pa.float64()),
        ("coverage_fraction", pa.float64()),  # grid pixels with data
    ]
)
"""One row per group the centre closed (``fusion.parquet``); measured columns NaN when
the group was skipped."""


def select_frames(frames: list[FrameAtCentre], max_frames: int) -> list[FrameAtCentre]:
    """Each site's sharpest frame, then the sharpest others, ``max_frames`` at most, in
    order of shutter opening (unmeasured seeing ranks last; ties by shutter opening)."""

    def sharpness(f: FrameAtCentre) -> tuple[float, float]:
        seeing = f.seeing_arcsec if math.isfinite(f.seeing_arcsec) else math.inf
        return seeing, f.mjd_start

    ranked = sorted(frames, key=sharpness)
    keep: dict[str, FrameAtCentre] = {}
    for f in ranked:
        keep.setdefault(f.site, f)
    chosen = list(keep.values())
    rest = [f for f in ranked if f not in chosen]
    chosen += rest[: max(max_frames - len(chosen), 0)]
    return sorted(chosen, key=lambda f: (f.mjd_start, f.obs_id))


class FusionCentre:
    """The centre's grouping and timing of fusion (steps 1-4 of the module docstring)."""

    def __init__(self, twin: NetworkTwin, stage, spec: FusionSpec, run_dir: Path | None
                 ) -> None:  # fmt: skip
        self.twin = twin
        self.stage = stage
        self.spec = spec
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.window_days = spec.window_h / 24.0
        self.end_mjd = twin.world.end_mjd - END_MARGIN_DAYS
        self._open: dict[tuple[str, str], list[FrameAtCentre]] = defaultdict(list)
        self._index: dict[tuple[str, str], int] = defaultdict(int)
        self._waiting: list[FusionGroup] = []  # closed, some input still on the link
        self.rows: list[dict] = []  # fusion.parquet's, by column
        self.frames_sent = 0
        self.frames_in_transit_at_end = 0
        self.wall_s = 0.0  # the machine's seconds in the stage's fuse (not simulated)
        twin.at(self.end_mjd, self._run_ends)

    # -- at the site ------------------------------------------------------------------
    def frame_taken(self, frame: FrameAtCentre) -> None:
        """A frame was read out and queued on its site's uplink (its arrival is known)."""
        self.frames_sent += 1
        if not frame.target_id:
            return  # a frame of no named field (none in the programmes today)
        key = (frame.target_id, frame.band)
        pending = self._open[key]
        first = min((f.mjd_start for f in pending), default=math.inf)
        pending.append(frame)
        if frame.mjd_start < first:
            close = frame.mjd_start + self.window_days + CLOSE_GRACE_DAYS
            self.twin.at(min(close, self.end_mjd), lambda: self._close(key, False))

    # -- at the centre ------------------------------------------------------------------
    def _close(self, key: tuple[str, str], run_end: bool) -> None:
        """Close every window of ``key`` that has ended; schedule the next one's close."""
        now = self.twin.mjd()
        pending = sorted(self._open.get(key, []), key=lambda f: (f.mjd_start, f.obs_id))
        while pending:
            start = pending[0].mjd_start
            end = start + self.window_days
            if not run_end and now < end + CLOSE_GRACE_DAYS:
                break
            inside = [f for f in pending if f.mjd_start < end]
            pending = pending[len(inside) :]
            self._group(key, inside, start, now)
        self._open[key] = pending
        if pending and not run_end:
            close = pending[0].mjd_start + self.window_days + CLOSE_GRACE_DAYS
            self.twin.at(min(close, self.end_mjd), lambda: self._close(key, False))

    def _group(self, key: tuple[str, str], frames: list[FrameAtCentre], start_mjd: float,
               now: float) -> None:  # fmt: skip
        if len({f.site for f in frames}) < self.spec.min_sites:
            return
        chosen = select_frames(frames, self.spec.max_frames)
        group = FusionGroup(key[0], key[1], self._index[key], tuple(chosen), start_mjd, now)
        self._index[key] += 1
        if group.fused_mjd <= now:
            self._fuse(group)
        elif group.fused_mjd < self.end_mjd:
            self.twin.at(group.fused_mjd, lambda: self._fuse(group))
        else:
            self._waiting.append(group)

    def _run_ends(self) -> None:
        """Close every window; a group whose inputs are still on the links keeps those
        that arrived (if they still span ``min_sites`` sites)."""
        for key in sorted(self._open):
            self._close(key, True)
        now = self.twin.mjd()
        for group in self._waiting:
            arrived = tuple(f for f in group.frames if f.arrival_mjd <= now)
            self.frames_in_transit_at_end += len(group.frames) - len(arrived)
            if len({f.site for f in arrived}) >= self.spec.min_sites:
                self._fuse(FusionGroup(group.target_id, group.band, group.index, arrived,
                                       group.window_start_mjd, now))  # fmt: skip
        self._waiting.clear()
        self.write_table()  # also when no group was fused: the table says so

    def _fuse(self, group: FusionGroup) -> None:
        measured = dict.fromkeys(FUSED_COLUMNS, math.nan)
        measured.update(product="", method=self.spec.method, n_used=0)
        t0 = time.perf_counter()
        try:
            measured.update(self.stage.fuse(group))
            status = "fused"
        except GroupSkipped as why:
            status = f"skipped: {why}"
        self.wall_s += time.perf_counter() - t0
        last_close = max(f.mjd_end for f in group.frames)
        self.rows.append({
            **{c: float(measured[c]) for c in ("m5", "m5_best_input", "depth_gain_mag",
                                               "registration_rms_pix_max", "coverage_fraction")},
            "product": measured["product"], "target_id": group.target_id, "band": group.band,
            "index": group.index, "method": measured["method"], "status": status,
            "n_inputs": len(group.frames), "n_used": int(measured["n_used"]),
            "sites": ",".join(group.sites), "obs_ids": list(group.obs_ids),
            "window_start_mjd": group.window_start_mjd, "last_shutter_close_mjd": last_close,
            "fused_mjd": group.fused_mjd, "closed_mjd": group.closed_mjd,
            "delay_s": (group.fused_mjd - last_close) * S_PER_DAY,
        })  # fmt: skip
        self.twin.event(self.twin.mjd(), "fused_product", ",".join(group.sites), "",
                        group.target_id,
                        f"{group.band} #{group.index}: {status}, {len(group.frames)} frames",
                        float(measured["depth_gain_mag"]))  # fmt: skip
        self.write_table()

    def write_table(self) -> None:
        """``fusion.parquet``, whole, under a hidden name renamed into place (atomic)."""
        if self.run_dir is None:
            return
        table = pa.Table.from_arrays(
            [pa.array([r[f.name] for r in self.rows], type=f.type) for f in FUSION_SCHEMA],
            schema=FUSION_SCHEMA,
        )
        tmp = self.run_dir / f".{TABLE}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.run_dir / TABLE)

    def summary(self) -> dict:
        """Products, fields, the median depth gain over the best input and the median
        delay from the last shutter close to the product (simulated seconds)."""
        fused = [r for r in self.rows if r["status"] == "fused"]
        gains = [r["depth_gain_mag"] for r in fused if math.isfinite(r["depth_gain_mag"])]
        delays = [r["delay_s"] for r in fused]
        return {
            "method": self.spec.method,
            "frames_sent": self.frames_sent,
            "groups": len(self.rows),
            "products": len(fused),
            "skipped": len(self.rows) - len(fused),
            "fields": len({r["target_id"] for r in fused}),
            "field_bands": len({(r["target_id"], r["band"]) for r in fused}),
            "inputs_median": _median([r["n_inputs"] for r in fused]),
            "depth_gain_median_mag": _median(gains),
            "delay_median_s": _median(delays),
            "delay_max_s": max(delays) if delays else math.nan,
            "frames_in_transit_at_end": self.frames_in_transit_at_end,
            "fuse_wall_s": round(self.wall_s, 3),
        }


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan
