"""Which candidate requests could be observed now: a vectorised constraint check.

:class:`RequestTable` turns a list of :class:`~twin.programme.requests.Request` into numpy
columns once; :func:`feasible` then checks all K candidates against a
:class:`~twin.astro.visibility.Geometry` with no Python loop over requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin.astro.visibility import Geometry
from twin.programme import constraints
from twin.programme.requests import Request


@dataclass(frozen=True)
class RequestTable:
    """Per-request constraint values as arrays of length K (row i = request i).

    ``limits`` holds one column per rule of :mod:`twin.programme.constraints`, named by
    its field and also read as an attribute (``table.max_airmass``);
    ``max_seeing_arcsec`` is +inf where the request sets no seeing limit. Windows are
    padded (K, W) arrays of [start, end) MJD; padding is NaN (never inside) and a request
    with no windows gets the single window (-inf, +inf).
    """

    request_ids: tuple[str, ...]
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    priority: np.ndarray
    limits: dict[str, np.ndarray]
    window_start_mjd: np.ndarray
    window_end_mjd: np.ndarray

    def __len__(self) -> int:
        return len(self.request_ids)

    def __getattr__(self, name: str) -> np.ndarray:
        limits = self.__dict__.get("limits", {})
        if name in limits:
            return limits[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    @classmethod
    def from_requests(cls, requests: Sequence[Request]) -> RequestTable:
        """Columns of ``requests``, in order."""
        cons = [r.constraints for r in requests]
        width = max([1, *(len(r.windows) for r in requests)])
        starts = np.full((len(requests), width), np.nan)
        ends = np.full((len(requests), width), np.nan)
        for i, request in enumerate(requests):
            if not request.windows:
                starts[i, 0], ends[i, 0] = -np.inf, np.inf
            for j, window in enumerate(request.windows):
                starts[i, j], ends[i, j] = window.start_mjd, window.end_mjd

        def column(values: list) -> np.ndarray:
            return np.asarray(values, dtype=float).reshape(len(requests))

        return cls(
            request_ids=tuple(r.request_id for r in requests),
            ra_deg=column([r.ra_deg for r in requests]),
            dec_deg=column([r.dec_deg for r in requests]),
            priority=column([r.priority for r in requests]),
            limits=constraints.limit_columns(cons),
            window_start_mjd=starts,
            window_end_mjd=ends,
        )

    def take(self, index: np.ndarray | Sequence[int]) -> RequestTable:
        """The rows ``index`` (e.g. the candidates at one decision), in that order."""
        index = np.asarray(index, dtype=int)
        ids = tuple(self.request_ids[i] for i in index)
        arrays = {
            name: getattr(self, name)[index]
            for name in self.__dataclass_fields__
            if name not in ("request_ids", "limits")
        }
        limits = {name: values[index] for name, values in self.limits.items()}
        return RequestTable(request_ids=ids, limits=limits, **arrays)


def feasible(
    requests_arrays: RequestTable,
    geometry: Geometry,
    mjd: np.ndarray | float,
    seeing_arcsec: np.ndarray | float,
    transparency: np.ndarray | float,
) -> np.ndarray:
    """Boolean mask: which of the K candidates meet all their constraints.

    The geometry arrays have the candidates on their first axis, shape (K,) or (K, T, ...);
    ``mjd``, ``seeing_arcsec`` (FWHM) and ``transparency`` (0..1) broadcast against them.
    The moon separation and illumination limits are waived while the moon is below the
    horizon (``moon_alt_deg < 0``). A window contains ``mjd`` if start <= mjd < end.
    """
    table = requests_arrays
    alt = np.asarray(geometry.alt_deg)
    shape = alt.shape
    if not shape or shape[0] != len(table):
        raise ValueError(
            f"geometry has shape {shape} but the table has {len(table)} requests: "
            "the geometry's first axis must be the candidates, in table order"
        )
    trailing = (1,) * (len(shape) - 1)

    def per_request(values: np.ndarray) -> np.ndarray:
        return values.reshape((len(table), *trailing))

    values = {
        "airmass": geometry.airmass,
        "alt_deg": geometry.alt_deg,
        "sun_alt_deg": geometry.sun_alt_deg,
        "moon_sep_deg": geometry.moon_sep_deg,
        "moon_illum": geometry.moon_illum,
        "seeing_fwhm_arcsec": seeing_arcsec,
        "transparency": transparency,
    }
    ok = np.asarray(geometry.above_horizon, dtype=bool)
    moon_ok = np.asarray(geometry.moon_alt_deg) < 0.0  # moon limits waived while it is down
    moon_rules = np.ones(shape, dtype=bool)
    for rule in constraints.rules():
        passed = rule.ok(values[rule.quantity], per_request(table.limits[rule.field]))
        if rule.moon_up_only:
            moon_rules = moon_rules & passed
        else:
            ok = ok & passed
    ok = ok & (moon_ok | moon_rules)
    when = np.broadcast_to(np.asarray(mjd, dtype=float), shape)[..., None]
    starts = table.window_start_mjd.reshape((len(table), *trailing, -1))
    ends = table.window_end_mjd.reshape((len(table), *trailing, -1))
    inside = ((when >= starts) & (when < ends)).any(axis=-1)
    return np.broadcast_to(ok & inside, shape).copy()
