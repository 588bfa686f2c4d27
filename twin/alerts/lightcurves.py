"""Light curves of transients, in AB magnitudes, as shapes relative to the r-band peak.

Every curve is ``m_band(t) = peak_mag_r + Δr(t) + colour_band(t)``, with ``t`` the days
since ``t0`` (explosion, merger or burst):

- ``Δr(t)``, the r-band shape, is 0 at the peak (``t = rise_days``). Before the peak the
  flux rises as ``x^n exp(n (1 - x))`` with ``x = t / rise_days``: early on ``F ∝ t^n``
  (``n = 2`` is the expanding-fireball law, Riess et al. 1999, AJ 118, 2675), and the
  curve reaches its maximum with zero slope. After the peak the shape is a table of
  magnitudes interpolated linearly, extended by a constant tail slope, or, for afterglows,
  a broken power law in time.
- ``colour_band(t) = m_band - m_r`` is a table in days after the peak, held constant
  outside the table. Colours change because the photosphere cools; that is why SNe Ia
  fade faster in g than in r and kilonovae fade fastest in the blue.

The caller sets the brightness with ``peak_mag_r``, the apparent r magnitude at peak; the
absolute peaks below are for reference (and to relate a distance to ``peak_mag_r``).
Before ``t0`` (and at ``t0``, where the flux is zero) every magnitude is ``+inf``.

The tables are approximate: read off the cited light curves to about 0.2 mag, enough to
decide when a target is worth a telescope, not for photometric classification. Host and
Galactic extinction, K-corrections and the spread within each class are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from twin.physics.extinction import BAND_EFFECTIVE_WAVELENGTH_NM

KINDS: tuple[str, ...] = ("sn_ia", "sn_cc", "kilonova", "grb_afterglow")
"""Transient kinds with a light curve."""

BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z", "y")
"""Bands with a colour for every kind (the network's filters)."""

Nodes = tuple[tuple[float, float], ...]
"""(days, magnitude) pairs, days increasing."""


@dataclass(frozen=True)
class TabulatedDecline:
    """r-band magnitudes below peak at tabulated days after peak, then a constant slope."""

    nodes: Nodes
    tail_mag_per_day: float

    def __call__(self, days_since_t0: np.ndarray, peak_days: float) -> np.ndarray:
        days, mags = np.array(self.nodes, dtype=float).T
        after = days_since_t0 - peak_days
        tail = mags[-1] + self.tail_mag_per_day * (after - days[-1])
        return np.where(after <= days[-1], np.interp(after, days, mags), tail)


@dataclass(frozen=True)
class PowerLawDecline:
    """``F ∝ t^-index`` (t since t0) after the peak, steepening at a jet break.

    In magnitudes the fading is ``2.5 * index`` mag per decade of time.
    """

    index: float
    break_days: float
    post_break_index: float

    def __call__(self, days_since_t0: np.ndarray, peak_days: float) -> np.ndarray:
        t = days_since_t0
        before = 2.5 * self.index * np.log10(np.minimum(t, self.break_days) / peak_days)
        steeper = 2.5 * self.post_break_index * np.log10(np.maximum(t / self.break_days, 1.0))
        return before + steeper


@dataclass(frozen=True)
class LightCurve:
    """The light-curve model of one transient kind (see the module docstring).

    ``rise_days``: t0 to r-band peak. ``rise_index``: early flux ``∝ t^rise_index``.
    ``colours``: ``m_band - m_r`` tables keyed by band, days after peak. How long a
    transient stays brighter than a limit depends on its peak: :func:`days_brighter_than`.
    """

    kind: str
    summary: str
    peak_abs_mag_r: float | None  # None: no standard luminosity (afterglows)
    rise_days: float
    rise_index: float
    decline: TabulatedDecline | PowerLawDecline
    colours: Mapping[str, Nodes] = field(repr=False)

    def delta_mag_r(self, days_since_t0: ArrayLike) -> np.ndarray:
        """r magnitude minus the r peak magnitude; ``+inf`` at or before t0."""
        t = np.asarray(days_since_t0, dtype=float)
        out = np.full(t.shape, np.inf)
        rising = (t > 0.0) & (t < self.rise_days)
        x = t[rising] / self.rise_days
        # -2.5 log10(x^n exp(n (1 - x))): zero with zero slope at x = 1.
        out[rising] = -2.5 * self.rise_index * (np.log10(x) + (1.0 - x) / np.log(10.0))
        falling = t >= self.rise_days
        out[falling] = self.decline(t[falling], self.rise_days)
        out[np.isnan(t)] = np.nan
        return out

    def colour(self, band: str, days_since_t0: ArrayLike) -> np.ndarray:
        """``m_band - m_r`` at ``days_since_t0``; constant outside the tabulated days."""
        if band not in self.colours:
            raise ValueError(
                f"no {self.kind} colour for band {band!r}; bands available: "
                f"{', '.join(self.colours)}"
            )
        days, mags = np.array(self.colours[band], dtype=float).T
        after = np.asarray(days_since_t0, dtype=float) - self.rise_days
        return np.interp(after, days, mags)


def _power_law_colours(beta: float) -> dict[str, Nodes]:
    """Colours of ``F_ν ∝ ν^-β``: ``m_b - m_r = 2.5 β log10(λ_r / λ_b)``, time-independent."""
    lam_r = BAND_EFFECTIVE_WAVELENGTH_NM["r"]
    return {
        band: ((0.0, 2.5 * beta * float(np.log10(lam_r / BAND_EFFECTIVE_WAVELENGTH_NM[band]))),)
        for band in BANDS
    }


def _frozen(colours: dict[str, Nodes]) -> Mapping[str, Nodes]:
    return MappingProxyType({"r": ((0.0, 0.0),), **colours})


# SN Ia: M_B ≈ -19.3 at peak (Phillips 1993; Riess et al. 1999), r about the same (AB).
# Rise ~18 d (Riess et al. 1999: 19.5 d in B; Firth et al. 2015: 18.98 d). Decline of a
# Δm15(B) ≈ 1.1 SN: r fades 0.65 mag in 15 d, has a shoulder at ~+25 d (the i-band
# secondary maximum), then the 56Co tail at ~0.02 mag/d (Leibundgut 2000, A&ARv 10, 179:
# 0.014 mag/d in B, 0.03 in R). Colours from CSP/ZTF Ia colour curves (Burns et al. 2014;
# Dhawan et al. 2022): g - r ≈ -0.1 at peak, +1.0 at +30 d, bluer again after (Lira law);
# so Δm15(g) ≈ 1.1, like Δm15(B).
SN_IA = LightCurve(
    kind="sn_ia",
    summary="thermonuclear supernova: 18-d rise, Δm15(g) ≈ 1.1, 0.02 mag/d tail",
    peak_abs_mag_r=-19.3,
    rise_days=18.0,
    rise_index=2.0,
    decline=TabulatedDecline(
        nodes=(
            (0.0, 0.0),
            (5.0, 0.12),
            (10.0, 0.35),
            (15.0, 0.65),
            (20.0, 0.85),
            (25.0, 0.92),
            (30.0, 1.05),
            (40.0, 1.6),
            (60.0, 2.3),
        ),
        tail_mag_per_day=0.02,
    ),
    colours=_frozen(
        {
            "u": ((0.0, 0.4), (15.0, 1.3), (30.0, 2.2), (60.0, 2.0)),
            "g": ((0.0, -0.1), (15.0, 0.35), (30.0, 1.0), (60.0, 0.7)),
            "i": ((0.0, 0.5), (10.0, 0.7), (20.0, 0.45), (30.0, 0.0), (60.0, 0.1)),
            "z": ((0.0, 0.5), (10.0, 0.65), (30.0, 0.1), (60.0, 0.2)),
            "y": ((0.0, 0.55), (10.0, 0.65), (30.0, 0.0), (60.0, 0.2)),
        }
    ),
)

# SN II-P, the commonest core collapse (~50 %, Li et al. 2011). Plateau M ≈ -16.5 (Anderson
# et al. 2014: mean M_V,max = -16.74), rise ~8 d in r (González-Gaitán et al. 2015), a
# plateau fading ~0.5 mag/100 d until ~100 d after explosion, a 2-mag drop over ~25 d
# (Olivares et al. 2010; Valenti et al. 2016), then the 56Co tail at 0.98 mag/100 d. Hot at
# first (g - r ≈ -0.2, bright in u), red by the end of the plateau (g - r ≈ 1.1; u blanketed).
SN_CC = LightCurve(
    kind="sn_cc",
    summary="type II-P supernova: 8-d rise, ~100-d plateau, 2-mag drop, 0.0098 mag/d tail",
    peak_abs_mag_r=-16.5,
    rise_days=8.0,
    rise_index=2.0,
    decline=TabulatedDecline(
        nodes=(
            (0.0, 0.0),
            (20.0, 0.15),
            (90.0, 0.5),
            (100.0, 0.9),
            (115.0, 2.3),
            (130.0, 2.6),
        ),
        tail_mag_per_day=0.0098,
    ),
    colours=_frozen(
        {
            "u": ((0.0, -0.3), (20.0, 1.0), (50.0, 2.0), (100.0, 2.5)),
            "g": ((0.0, -0.2), (20.0, 0.4), (60.0, 0.9), (100.0, 1.1)),
            "i": ((0.0, 0.25), (30.0, 0.0), (100.0, -0.15)),
            "z": ((0.0, 0.35), (30.0, 0.0), (100.0, -0.2)),
            "y": ((0.0, 0.4), (30.0, 0.0), (100.0, -0.2)),
        }
    ),
)

# Kilonova like AT2017gfo (GW170817; Coulter et al. 2017; Drout et al. 2017; Villar et al.
# 2017): M ≈ -15.7 near 0.7 d, then fading ~1 mag/d in g, ~0.7 in r, ~0.5 in i, slower in
# z and y as the ejecta cool and the lanthanide-rich red component takes over.
KILONOVA = LightCurve(
    kind="kilonova",
    summary="AT2017gfo-like merger: peak at 0.7 d, fades ~1 mag/d in g, ~0.5 in i",
    peak_abs_mag_r=-15.7,
    rise_days=0.7,
    rise_index=2.0,
    decline=TabulatedDecline(
        nodes=((0.0, 0.0), (1.0, 0.7), (2.0, 1.4), (4.0, 2.6), (7.0, 3.6), (10.0, 4.4)),
        tail_mag_per_day=0.25,
    ),
    colours=_frozen(
        {
            "u": ((0.0, 0.3), (1.0, 1.0), (2.0, 1.8), (4.0, 3.0)),
            "g": ((0.0, 0.0), (1.0, 0.35), (2.0, 0.65), (4.0, 1.0), (7.0, 1.3)),
            "i": ((0.0, 0.0), (1.0, -0.2), (2.0, -0.45), (4.0, -0.8), (7.0, -1.2)),
            "z": ((0.0, 0.0), (1.0, -0.3), (2.0, -0.65), (4.0, -1.1), (7.0, -1.6)),
            "y": ((0.0, 0.05), (1.0, -0.35), (2.0, -0.8), (4.0, -1.3), (7.0, -1.9)),
        }
    ),
)

# GRB optical afterglow: the forward shock peaks at ~10^3 s (onset, F ∝ t^2 before it;
# Sari & Piran 1999; Liang et al. 2013, ApJ 774, 13), then F ∝ t^-1.2 (3 mag per decade),
# steepening to t^-2 at a jet break near 1 d (Rhoads 1999; Zeh, Klose & Kann 2006).
# Spectrum F_ν ∝ ν^-0.7 (Kann et al. 2010, ApJ 720, 1513), so g - r ≈ +0.19. Typical
# afterglows are r ≈ 16-20 at 0.1 d (Kann et al. 2010), i.e. ~3 mag brighter at onset.
GRB_AFTERGLOW = LightCurve(
    kind="grb_afterglow",
    summary="GRB afterglow: onset at 0.01 d, F ∝ t^-1.2, jet break at 1 d",
    peak_abs_mag_r=None,  # beamed, at z ~ 2: the onset spans many magnitudes
    rise_days=0.01,
    rise_index=2.0,
    decline=PowerLawDecline(index=1.2, break_days=1.0, post_break_index=2.0),
    colours=_frozen(_power_law_colours(beta=0.7)),
)

LIGHT_CURVES: Mapping[str, LightCurve] = MappingProxyType(
    {curve.kind: curve for curve in (SN_IA, SN_CC, KILONOVA, GRB_AFTERGLOW)}
)


def light_curve(kind: str) -> LightCurve:
    """The model of ``kind``; a ValueError names the kinds available."""
    try:
        return LIGHT_CURVES[kind]
    except KeyError:
        raise ValueError(
            f"unknown transient kind {kind!r}; allowed kinds: {', '.join(KINDS)}"
        ) from None


def apparent_mag(
    kind: str, band: str, days_since_t0: ArrayLike, peak_mag_r: ArrayLike
) -> np.ndarray:
    """Apparent AB magnitude in ``band``; ``days_since_t0`` and ``peak_mag_r`` broadcast.

    ``+inf`` at or before t0. Always returns an array (0-d for scalar input).
    """
    curve = light_curve(kind)
    t = np.asarray(days_since_t0, dtype=float)
    colour = curve.colour(band, t)
    return np.asarray(peak_mag_r, dtype=float) + curve.delta_mag_r(t) + colour


# Log-spaced days since t0: fine enough to see every crossing of these smooth curves
# (brentq then finds each exactly), long enough for the slowest tail to fade by 10 mag.
_SEARCH_DAYS = np.geomspace(1e-5, 1e4, 3000)


def _bright_intervals(
    kind: str, peak_mag_r: float, limit_mag: float, band: str
) -> list[tuple[float, float]]:
    """Intervals of days since t0 in which the transient is brighter than ``limit_mag``."""

    def excess(days: float) -> float:
        return float(apparent_mag(kind, band, days, peak_mag_r)) - limit_mag

    t = _SEARCH_DAYS
    bright = apparent_mag(kind, band, t, peak_mag_r) < limit_mag
    starts: list[float] = [0.0] if bright[0] else []
    ends: list[float] = []
    for i in np.flatnonzero(bright[1:] != bright[:-1]):
        crossing = float(brentq(excess, t[i], t[i + 1], xtol=1e-9))
        (starts if bright[i + 1] else ends).append(crossing)
    if bright[-1]:
        ends.append(float(t[-1]))
    return list(zip(starts, ends, strict=True))


def days_brighter_than(kind: str, peak_mag_r: float, limit_mag: float, band: str = "r") -> float:
    """Total days the transient is brighter than ``limit_mag`` in ``band`` (0 if never).

    Capped at 10^4 days after t0.
    """
    return float(
        sum(end - start for start, end in _bright_intervals(kind, peak_mag_r, limit_mag, band))
    )


def fade_days(kind: str, peak_mag_r: float, limit_mag: float, band: str = "r") -> float:
    """Days after t0 at which the transient fades below ``limit_mag`` for good (0 if never
    brighter); the end of the time worth following it up."""
    intervals = _bright_intervals(kind, peak_mag_r, limit_mag, band)
    return float(intervals[-1][1]) if intervals else 0.0
