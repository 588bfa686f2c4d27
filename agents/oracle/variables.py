"""The MILP's visit variables: one per (telescope, request, start slot, finished
exposures), with its value and occupancy.

Part of :mod:`agents.oracle` (the formulation is in its docstring).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from agents.oracle.exposures import RequestColumns, exposure, visit_start
from agents.oracle.requests import night_visit_cap
from agents.oracle.slots import Layout, Slots, plan_key, time_fields
from agents.oracle.transitions import changeover_s
from twin.ops.intervals import Intervals
from twin.ops.nights import NightWindow
from twin.ops.world import TelescopeWorld
from twin.programme.requests import Request

CHUNK_ROWS = 256


@dataclass
class Variables:
    """Columns of the MILP's visit variables, appended per telescope and request group."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))

    def add(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.parts[name].append(np.asarray(values))

    def get(self, name: str) -> np.ndarray:
        parts = self.parts.get(name)
        return np.concatenate(parts) if parts else np.empty(0)


def telescope_variables(
    t_index: int,
    tw: TelescopeWorld,
    win: NightWindow,
    slots: Slots,
    requests: list[Request],
    available: np.ndarray,
    out: Variables,
    slews: bool = True,
) -> None:
    """Append the visit variables of one telescope's night; with ``slews``, each carries
    the least time after it before the next visit (:mod:`agents.oracle.transitions`),
    else 0."""
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
    tel = tw.telescope
    changeover: dict[str, np.ndarray] = {}
    if slews and rows:
        night_d = win.end_mjd - win.start_mjd
        repeatable = np.array([night_visit_cap(requests[i], night_d) > 1 for i in rows])
        per_row = changeover_s(tel, [requests[i] for i in rows], repeatable)
        for band, values in per_row.items():
            changeover[band] = np.zeros(len(requests))
            changeover[band][rows] = values
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i in rows:
        groups[plan_key(requests[i])].append(i)
    for key, members in groups.items():
        layout = Layout.of(key, tel.readout_s, tel.filter_change_s)
        fields = [
            time_fields(tw, win, slots, blocks, off, e)
            for off, e in zip(layout.offset_s, layout.exptime_s, strict=True)
        ]
        for c in range(0, len(members), CHUNK_ROWS):
            chunk = np.array(members[c : c + CHUNK_ROWS])
            rc = RequestColumns.of(
                tw, [requests[i] for i in chunk], available[chunk], win.start_mjd
            )
            after = {band: values[chunk] for band, values in changeover.items()}
            _chunk_variables(tw, t_index, win, slots, layout, fields, rc, chunk, after, out)


def _chunk_variables(
    tw: TelescopeWorld,
    t_index: int,
    win: NightWindow,
    slots: Slots,
    layout: Layout,
    fields: list[dict],
    rc: RequestColumns,
    chunk: np.ndarray,
    changeover: dict[str, np.ndarray],
    out: Variables,
) -> None:
    """Variables of a chunk of requests with one exposure layout: for each slot, every
    number of completed exposures between the fewest and the most its starts allow.

    ``changeover`` gives, by the band a visit ends in, the least time after it (empty:
    none charged); a visit cut after ``p`` exposures may end in band ``p`` or ``p + 1``."""
    n = len(layout.bands)
    start = visit_start(tw, rc, slots, win, float(layout.occupancy_s[-1]))
    alive_r, alive_s = start.ok, None
    longest = shortest = 0
    qualities = []
    for j in range(n):
        relaxed, strict, quality = exposure(
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
    start_from, end_by = rc.window_span(slots.starts, slots.ends)  # (R, K)
    for p in range(1, n + 1):
        r_idx, k_idx = np.nonzero((p_lo <= p) & (p <= p_hi))
        value = cum_value[p - 1][r_idx, k_idx]
        keep = value > 1e-12
        r_idx, k_idx = r_idx[keep], k_idx[keep]
        after = exit_changeover(layout.bands, p, changeover, r_idx)
        out.add(
            tel=np.full(r_idx.size, t_index),
            row=chunk[r_idx],
            slot=k_idx,
            prefix=np.full(r_idx.size, p),
            value=value[keep],
            occupancy_s=np.full(r_idx.size, layout.occupancy_s[p - 1]),
            changeover_s=after,
            start_from=np.maximum(start_from[r_idx, k_idx], slots.starts[k_idx]),
            end_by=end_by[r_idx, k_idx],
            t_lo=slots.starts[k_idx],
            t_hi=slots.ends[k_idx],
        )


def exit_changeover(
    bands: tuple[str, ...], p: int, changeover: dict[str, np.ndarray], rows: np.ndarray
) -> np.ndarray:
    """Changeover of visits of ``rows`` that completed ``p`` of the exposures in ``bands``:
    the visit ends in band ``p``, or in band ``p + 1`` when the filter changed for an
    exposure that was then cut (the twin changes the filter before it checks the dome,
    the equipment and the measured limits), so the lesser is charged; 0 without
    ``changeover``."""
    if not changeover:
        return np.zeros(rows.size)
    return np.minimum.reduce([changeover[b][rows] for b in bands[p - 1 : p + 1]])
