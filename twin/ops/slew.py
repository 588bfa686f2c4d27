"""Slew time: how long a telescope takes to go from one pointing to another.

Why: the scheduler weighs every candidate field by the overhead of getting there, so
the slew time is computed for many targets at once (numpy, broadcasting over the "to"
arrays) in closed form.

Model (the usual one of observatory simulators, e.g. rubin_scheduler's
``KinemModel``):

- each mount axis follows a trapezoidal velocity profile with maximum speed ``v``
  and acceleration (= deceleration) ``a``: for a distance ``d >= v²/a`` it reaches
  ``v`` and ``t = d/v + v/a``; for a shorter move the profile is a triangle that
  never reaches ``v`` and ``t = 2 sqrt(d/a)``. Both give ``2 v/a`` at ``d = v²/a``;
- altitude and azimuth move at the same time, so the mount takes the longer of the two;
- the dome rotates with the mount, through the same azimuth distance, at its constant
  ``rotation_speed_deg_s``: the dome's acceleration phase is not modelled (its
  rotation speed is taken as reached at once);
- the mount then settles for ``settle_s``, but only if it moved at all;
- a filter change runs in parallel with the slew, so the total is
  ``max(max(mount, dome) + settle, filter change)``.

Azimuth distances go the shorter way round; cable-wrap limits, which can force the
long way, are not modelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from twin.world.telescope import Telescope

ArrayLike = npt.ArrayLike


def axis_move_time_s(
    distance_deg: ArrayLike, max_speed_deg_s: float, accel_deg_s2: float
) -> np.ndarray | float:
    """Time for one axis to move ``distance_deg`` from rest to rest, in seconds.

    Trapezoidal velocity profile: for ``d >= v²/a``, ``t = d/v + v/a``; for a shorter
    move (triangular profile, peak speed ``sqrt(a d) < v``), ``t = 2 sqrt(d/a)``.
    A distance of 0 takes 0 s. Vectorised over ``distance_deg`` (degrees, >= 0).
    """
    if max_speed_deg_s <= 0.0 or accel_deg_s2 <= 0.0:
        raise ValueError(
            f"max_speed_deg_s = {max_speed_deg_s} and accel_deg_s2 = {accel_deg_s2}; "
            "both must be > 0"
        )
    d = np.asarray(distance_deg, dtype=float)
    if np.any(d < 0.0):
        raise ValueError("distance_deg must be >= 0; pass the absolute distance of the move")
    v, a = max_speed_deg_s, accel_deg_s2
    trapezoid = d / v + v / a
    triangle = 2.0 * np.sqrt(d / a)
    t = np.where(d >= v * v / a, trapezoid, triangle)
    return t[()] if t.ndim == 0 else t


def azimuth_distance_deg(az_from_deg: ArrayLike, az_to_deg: ArrayLike) -> np.ndarray | float:
    """Angle between two azimuths the shorter way round, in 0..180 degrees.

    Vectorised (broadcasts). Cable-wrap limits, which can force the long way round,
    are not modelled.
    """
    diff = np.mod(np.asarray(az_to_deg, dtype=float) - np.asarray(az_from_deg, dtype=float), 360.0)
    dist = np.minimum(diff, 360.0 - diff)
    return dist[()] if dist.ndim == 0 else dist


def _filter_changes(
    telescope: Telescope, band_from: str | None, band_to: str | Sequence[str] | None
) -> np.ndarray:
    """True where the filter must change; ``None`` on either side means no change."""
    if band_from is None or band_to is None:
        return np.asarray(False)
    bands_to = np.asarray(band_to)
    for band in {band_from, *np.unique(bands_to).tolist()}:
        telescope.filter(band)  # raises ConfigError naming the allowed bands
    return bands_to != band_from


def slew_time_s(
    telescope: Telescope,
    alt_from_deg: float,
    az_from_deg: float,
    alt_to_deg: ArrayLike,
    az_to_deg: ArrayLike,
    band_from: str | None = None,
    band_to: str | Sequence[str] | None = None,
) -> np.ndarray | float:
    """Time from the end of one exposure to the start of the next, in seconds.

    Mount axes and dome move at once; the mount settles for ``telescope.mount.settle_s``
    if it moved; a filter change (``telescope.filter_change_s``, counted when both
    ``band_from`` and ``band_to`` are given and differ) overlaps the slew, so the result
    is ``max(max(t_alt, t_az, t_dome) + settle, t_filter)``. Vectorised over the "to"
    arguments (``alt_to_deg``, ``az_to_deg``, ``band_to``), which broadcast together.
    """
    mount = telescope.mount
    d_alt = np.abs(np.asarray(alt_to_deg, dtype=float) - float(alt_from_deg))
    d_az = np.asarray(azimuth_distance_deg(az_from_deg, az_to_deg))
    t_alt = axis_move_time_s(d_alt, mount.max_speed_alt_deg_s, mount.accel_deg_s2)
    t_az = axis_move_time_s(d_az, mount.max_speed_az_deg_s, mount.accel_deg_s2)
    t_dome = d_az / telescope.dome.rotation_speed_deg_s
    moved = (d_alt > 0.0) | (d_az > 0.0)
    t_slew = np.maximum(np.maximum(t_alt, t_az), t_dome) + np.where(moved, mount.settle_s, 0.0)
    changes = _filter_changes(telescope, band_from, band_to)
    t = np.maximum(t_slew, np.where(changes, telescope.filter_change_s, 0.0))
    return t[()] if t.ndim == 0 else t
