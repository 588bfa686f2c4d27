"""Variable stars and AGN: sources of the static sky whose brightness changes.

Which ones. A star of the static sky varies if a hash of ``(sky_seed, source_id)`` falls
below ``variable_fraction``; a galaxy brighter than ``agn_host_max_i_mag`` carries a
nucleus if another hash falls below ``agn_fraction`` (:mod:`twin.alerts.population.keys`).
Whichever frame drew the source, it gets the same answer and the same light curve.

Variable stars: ``m(t) = m_mean + (A / 2) sin(2π t / P + φ)`` in every band (one
amplitude for all bands: a simplification; pulsators vary more in the blue). The star's
catalogue magnitude is its mean; a reference survey sees it there.

AGN: a point source at the galaxy's centre, ``agn_offset_mag`` fainter than the host in i,
with a quasar's power-law colours ``F_ν ∝ ν^-0.44`` (Vanden Berk et al. 2001, AJ 122,
549), flickering as a damped random walk (Kelly, Bechtold & Siemiginowska 2009, ApJ 698,
895; MacLeod et al. 2010). A DRW is a process, not a function of time; to give every
frame of any run the same value at the same mjd without storing a history, the flicker is
a sum of :data:`DRW_TERMS` cosines with random phases and amplitudes following the DRW
power spectrum ``S(f) ∝ 1 / (1 + (2π f τ)²)`` between ``1 / (30 τ)`` and 1 / (0.1 d),
scaled to the DRW variance ``SF∞² / 2`` — a Gaussian stationary series with the DRW's
spectrum, zero mean (the reference shows the mean).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin.alerts.population.keys import hash_uniforms, log_uniform, member_source_id
from twin.alerts.population.spec import PopulationSpec
from twin.imaging.catalog import cell_of
from twin.physics.extinction import BAND_EFFECTIVE_WAVELENGTH_NM

QSO_ALPHA_NU = 0.44
DRW_TERMS = 24
DRW_SHORTEST_DAYS = 0.1


def variable_stars(source_id, population: PopulationSpec, sky_seed: int = 0) -> pd.DataFrame:
    """The variables among stars ``source_id``: ``source_id``, ``amplitude_mag`` (peak to
    peak), ``period_days``, ``phase_rad`` (rows in the input's order, variables only)."""
    ids = np.asarray(source_id, dtype=np.int64)
    u = hash_uniforms(ids, sky_seed, "variable", 4)
    var = u[:, 0] < population.variable_fraction
    u = u[var]
    return pd.DataFrame({
        "source_id": ids[var],
        "amplitude_mag": log_uniform(u[:, 1], population.variable_amplitude_mag),
        "period_days": log_uniform(u[:, 2], population.variable_period_days),
        "phase_rad": 2 * math.pi * u[:, 3],
    })  # fmt: skip


def variable_delta_mag(variables: pd.DataFrame, mjd: float) -> np.ndarray:
    """Magnitude minus the mean at ``mjd`` for rows of :func:`variable_stars`."""
    angle = 2 * math.pi * mjd / variables["period_days"].to_numpy() + variables["phase_rad"]
    return 0.5 * variables["amplitude_mag"].to_numpy() * np.sin(angle.to_numpy())


def qso_colour(band: str) -> float:
    """``m_band - m_i`` of ``F_ν ∝ ν^-0.44``."""
    lam = BAND_EFFECTIVE_WAVELENGTH_NM
    return 2.5 * QSO_ALPHA_NU * math.log10(lam["i"] / lam[band])


def agn_nuclei(galaxies: pd.DataFrame, population: PopulationSpec,
               sky_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """The nuclei of ``galaxies`` (``source_id``, ``ra_deg``, ``dec_deg``, ``mag_i`` or
    ``i_mag``): ``pop_id``, ``source_id``, ``host_id``, position, ``mean_mag_i``."""
    if galaxies.empty:
        return pd.DataFrame(columns=["pop_id", "source_id", "host_id", "ra_deg", "dec_deg",
                                     "mean_mag_i"])  # fmt: skip
    ids = galaxies["source_id"].to_numpy(np.int64)
    host_i = galaxies["mag_i" if "mag_i" in galaxies else "i_mag"].to_numpy(float)
    u = hash_uniforms(ids, sky_seed, "agn", 2)
    agn = (u[:, 0] < population.agn_fraction) & (host_i <= population.agn_host_max_i_mag)
    lo, hi = population.agn_offset_mag
    i_dec, i_ra = cell_of(ids[agn])
    return pd.DataFrame({
        "pop_id": [f"agn/{i}" for i in ids[agn]],
        "source_id": member_source_id("agn", (i_dec << 16) | i_ra, ids[agn]),
        "host_id": ids[agn],
        "ra_deg": galaxies["ra_deg"].to_numpy(float)[agn],
        "dec_deg": galaxies["dec_deg"].to_numpy(float)[agn],
        "mean_mag_i": host_i[agn] + lo + (hi - lo) * u[agn, 1],
    })  # fmt: skip


def drw_delta_mag(host_id, mjd: float, population: PopulationSpec,
                  sky_seed: int = 0) -> np.ndarray:  # fmt: skip
    """The flicker (mag, zero mean) of the nuclei of galaxies ``host_id`` at ``mjd``."""
    ids = np.asarray(host_id, dtype=np.int64)
    tau = population.agn_tau_days
    f = np.geomspace(1.0 / (30.0 * tau), 1.0 / DRW_SHORTEST_DAYS, DRW_TERMS)
    df = np.gradient(f)
    power = df / (1.0 + (2 * math.pi * f * tau) ** 2)
    amp = np.sqrt(2.0 * power / power.sum()) * population.agn_sf_inf_mag / math.sqrt(2.0)
    phase = 2 * math.pi * hash_uniforms(ids, sky_seed, "agn", 2 + DRW_TERMS)[:, 2:]
    return (amp * np.cos(2 * math.pi * f * mjd + phase)).sum(axis=1)
