"""The scenario's ``imaging.population``: how many transients nobody announced, and where.

Rates are per deg² of sky per year of explosions whose apparent r peak lies in the kind's
``*_peak_mag_r`` range; peaks are drawn from the Euclidean counts ``N(<m) ∝ 10^(0.6 m)``
inside it (a population uniform in space, as :mod:`twin.alerts.stream` draws alerts). The
defaults are the real sky, to about a factor of two:

- ``sn_ia_per_deg2_yr = 7`` with peak r < 22. SDSS-II's Supernova Survey found ~1,500 SNe
  Ia (spectroscopic and photometric, r ≲ 22.5 at peak) in 300 deg² over three 3-month
  seasons (Frieman et al. 2008, AJ 135, 338; Sako et al. 2018, PASP 130, 064002): ≈ 7
  deg⁻² yr⁻¹. Cross-check: the ZTF Bright Transient Survey classifies ~0.05 SNe Ia deg⁻²
  yr⁻¹ brighter than 18.5 (Perley et al. 2020, ApJ 904, 35); Euclidean scaling to 22
  (× 10^(0.6 × 3.5) = 126) gives ≈ 6.
- ``sn_cc_per_deg2_yr = 2.2`` with peak r < 22. Core collapse is ~3× the Ia rate per
  volume (Li et al. 2011, MNRAS 412, 1473; Frohmaier et al. 2021, MNRAS 500, 5142) but
  ~3 mag fainter, so a flux-limited sample holds fewer: 23 % CC against 72 % Ia in the
  ZTF BTS (Perley et al. 2020), ≈ 0.3 × the Ia rate.
- ``fast_per_deg2_yr = 0.003`` with peak r < 22: kilonovae (300 Gpc⁻³ yr⁻¹, LIGO O3,
  Abbott et al. 2023, PRX 13, 011048; at M = -15.7 visible to ~350 Mpc: ~0.0013 deg⁻²
  yr⁻¹) and orphan or on-axis GRB afterglows (a few per year in ZTF's ~10⁴ deg² of
  fast-cadence sky, Ho et al. 2022, ApJ 938, 85), ``kilonova_fraction`` of them
  kilonovae, the rest afterglows (light curves of :mod:`twin.alerts.lightcurves`).
- ``variable_fraction = 0.01`` of the static sky's stars vary, sinusoidally, with peak-to-
  peak amplitudes log-uniform in ``variable_amplitude_mag`` and periods log-uniform in
  ``variable_period_days``: Sesar et al. (2007, AJ 134, 2236) find ≥ 2 % of point sources
  variable at ≥ 0.05 mag rms in SDSS Stripe 82, about half of that at ≥ 0.1 mag.
- ``agn_fraction = 0.01`` of the catalogue's galaxies brighter than ``agn_host_max_i_mag``
  carry a flickering nucleus (~100-200 quasars and Seyferts deg⁻² to i ≈ 22 among ~10⁴
  galaxies, Richards et al. 2006, AJ 131, 2766), a damped random walk with structure
  function ``agn_sf_inf_mag`` and timescale ``agn_tau_days`` (MacLeod et al. 2010, ApJ
  721, 1014: SF∞ ≈ 0.2 mag, τ ≈ 200 d in the observer frame).
- ``asteroid_per_deg2 = 30`` on the ecliptic brighter than the upper end of
  ``asteroid_mag_r``, falling off as a Gaussian in ecliptic latitude of width
  ``asteroid_max_ecliptic_lat_deg / 2`` and none beyond it. SDSS saw 10,000 main-belt
  asteroids to r = 21.5 in 500 deg² within ~25° of the ecliptic (Ivezić et al. 2001, AJ
  122, 2749): ~20 deg⁻² on average, more on the ecliptic. Counts rise as 10^(0.3 r)
  (their faint-end slope). Rates of motion ``asteroid_rate_deg_per_day`` (main belt near
  opposition: ~0.25 °/day, retrograde).

Every rate may be set higher than nature, for stress tests: say so in the scenario.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import FieldProblem

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

Magnitude = Annotated[float, Field(ge=0.0, le=30.0)]
RatePerDeg2Yr = Annotated[float, Field(ge=0.0, le=1e5)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

_RANGES = (
    "sn_ia_peak_mag_r", "sn_cc_peak_mag_r", "fast_peak_mag_r", "variable_amplitude_mag",
    "variable_period_days", "asteroid_mag_r", "asteroid_rate_deg_per_day", "agn_offset_mag",
)  # fmt: skip


class PopulationSpec(BaseModel):
    """Transients nobody announced, persistent variables and asteroids (module docstring).

    Frozen with tuple fields only, so that a :class:`~twin.imaging.spec.FrameSpec` carrying
    it stays hashable.
    """

    model_config = _STRICT

    sn_ia_per_deg2_yr: RatePerDeg2Yr = Field(
        default=7.0, description="SNe Ia per deg² per year with peak r in sn_ia_peak_mag_r."
    )
    sn_cc_per_deg2_yr: RatePerDeg2Yr = Field(
        default=2.2, description="Core-collapse SNe per deg² per year, peak in sn_cc_peak_mag_r."
    )
    fast_per_deg2_yr: RatePerDeg2Yr = Field(
        default=0.003, description="Kilonovae and GRB afterglows per deg² per year."
    )
    kilonova_fraction: Fraction = Field(default=0.3, description="Of fast transients.")
    sn_ia_peak_mag_r: tuple[Magnitude, Magnitude] = (16.0, 22.0)
    sn_cc_peak_mag_r: tuple[Magnitude, Magnitude] = (16.0, 22.0)
    fast_peak_mag_r: tuple[Magnitude, Magnitude] = (15.0, 22.0)
    variable_fraction: Fraction = Field(default=0.01, description="Of the static stars.")
    variable_amplitude_mag: tuple[
        Annotated[float, Field(gt=0.0, le=5.0)], Annotated[float, Field(gt=0.0, le=5.0)]
    ] = Field(default=(0.1, 1.0), description="Peak-to-peak, log-uniform.")
    variable_period_days: tuple[
        Annotated[float, Field(gt=0.0, le=1e4)], Annotated[float, Field(gt=0.0, le=1e4)]
    ] = Field(default=(0.1, 100.0), description="Log-uniform.")
    agn_fraction: Fraction = Field(default=0.01, description="Of galaxies to agn_host_max_i_mag.")
    agn_host_max_i_mag: Magnitude = 23.0
    # >= 0: a nucleus never outshines its host, so a host cut by a frame's depth takes its
    # nucleus with it (the frame finds nuclei among the galaxies it draws).
    agn_offset_mag: tuple[
        Annotated[float, Field(ge=0.0, le=10.0)], Annotated[float, Field(ge=0.0, le=10.0)]
    ] = Field(default=(0.5, 2.5), description="Nucleus mean i minus host i, uniform.")
    agn_sf_inf_mag: float = Field(default=0.2, ge=0.0, le=2.0)
    agn_tau_days: float = Field(default=200.0, gt=0.0, le=1e4)
    asteroid_per_deg2: float = Field(
        default=30.0, ge=0.0, le=1e5, description="On the ecliptic, r < asteroid_mag_r[1]."
    )
    asteroid_mag_r: tuple[Magnitude, Magnitude] = (16.0, 21.5)
    asteroid_max_ecliptic_lat_deg: float = Field(default=15.0, gt=0.0, le=90.0)
    asteroid_rate_deg_per_day: tuple[
        Annotated[float, Field(ge=0.0, le=20.0)], Annotated[float, Field(ge=0.0, le=20.0)]
    ] = (0.1, 0.5)

    @model_validator(mode="after")
    def _ranges_increase(self) -> PopulationSpec:
        for name in _RANGES:
            low, high = getattr(self, name)
            if not low < high:
                raise FieldProblem(
                    name, f"{name} must be [low, high] with low < high (got {[low, high]})"
                )
        return self
