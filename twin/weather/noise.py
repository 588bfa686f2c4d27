"""Random building blocks of the stochastic weather: seeded streams, AR(1), site correlation.

Seeding (DESIGN.md "Randomness"): each weather component gets its own child of the run's
``SeedSequence``, and within a component each site its own stream keyed on the site name
(CRC-32). So a site's draws do not depend on which other sites are in the run, and a
longer span extends a trace without changing its start. Children are built from the
parent's entropy and spawn key rather than with ``spawn()``, which would mutate the
parent and make a second model built from the same object differ.

AR(1): the discrete form of an Ornstein-Uhlenbeck process, x[k] = phi x[k-1] +
sqrt(1 - phi^2) e[k] with phi = exp(-dt / tau), started from its stationary law, so every
sample is exactly N(0, 1) and the autocorrelation at lag t is exp(-t / tau). Run with
``scipy.signal.lfilter`` over the whole grid at once.

Site correlation: innovations of nearby sites are correlated with an exponential kernel
of great-circle distance, corr = exp(-d / L). That kernel is positive definite on the
sphere with great-circle distance (Gneiting 2013, Bernoulli 19, 1327, sec. 4.2), so its
Cholesky factor exists; a 1e-9 diagonal jitter covers co-located sites (corr = 1). The
factor is lower triangular, so appending a site leaves the earlier sites' draws unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from scipy.signal import lfilter

from twin.world.sites import Site, great_circle_km


def as_seed_sequence(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(int(seed))


def child_seed(parent: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """A child keyed on ``key``, independent of how often ``parent`` has been spawned."""
    return np.random.SeedSequence(
        parent.entropy, spawn_key=(*parent.spawn_key, *key), pool_size=parent.pool_size
    )


def name_key(name: str) -> int:
    """A stable integer for a name (Python's ``hash`` of a str changes between runs)."""
    return zlib.crc32(name.encode("utf-8"))


def site_normals(
    parent: np.random.SeedSequence, component: int, site_names: Sequence[str], n_steps: int
) -> np.ndarray:
    """Independent standard normals, shape (n_steps, n_sites), one stream per site."""
    columns = [
        np.random.default_rng(child_seed(parent, component, name_key(name))).standard_normal(
            n_steps
        )
        for name in site_names
    ]
    return np.column_stack(columns)


def ar1_phi(step_min: float, efold_min: float | np.ndarray) -> np.ndarray:
    """AR(1) coefficient for a grid step and an e-folding time (both in minutes)."""
    return np.exp(-step_min / np.asarray(efold_min, dtype=float))


def ar1(innovations: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Stationary unit-variance AR(1) along axis 0; ``phi`` has one value per column."""
    innovations = np.atleast_2d(innovations.T).T
    phi = np.broadcast_to(np.asarray(phi, dtype=float), innovations.shape[1:])
    out = np.empty_like(innovations, dtype=float)
    for value in np.unique(phi):  # one lfilter call per distinct timescale, not per step
        columns = phi == value
        drive = innovations[:, columns] * np.sqrt(1.0 - value**2)
        drive[0] = innovations[0, columns]  # start from the stationary N(0, 1)
        out[:, columns] = lfilter([1.0], [1.0, -value], drive, axis=0)
    return out


def correlation_matrix(sites: Sequence[Site], correlation_length_km: float) -> np.ndarray:
    """corr_ij = exp(-great-circle distance / correlation length)."""
    n = len(sites)
    distance_km = np.zeros((n, n))
    for i in range(n):
        for j in range(i):
            distance_km[i, j] = distance_km[j, i] = great_circle_km(sites[i], sites[j])
    return np.exp(-distance_km / correlation_length_km)


def unit_cholesky(correlation: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor, rows rescaled so each correlated variable has unit variance."""
    jittered = correlation + 1e-9 * np.eye(len(correlation))
    factor = np.linalg.cholesky(jittered)
    return factor / np.linalg.norm(factor, axis=1, keepdims=True)
