"""The request queue: every request the run knows, as growable numpy columns.

Why columns: at every decision the constraint engine checks all open requests at once,
so the per-request state (visits done, last visit, which sites may take it and since
when) lives in arrays, not in objects. Requests arrive during the run (alert follow-ups,
confirmations); :meth:`RequestQueue.add` appends rows, which is rare next to the reads.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from twin.programme import constraints
from twin.programme.feasibility import RequestTable
from twin.programme.requests import Request

UNLIMITED = -1
_TABLE_COLUMNS = ("ra_deg", "dec_deg", "priority")
"""Columns taken as they are from :class:`~twin.programme.feasibility.RequestTable`, with
its ``limits`` (one per rule of :mod:`twin.programme.constraints`)."""


class RequestQueue:
    """Requests and their progress. Site-dependent columns have shape (n_sites, n).

    ``limits`` maps each rule's field (:mod:`twin.programme.constraints`) to its column,
    also read as an attribute (``queue.max_airmass``)."""

    def __init__(self, site_names: Sequence[str], program_names: Sequence[str]) -> None:
        self.site_names = tuple(site_names)
        self._site_index = {name: i for i, name in enumerate(self.site_names)}
        self.program_names = list(program_names)
        self.requests: list[Request] = []
        n_sites = len(self.site_names)
        f, i, b = np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
        self.ra_deg, self.dec_deg, self.priority = f, f, f
        self.limits: dict[str, np.ndarray] = {name: f for name in constraints.limit_fields()}
        self.window_start = np.empty((0, 1))
        self.window_end = np.empty((0, 1))
        self.cadence_days, self.exptime_s, self.created_mjd = f, f, f
        self.n_exposures, self.n_filter_changes, self.program_index = i, i, i
        self.visits_wanted, self.visits_done = i, i
        self.last_visit_mjd = f
        self.is_alert, self.in_progress = b, b
        self.released_mjd = np.empty((n_sites, 0))  # inf: not (yet) offered to that site
        self._last_end = np.empty(0)  # last_window_end's, until the queue grows

    def __len__(self) -> int:
        return len(self.requests)

    def __getattr__(self, name: str) -> np.ndarray:
        limits = self.__dict__.get("limits", {})
        if name in limits:
            return limits[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def program_id(self, name: str) -> int:
        if name not in self.program_names:
            self.program_names.append(name)
        return self.program_names.index(name)

    def add(self, requests: Sequence[Request], released_mjd: np.ndarray, created_mjd: float
            ) -> np.ndarray:  # fmt: skip
        """Append ``requests``; ``released_mjd`` (n_sites,) or (n_sites, len) says from when
        each site may take them (inf: never). Returns their row indices."""
        n_new = len(requests)
        rows = np.arange(len(self), len(self) + n_new)
        if n_new == 0:
            return rows
        released = np.broadcast_to(
            np.asarray(released_mjd, dtype=float).reshape(len(self.site_names), -1),
            (len(self.site_names), n_new),
        ).copy()
        for k, request in enumerate(requests):
            if request.sites:
                allowed = np.isin(self.site_names, request.sites)
                released[~allowed, k] = np.inf
        table = RequestTable.from_requests(requests)  # constraint columns, padded windows

        def col(old: np.ndarray, values, dtype=float) -> np.ndarray:
            return np.concatenate([old, np.asarray(values, dtype=dtype)])

        for name in _TABLE_COLUMNS:
            setattr(self, name, col(getattr(self, name), getattr(table, name)))
        for name, values in table.limits.items():
            self.limits[name] = col(self.limits[name], values)
        self.window_start = _pad_concat(self.window_start, table.window_start_mjd)
        self.window_end = _pad_concat(self.window_end, table.window_end_mjd)
        self.cadence_days = col(self.cadence_days, [r.cadence_days or np.nan for r in requests])
        self.exptime_s = col(self.exptime_s, [r.total_exptime_s for r in requests])
        self.created_mjd = col(self.created_mjd, [created_mjd] * n_new)
        self.n_exposures = col(
            self.n_exposures, [sum(p.count for p in r.plan) for r in requests], np.int64
        )
        self.n_filter_changes = col(
            self.n_filter_changes,
            [_filter_changes(r) for r in requests],
            np.int64,
        )
        self.program_index = col(
            self.program_index, [self.program_id(r.program) for r in requests], np.int64
        )
        self.visits_wanted = col(
            self.visits_wanted, [r.visits if r.visits > 0 else UNLIMITED for r in requests],
            np.int64,
        )  # fmt: skip
        self.visits_done = col(self.visits_done, [0] * n_new, np.int64)
        self.last_visit_mjd = col(self.last_visit_mjd, [-np.inf] * n_new)
        self.is_alert = col(self.is_alert, [bool(r.alert_id) for r in requests], bool)
        self.in_progress = col(self.in_progress, [False] * n_new, bool)
        self.released_mjd = np.concatenate([self.released_mjd, released], axis=1)
        self.requests.extend(requests)
        return rows

    def open_rows(self, site_index: int, mjd: float, within: np.ndarray | None = None
                  ) -> np.ndarray:  # fmt: skip
        """Rows a telescope at ``site_index`` may consider at ``mjd``: released to the site,
        visits still wanted, cadence interval elapsed, not being observed elsewhere."""
        ok = self.openable(site_index, mjd) & ~self.in_progress
        if within is not None:
            ok &= within
        return np.flatnonzero(ok)

    def openable(self, site_index: int, mjd: float, rows: np.ndarray | None = None
                 ) -> np.ndarray:  # fmt: skip
        """Mask of rows (all, or ``rows``) open to ``site_index`` at ``mjd`` but for being
        observed elsewhere: released to the site, visits still wanted, cadence interval
        elapsed. A row openable at the end of an interval is openable throughout it
        unless it is visited meanwhile (or a visit is repeated)."""
        r = slice(None) if rows is None else rows
        wanted = self.visits_wanted[r]
        ok = (wanted == UNLIMITED) | (self.visits_done[r] < wanted)
        ok &= ~(mjd < self.last_visit_mjd[r] + np.nan_to_num(self.cadence_days[r], nan=0.0))
        return ok & (self.released_mjd[site_index, r] <= mjd)

    def last_window_end(self) -> np.ndarray:
        """Per row, the end of its last window (inf: any time): a row whose last window
        has closed can never be observed again. Kept until the queue grows."""
        if self._last_end.size != len(self):
            self._last_end = np.fmax.reduce(self.window_end, axis=1)
        return self._last_end

    def visits_left(self, rows: np.ndarray) -> np.ndarray:
        wanted = self.visits_wanted[rows]
        return np.where(wanted == UNLIMITED, UNLIMITED, wanted - self.visits_done[rows])

    def site_index(self, name: str) -> int:
        return self._site_index[name]

    def record_visit(self, row: int, mjd_start: float) -> None:
        self.visits_done[row] += 1
        self.last_visit_mjd[row] = mjd_start

    def repeat_visit(self, row: int) -> None:
        """One visit of ``row`` does not count: it is wanted again, cadence waived."""
        if self.visits_wanted[row] != UNLIMITED and self.visits_done[row] > 0:
            self.visits_done[row] -= 1
        self.last_visit_mjd[row] = -np.inf


def _filter_changes(request: Request) -> int:
    bands = [p.band for p in request.plan]
    return sum(a != b for a, b in itertools.pairwise(bands))


def _pad_concat(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    width = max(old.shape[1], new.shape[1])

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=np.nan)

    return np.concatenate([pad(old), pad(new)])
