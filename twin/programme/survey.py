"""Survey fields and monitoring targets as :class:`~twin.programme.requests.Request` lists.

Tiling: rows of constant declination spaced by ``fov_deg * (1 - overlap)``; along each row
the RA spacing is that step divided by cos(dec) at the row's equatorward edge (where a
row is widest on the sky), so each row is covered edge to edge. A square field of view of
side ``fov_deg`` then covers the region; the overlap is the margin for the curvature of
rows and for pointing errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from twin.programme.requests import Constraints, ExposurePlan, Request, Window


def _ra_span_deg(ra_min_deg: float, ra_max_deg: float) -> float:
    """Width of the RA interval from ra_min eastward to ra_max; wraps through 0 if needed."""
    span = (ra_max_deg - ra_min_deg) % 360.0
    if span == 0.0 and ra_max_deg != ra_min_deg:  # e.g. 0..360: the full circle
        span = 360.0
    return span


MAX_TILES = 100_000
"""Most tiles one region may have. Why a cap: a tiny ``fov_deg`` (1e-6) or an overlap near
1 tiles the sky into ~10^15 fields and exhausts memory. 10^5 covers the whole sky with
0.75-degree fields at 10 % overlap (91,000 tiles, a one-night run of them ~15 s; a 1-m
telescope's 0.44-degree field covers ~40 % of the sky), a queue the scheduler still
serves at interactive speed."""


def _check_region(ra_min_deg, ra_max_deg, dec_min_deg, dec_max_deg, fov_deg, overlap) -> float:
    """Validate the arguments of :func:`tile_region`; returns the RA span, degrees."""
    values = (ra_min_deg, ra_max_deg, dec_min_deg, dec_max_deg, fov_deg, overlap)
    if not all(np.isfinite(values)):
        raise ValueError(f"tiling needs finite numbers (got {values})")
    if not fov_deg > 0.0:
        raise ValueError(f"fov_deg must be > 0 (got {fov_deg})")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1) (got {overlap})")
    if not -90.0 <= dec_min_deg < dec_max_deg <= 90.0:
        raise ValueError(
            "need -90 <= dec_min_deg < dec_max_deg <= 90 "
            f"(got dec_min_deg={dec_min_deg}, dec_max_deg={dec_max_deg})"
        )
    span_ra = _ra_span_deg(ra_min_deg, ra_max_deg)
    if span_ra == 0.0:
        raise ValueError(f"empty RA range (ra_min_deg = ra_max_deg = {ra_min_deg})")
    return span_ra


def _rows(span_ra: float, dec_min_deg: float, dec_max_deg: float, step: float, max_tiles: int
          ) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """Row declinations and tiles per row; None when there would be more than max_tiles."""
    span_dec = dec_max_deg - dec_min_deg
    n_rows_f = np.ceil(span_dec / step - 1e-9)
    if n_rows_f > max_tiles:  # before allocating anything of that size
        return None
    n_rows = max(1, int(n_rows_f))
    middle = 0.5 * (dec_min_deg + dec_max_deg)
    rows = middle + (np.arange(n_rows) - 0.5 * (n_rows - 1)) * step
    # The row's edge nearest the equator, where one degree of RA is longest.
    low, high = rows - 0.5 * step, rows + 0.5 * step
    edge = np.where((low <= 0.0) & (0.0 <= high), 0.0, np.minimum(np.abs(low), np.abs(high)))
    width_deg = span_ra * np.cos(np.radians(np.minimum(edge, 90.0)))
    n_ra = np.maximum(1.0, np.ceil(width_deg / step - 1e-9))
    if n_ra.sum() > max_tiles:
        return None
    return rows, n_ra.astype(np.int64)


def count_tiles(
    ra_min_deg: float,
    ra_max_deg: float,
    dec_min_deg: float,
    dec_max_deg: float,
    fov_deg: float,
    overlap: float = 0.1,
    max_tiles: int = MAX_TILES,
) -> int:
    """Number of tiles :func:`tile_region` makes, or ``max_tiles + 1`` if more (cheap: no
    tile is made, and the count stops once past ``max_tiles``)."""
    span_ra = _check_region(ra_min_deg, ra_max_deg, dec_min_deg, dec_max_deg, fov_deg, overlap)
    rows = _rows(span_ra, dec_min_deg, dec_max_deg, fov_deg * (1.0 - overlap), max_tiles)
    return max_tiles + 1 if rows is None else int(rows[1].sum())


def tile_region(
    ra_min_deg: float,
    ra_max_deg: float,
    dec_min_deg: float,
    dec_max_deg: float,
    fov_deg: float,
    overlap: float = 0.1,
    max_tiles: int = MAX_TILES,
) -> tuple[np.ndarray, np.ndarray]:
    """Tile centres (ra_deg in [0, 360), dec_deg) covering an RA/Dec box.

    ``ra_min_deg > ra_max_deg`` wraps through RA 0 (330..30 is 60 degrees wide);
    ``0..360`` is the full circle. ``overlap`` is the fraction of the field shared with
    each neighbour, 0 <= overlap < 1. More than ``max_tiles`` tiles is a ValueError.
    """
    span_ra = _check_region(ra_min_deg, ra_max_deg, dec_min_deg, dec_max_deg, fov_deg, overlap)
    step = fov_deg * (1.0 - overlap)
    rows = _rows(span_ra, dec_min_deg, dec_max_deg, step, max_tiles)
    if rows is None:
        raise ValueError(
            f"the region needs more than {max_tiles} tiles of fov_deg {fov_deg:g} at overlap "
            f"{overlap:g}; give a larger fov_deg, a smaller overlap or a smaller region"
        )
    ras, decs = [], []
    for dec, n_ra in zip(*rows, strict=True):
        ra = ra_min_deg + (np.arange(n_ra) + 0.5) * (span_ra / n_ra)
        ras.append(np.mod(ra, 360.0))
        decs.append(np.full(n_ra, dec))
    return np.concatenate(ras), np.concatenate(decs)


def survey_requests(
    ra_min_deg: float,
    ra_max_deg: float,
    dec_min_deg: float,
    dec_max_deg: float,
    fov_deg: float,
    plan: Sequence[ExposurePlan],
    *,
    overlap: float = 0.1,
    program: str = "survey",
    priority: float = 1.0,
    constraints: Constraints | None = None,
    windows: Sequence[Window] = (),
    cadence_days: float | None = None,
    visits: int = 1,
) -> list[Request]:
    """One request per tile of :func:`tile_region`; ids are ``{program}-{index:05d}``."""
    ra, dec = tile_region(ra_min_deg, ra_max_deg, dec_min_deg, dec_max_deg, fov_deg, overlap)
    shared = {"program": program, "priority": priority, "plan": tuple(plan),
              "constraints": constraints or Constraints(), "windows": tuple(windows),
              "cadence_days": cadence_days, "visits": visits}  # fmt: skip
    return [
        Request(
            request_id=f"{program}-{i:05d}",
            target_id=f"{program}-tile-{i:05d}",
            ra_deg=float(r),
            dec_deg=float(d),
            **shared,
        )
        for i, (r, d) in enumerate(zip(ra, dec, strict=True))
    ]


def monitoring_requests(
    targets: Iterable[tuple[str, float, float]],
    cadence_days: float,
    plan: Sequence[ExposurePlan],
    *,
    program: str = "monitoring",
    priority: float = 1.0,
    constraints: Constraints | None = None,
    windows: Sequence[Window] = (),
    visits: int = 1,
) -> list[Request]:
    """One repeating request per ``(target_id, ra_deg, dec_deg)``, revisited every
    ``cadence_days``; ids are ``{program}-{target_id}``."""
    shared = {"program": program, "priority": priority, "plan": tuple(plan),
              "constraints": constraints or Constraints(), "windows": tuple(windows),
              "cadence_days": cadence_days, "visits": visits}  # fmt: skip
    return [
        Request(
            request_id=f"{program}-{target_id}",
            target_id=target_id,
            ra_deg=float(ra_deg) % 360.0,
            dec_deg=float(dec_deg),
            **shared,
        )
        for target_id, ra_deg, dec_deg in targets
    ]
