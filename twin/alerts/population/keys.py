"""Kinds, ids and deterministic randomness of the population.

Why hashes as well as generators: a member drawn in a sky cell gets its own generator,
seeded by ``(sky_seed, kind, cell, year)`` as the static sky's sources are. Variable stars
and AGN are properties of sources the static sky already draws, so whether a star varies,
and how, is a hash of ``(sky_seed, kind, source_id)``: the same answer whichever frame,
band or depth drew the star (a generator per star would cost ~20 µs each).
"""

from __future__ import annotations

import numpy as np

POP_KINDS: tuple[str, ...] = ("sn_ia", "sn_cc", "fast", "variable", "agn", "asteroid")
"""Values of the truth's ``pop_kind`` ('' for the static sky and announced transients)."""

EXPLOSIVE_KINDS: tuple[str, ...] = ("sn_ia", "sn_cc", "fast")
PERSISTENT_KINDS: tuple[str, ...] = ("variable", "agn")
KIND_CODE = {kind: k + 1 for k, kind in enumerate(POP_KINDS)}
POPULATION_SOURCE_KIND = 4
"""Top four bits of a population member's ``source_id`` (the static sky uses 0-3)."""
POP_SALT = 0x504F50  # "POP": keeps the population's generators apart from the static sky's

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def check_kinds(kinds, field: str = "kinds") -> tuple[str, ...]:
    """``kinds`` as a tuple, or a ValueError naming the allowed ones."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = sorted(set(kinds) - set(POP_KINDS))
    if unknown:
        raise ValueError(f"{field}: unknown population kind(s) {unknown}; allowed: "
                         f"{', '.join(POP_KINDS)}")  # fmt: skip
    return kinds


def member_source_id(kind: str, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """``source_id`` of population members: kind bits, then 28 + 28 bits of the caller's key."""
    head = (POPULATION_SOURCE_KIND << 60) | (KIND_CODE[kind] << 56)
    high = np.asarray(high, dtype=np.int64) & 0xFFFFFFF
    low = np.asarray(low, dtype=np.int64) & 0xFFFFFFF
    return np.int64(head) | (high << 28) | low


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 (Steele, Lea & Flood 2014): a bijective, well-mixed 64-bit hash."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def hash_uniforms(ids, sky_seed: int, kind: str, n: int) -> np.ndarray:
    """``(len(ids), n)`` uniforms in [0, 1), a pure function of (sky_seed, kind, id)."""
    ids = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    key = _splitmix(np.array([(int(sky_seed) << 8) ^ KIND_CODE[kind] ^ (POP_SALT << 40)],
                             dtype=np.uint64))  # fmt: skip
    x = _splitmix(ids ^ key)
    out = np.empty((len(ids), n))
    for k in range(n):
        x = _splitmix(x ^ np.uint64(k + 1))
        out[:, k] = (x >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return out


def generator(sky_seed: int, kind: str, *key: int) -> np.random.Generator:
    """The generator of one (kind, cell, time block) of the population. Keys are taken
    modulo 2³² (a seed sequence refuses negatives: a day block before MJD 0 is one)."""
    words = [int(k) & 0xFFFFFFFF for k in key]
    return np.random.default_rng([int(sky_seed), POP_SALT, KIND_CODE[kind], *words])


def euclidean_mags(u: np.ndarray, mag_range: tuple[float, float], slope: float = 0.6):
    """Magnitudes with cumulative counts ``∝ 10^(slope m)`` in ``mag_range``, from uniforms."""
    lo, hi = mag_range
    a, b = 10.0 ** (slope * (lo - hi)), 1.0  # counts relative to the faint end
    return hi + np.log10(a + u * (b - a)) / slope


def log_uniform(u: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    lo, hi = value_range
    return lo * (hi / lo) ** u
