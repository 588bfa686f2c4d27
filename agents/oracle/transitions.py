"""The least time a telescope spends between two visits: the slew-aware part of the bound.

Part of :mod:`agents.oracle` (the formulation is in its docstring).

Why: the first bound let visits follow each other with no time between them, so it
credited every night with the slews, settles and filter changes no telescope can skip
(about 6 % of a telescope's busy time under greedy on ``global-3site``). This module gives
each visit a *changeover*: a lower bound on the time from the end of its last readout to
the first exposure of whatever visit the telescope makes next, over every visit that can
come next. The MILP charges each visit its occupancy plus its changeover
(:mod:`agents.oracle.milp`).

Why the changeover is a lower bound (the twin's rules, :func:`twin.ops.slew.slew_time_s`
and :meth:`twin.ops.network.NetworkTwin._visit`):

- After a visit of request ``p``, decided at ``T'`` and started after a slew ``s_p``,
  the mount stays at ``p``'s altitude when its first exposure started and its azimuth at
  ``T'`` (the engine's ``alt_deg``, ``az_deg``): that is within ``omega s_p`` of where
  ``p`` stood at ``T'`` (``omega`` = 15.04 deg/h, the fastest any altitude changes). The
  next visit, of ``r``, is decided at ``T`` and slews to where ``r`` stands at ``T``. Both
  targets turn rigidly with the sky, so the angle to cover is at least ``theta0(p, r) -
  omega (T - T' + s_p)``: their separation on the sky less the angle ``p`` has turned
  since ``T'`` and the pointing's offset. ``T - T' + s_p`` is ``p``'s slew twice, its
  occupancy (together at most twice :func:`max_slew_s` plus its full occupancy,
  ``D_p``) and the gap ``G`` between the visits (waits, visits aborted before a first
  exposure, the last slew).
- Every move takes at least :func:`least_slew_s` ``h`` of its angle, and ``h`` is
  increasing and subadditive, so a chain of moves takes no less than one move over the
  whole angle, and the mount settles at least once: ``G >= h(theta1 - omega G) + settle``
  with ``theta1 = theta0 - omega D_p``. The right side falls as ``G`` grows, so ``G`` is
  at least the root of the equality (:func:`least_gap_s`).
- ``h(theta)`` is the least of ``max(t_alt(x), t_az(theta - x), dome(theta - x))`` over
  the split ``x``: a great circle of ``theta`` needs ``|d_alt| + |d_az| >= theta``.
- The mount moves (and settles) unless the target stands exactly where it points, an
  event of probability zero in continuous time (the pointing is a past position of
  another target, the decision times are set by other events).
- A filter change runs beside the slew; it is forced when ``r``'s first band is not the
  band the visit ended in. A visit that completed all its exposures ends in its last
  band; one cut after ``k`` exposures may have changed to the next exposure's band
  before the cut, so the lesser of the two is charged.
- ``r`` ranges over every request the telescope could visit that night, and ``p`` itself
  where ``p`` can be visited twice in the night (then the changeover is the settle, and
  a filter change if the visit's last band is not its first).
  The last visit of a run of slots may be followed by a visit that starts after the run;
  the capacity rows allow for it by adding the largest changeover to what the run holds.

Readouts are already in the occupancy; between exposures of one visit, the filter changes
are too (:class:`agents.oracle.slots.Layout`).
"""

from __future__ import annotations

import numpy as np

from agents.oracle.slots import Layout, plan_key
from twin.astro.almanac import enu_vectors
from twin.ops.slew import axis_move_time_s
from twin.programme.requests import Request
from twin.world.telescope import Telescope

SKY_TURN_DEG_PER_S = 360.0 / 86164.0905
"""How fast any target turns with the sky (one sidereal day a turn)."""
SEPARATION_MARGIN_DEG = 0.02
"""Margin on the sky separation for the engine's apparent places (aberration, ~20")."""
_BISECTIONS = 48


