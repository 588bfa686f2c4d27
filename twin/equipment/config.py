"""Configuration of one telescope's equipment drift and faults (pydantic, validated up front).

The defaults describe a generic robotic 1 m class Ritchey-Chrétien (f/2 primary, f/8 focus,
steel truss, CCD camera). They give each process a realistic size, not any particular
telescope's history; tune them to an observatory's own logs. Sources and reasoning:

- Focus: steel (CTE 11.7e-6 /°C) between M1 and M2 about 1.7 m apart changes the M2
  despace by ~20 µm/°C. The focus offset is expressed, as focus models usually are, in µm
  of M2 piston. M2 piston ``ds`` moves the final focus by ``(1 + m²) ds`` (m = secondary
  magnification, 4 here; Schroeder, *Astronomical Optics*, Cassegrain focus shift), and a
  focal shift ``dz`` in an f/N beam blurs a point into a disc of angular diameter
  ``dz / (N² D)`` rad. With N = 8, D = 1 m: 17 µm / 64 m = 2.66e-7 rad = 0.055 arcsec per
  µm of M2 piston. The disc is flat-topped, so its FWHM is about its diameter.
- Mirror: ~1 %/month reflectivity loss of exposed aluminium to dust (the figure usually
  quoted after Magrath 1997); CO2-snow cleaning recovers about half of it (Zito 1990,
  SPIE 1236), the rest (films, corrosion) stays until the mirror is recoated, typically
  every ~2 years.
- Pointing: a TPOINT-style model of a 1 m mount leaves a few arcsec rms; flexure and
  seasonal thermal changes make it wander until the model is refitted.
- Hot pixels / bad columns: order-of-magnitude figures for a ground-based 4k x 4k CCD
  (displacement damage from cosmic-ray secondaries is far slower on the ground than in
  orbit). Tune them to the camera's own dark frames.
- Failures: MTBF/MTTR chosen so the technical downtime is a few percent, as robotic 1 m
  networks report. Repair times are log-normal with *median* ``mttr_h``.
  ``failures_enabled: false`` switches them off entirely (a teaching run where a lost
  night would only distract); the other processes draw from their own streams, so the
  rest of the telescope's history is unchanged by the switch.
- Calibration: a week-old zero point off by ~0.02 mag is the level at which nightly
  standard-star solutions scatter, hence recalibration weekly by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.errors import from_pydantic


class ReliabilityConfig(BaseModel):
    """Failure and repair statistics of one component (mount, dome or camera)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mtbf_days: float = Field(gt=0.0, description="Mean up time between failures, days.")
    mttr_h: float = Field(gt=0.0, description="Median repair time (log-normal), hours.")
    repair_sigma_ln: float = Field(
        default=0.8, ge=0.0, le=3.0, description="Spread of ln(repair time)."
    )


class EquipmentConfig(BaseModel):
    """Drift and fault parameters of one telescope; every field carries its unit."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # Focus
    focus_temp_coeff_um_per_c: float = Field(default=20.0, ge=-500.0, le=500.0)
    focus_random_walk_um_per_sqrt_h: float = Field(default=2.0, ge=0.0, le=1000.0)
    refocus_interval_h: float = Field(default=2.0, gt=0.0, description="Periodic refocus.")
    refocus_threshold_c: float = Field(
        default=0.5, gt=0.0, description="Refocus when |T - T_focus| exceeds this."
    )
    refocus_residual_um: float = Field(default=2.0, ge=0.0, description="Focus error after.")
    focus_check_interval_min: float = Field(
        default=5.0, gt=0.0, le=60.0, description="How often the temperature is checked."
    )
    defocus_blur_arcsec_per_um: float = Field(default=0.055, ge=0.0, le=10.0)
    # Mirror throughput
    mirror_loss_per_month: float = Field(default=0.01, ge=0.0, lt=1.0)
    cleaning_interval_days: float = Field(default=30.0, gt=0.0)
    cleaning_recovery_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    recoat_interval_days: float = Field(default=730.0, gt=0.0)
    # Pointing
    pointing_drift_arcsec_per_sqrt_day: float = Field(default=0.5, ge=0.0)
    pointing_model_update_days: float = Field(default=60.0, gt=0.0)
    pointing_model_residual_arcsec: float = Field(default=2.0, ge=0.0, description="Per axis.")
    pointing_offset_arcsec: float = Field(
        default=1.0, ge=0.0, description="Rms of the constant per-telescope offset, per axis."
    )
    # Detector defects
    hot_pixel_rate_per_day: float = Field(default=10.0, ge=0.0, description="Whole detector.")
    bad_column_rate_per_year: float = Field(default=0.5, ge=0.0)
    initial_hot_pixels: int = Field(default=0, ge=0)
    initial_bad_columns: int = Field(default=0, ge=0)
    # Tracking
    tracking_fault_rate_per_night: float = Field(default=0.2, ge=0.0)
    night_length_h: float = Field(
        default=10.0, gt=0.0, le=24.0, description="Tracking hours a 'night' stands for."
    )
    tracking_fault_mean_duration_min: float = Field(default=10.0, gt=0.0)
    tracking_fault_elongation_median_arcsec: float = Field(default=2.0, gt=0.0)
    tracking_fault_elongation_sigma_ln: float = Field(default=0.5, ge=0.0, le=3.0)
    tracking_jitter_arcsec: float = Field(default=0.2, ge=0.0)
    # Failures
    failures_enabled: bool = Field(
        default=True,
        description="False: mount, dome and camera never fail (teaching, what-if runs).",
    )
    mount: ReliabilityConfig = ReliabilityConfig(mtbf_days=120.0, mttr_h=24.0)
    dome: ReliabilityConfig = ReliabilityConfig(mtbf_days=90.0, mttr_h=12.0)
    camera: ReliabilityConfig = ReliabilityConfig(mtbf_days=180.0, mttr_h=48.0)
    # Calibration
    calibration_interval_days: float = Field(default=7.0, gt=0.0)
    zeropoint_drift_mag_per_day: float = Field(default=0.003, ge=0.0)
    zeropoint_calibration_rms_mag: float = Field(default=0.005, ge=0.0)

    @model_validator(mode="after")
    def _refocus_not_faster_than_checks(self) -> EquipmentConfig:
        if self.refocus_interval_h * 60.0 < self.focus_check_interval_min:
            raise ValueError(
                "refocus_interval_h must be at least focus_check_interval_min "
                f"({self.focus_check_interval_min} min); raise it or check more often"
            )
        return self


def load_equipment_config(data: Mapping[str, Any], source: str) -> EquipmentConfig:
    """Validate ``data`` (e.g. a scenario's ``equipment:`` block); ConfigError names the field."""
    try:
        return EquipmentConfig.model_validate(dict(data))
    except ValidationError as error:
        raise from_pydantic(source, error) from error