def least_slew_s(telescope: Telescope, theta_deg: np.ndarray) -> np.ndarray:
    """Least slew time (no settle, no filter) over any move of ``theta_deg`` on the sky:
    ``min over x of max(t_alt(x), t_az(theta - x), (theta - x) / v_dome)``.

    ``t_alt`` rises and the azimuth's time falls with ``x``, so the minimum of their
    maximum is where they cross, found by bisection (vectorised)."""
    mount, dome = telescope.mount, telescope.dome
    theta = np.asarray(theta_deg, dtype=float)

    def t_alt(x):
        return axis_move_time_s(x, mount.max_speed_alt_deg_s, mount.accel_deg_s2)

    def t_az(y):
        move = axis_move_time_s(y, mount.max_speed_az_deg_s, mount.accel_deg_s2)
        return np.maximum(move, y / dome.rotation_speed_deg_s)

    lo, hi = np.zeros_like(theta), theta.copy()
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        alt_slower = t_alt(mid) >= t_az(theta - mid)
        hi = np.where(alt_slower, mid, hi)
        lo = np.where(alt_slower, lo, mid)
    # The crossing x* lies in [lo, hi]: t_alt(lo) <= t_alt(x*) and t_az(theta - hi) <=
    # t_az(theta - x*), both equal to the minimum there, so their max is a lower bound.
    return np.maximum(t_alt(lo), t_az(theta - hi))


def max_slew_s(telescope: Telescope) -> float:
    """Longest slew a telescope can make: 90 deg in altitude, 180 in azimuth, the settle
    and the filter change beside it."""
    mount, dome = telescope.mount, telescope.dome
    move = max(
        float(axis_move_time_s(90.0, mount.max_speed_alt_deg_s, mount.accel_deg_s2)),
        float(axis_move_time_s(180.0, mount.max_speed_az_deg_s, mount.accel_deg_s2)),
        180.0 / dome.rotation_speed_deg_s,
    )
    return max(move + mount.settle_s, telescope.filter_change_s)


def least_gap_s(telescope: Telescope, theta1_deg: np.ndarray) -> np.ndarray:
    """Least gap ``G`` before the next first exposure when the angle to cover, less the
    sky's turn during the previous visit, is ``theta1_deg``: a lower bound of the root of
    ``G = F(G) = h(theta1 - omega G) + settle`` (see the module docstring).

    ``F`` falls as ``G`` grows, so from ``G = 0`` (below the root) its iterates alternate
    around the root: each second one, ``F(F(G))``, stays below it and rises towards it.
    The slope of ``F`` is ``omega h'``, a few thousandths beyond the smallest angles, so
    four steps come within a millisecond of the root (measured on the presets)."""
    theta1 = np.asarray(theta1_deg, dtype=float)
    settle = telescope.mount.settle_s
    gap = np.zeros_like(theta1)
    for _ in range(4):  # an even number: the last iterate is below the root
        gap = least_slew_s(telescope, np.maximum(theta1 - SKY_TURN_DEG_PER_S * gap, 0.0)) + settle
    return gap


def changeover_s(
    telescope: Telescope, requests: list[Request], repeatable: np.ndarray
) -> dict[str, np.ndarray]:
    """Least time after a visit of each request at ``telescope`` before the next visit's
    first exposure (see the module docstring), by the band the visit ends in, in seconds.

    ``requests`` are all the requests the telescope could visit that night (the possible
    successors); ``repeatable[i]`` says request ``i`` can be visited twice in the night
    there, so it may follow itself. Returns ``{band: (n,) seconds}`` for every band a
    request's plan uses; a visit with no possible successor gets 0 (the night's last)."""
    n = len(requests)
    keys = [plan_key(r) for r in requests]
    bands = sorted({band for k in keys for band, _ in k})
    if n == 0:
        return {band: np.zeros(0) for band in bands}
    ra = np.array([r.ra_deg for r in requests])
    dec = np.array([r.dec_deg for r in requests])
    u = enu_vectors(dec, ra)  # any orthonormal frame: only separations are used
    theta0 = np.degrees(np.arccos(np.clip(u @ u.T, -1.0, 1.0)))  # [p, r]
    layouts = {k: Layout.of(k, telescope.readout_s, telescope.filter_change_s) for k in set(keys)}
    busy_s = np.array([layouts[k].occupancy_s[-1] for k in keys]) + 2.0 * max_slew_s(telescope)
    theta1 = np.maximum(theta0 - SEPARATION_MARGIN_DEG - SKY_TURN_DEG_PER_S * busy_s[:, None], 0.0)
    np.fill_diagonal(theta1, np.where(repeatable, 0.0, np.inf))
    first = np.array([k[0][0] for k in keys])
    change = telescope.filter_change_s
    out = {}
    for band in bands:
        least = np.full(n, np.inf)
        for forced, floor_s in ((False, 0.0), (True, change)):
            closest = np.where((first != band)[None, :] == forced, theta1, np.inf).min(axis=1)
            finite = np.isfinite(closest)
            gap = least_gap_s(telescope, np.where(finite, closest, 0.0))
            cost = np.maximum(gap, floor_s)
            least = np.minimum(least, np.where(finite, cost, np.inf))
        out[band] = np.where(np.isfinite(least), least, 0.0)
    return out
