"""Telescopes and their instruments: optics, detector, filters, mount, dome.

The numbers an exposure depends on live here, each with its unit in its name. Zero
points are derived from the collecting area and the system throughput rather than typed
in, so changing the aperture or a QE curve changes the photometry consistently; a
configured ``zeropoint_override_mag`` wins where a measured value is known.

Every number is finite and bounded by what real instruments have (with a wide margin), so
an override such as ``readout_s: 1e308`` or ``filters: []`` is refused when the scenario
is loaded instead of breaking the run. Telescope and filter names become file names
(frames, calibration files), so they match :data:`twin.errors.SAFE_NAME`.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import ConfigError, FieldProblem, SafeName

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

# Photons s^-1 cm^-2 per unit ln(lambda) from an AB=0 source: 3631 Jy / h.
_AB0_PHOTONS_PER_S_CM2_PER_DLNL = 3631e-23 / 6.62607015e-27


class Filter(BaseModel):
    """A passband: centre, width, and the throughput of filter + atmosphere-free optics."""

    model_config = _STRICT

    name: SafeName
    center_nm: float = Field(gt=250.0, lt=1200.0)
    width_nm: float = Field(gt=0.0, lt=500.0)
    filter_throughput: float = Field(default=0.9, ge=0.01, le=1.0)
    zeropoint_override_mag: float | None = Field(
        default=None,
        ge=0.0,
        le=40.0,
        description="Measured AB mag giving 1 e-/s above the atmosphere.",
    )


# SDSS/Rubin-like ugrizy: centres and widths from the LSST throughputs (v1.9, rounded).
_UGRIZY = [
    Filter(name="u", center_nm=367.0, width_nm=60.0, filter_throughput=0.80),
    Filter(name="g", center_nm=482.0, width_nm=140.0, filter_throughput=0.92),
    Filter(name="r", center_nm=622.0, width_nm=140.0, filter_throughput=0.93),
    Filter(name="i", center_nm=755.0, width_nm=150.0, filter_throughput=0.93),
    Filter(name="z", center_nm=869.0, width_nm=110.0, filter_throughput=0.92),
    Filter(name="y", center_nm=971.0, width_nm=100.0, filter_throughput=0.90),
]


class Detector(BaseModel):
    """A CCD/CMOS: size, quantum efficiency per band and noise properties."""

    model_config = _STRICT

    nx_pix: int = Field(gt=0, le=20000)
    ny_pix: int = Field(gt=0, le=20000)
    pixel_size_um: float = Field(ge=1.0, le=50.0)
    qe_by_band: dict[str, float] = Field(
        default_factory=lambda: {"u": 0.55, "g": 0.85, "r": 0.90, "i": 0.85, "z": 0.65, "y": 0.3},
        max_length=64,
    )
    gain_e_per_adu: float = Field(default=1.5, gt=0.0, le=1000.0)
    read_noise_e: float = Field(default=8.0, ge=0.0, le=1000.0)
    dark_current_e_per_s: float = Field(default=0.002, ge=0.0, le=1e4)
    full_well_e: float = Field(default=150000.0, gt=0.0, le=1e8)
    bias_adu: float = Field(default=1000.0, ge=0.0, le=65535.0, description="16-bit ADC.")

    @model_validator(mode="after")
    def _qe_in_range(self) -> Detector:
        for band, qe in self.qe_by_band.items():
            if not 0.01 <= qe <= 1.0:
                raise FieldProblem(
                    f"qe_by_band.{band}", f"qe_by_band[{band}] = {qe}; allowed: 0.01 <= QE <= 1"
                )
        return self


class Mount(BaseModel):
    """Per-axis kinematics: trapezoidal velocity profile, then settling."""

    model_config = _STRICT

    # 0.01 deg/s: a half-turn slew in 5 h, slower than any mount; 100 deg/s: faster than any.
    max_speed_alt_deg_s: float = Field(default=3.0, ge=0.01, le=100.0)
    max_speed_az_deg_s: float = Field(default=3.0, ge=0.01, le=100.0)
    accel_deg_s2: float = Field(default=1.0, ge=0.001, le=100.0)
    settle_s: float = Field(default=5.0, ge=0.0, le=600.0)


class Dome(BaseModel):
    """The enclosure: rotation speed (the slit follows the azimuth) and shutter time."""

    model_config = _STRICT

    rotation_speed_deg_s: float = Field(default=4.0, ge=0.01, le=100.0)
    shutter_open_s: float = Field(default=90.0, ge=0.0, le=3600.0)


class Telescope(BaseModel):
    """A telescope with one imaging camera."""

    model_config = _STRICT

    name: SafeName
    aperture_m: float = Field(ge=0.05, le=40.0, description="A 5-cm lens to an ELT.")
    obscuration: float = Field(default=0.3, ge=0.0, le=0.95, description="Linear fraction.")
    focal_ratio: float = Field(default=8.0, gt=0.5, le=50.0)
    mirror_reflectivity: float = Field(default=0.9, ge=0.01, le=1.0, description="Per surface.")
    n_mirrors: int = Field(default=2, ge=1, le=5)
    pixel_scale_arcsec: float = Field(ge=0.01, le=10.0)
    detector: Detector
    filters: list[Filter] = Field(
        default_factory=lambda: list(_UGRIZY), min_length=1, max_length=32
    )
    mount: Mount = Field(default_factory=Mount)
    dome: Dome = Field(default_factory=Dome)
    readout_s: float = Field(default=20.0, ge=0.0, le=3600.0)
    filter_change_s: float = Field(default=10.0, ge=0.0, le=3600.0)

    @model_validator(mode="after")
    def _bands_have_qe(self) -> Telescope:
        names = [f.name for f in self.filters]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise FieldProblem(f"filters.{i}.name", f"filter {name!r} is given twice")
        missing = [f.name for f in self.filters if f.name not in self.detector.qe_by_band]
        if missing:
            raise FieldProblem("detector.qe_by_band", f"lacks the bands {missing} of the filters")
        return self

    @property
    def collecting_area_m2(self) -> float:
        return math.pi / 4.0 * self.aperture_m**2 * (1.0 - self.obscuration**2)

    @property
    def fov_deg(self) -> tuple[float, float]:
        return (
            self.detector.nx_pix * self.pixel_scale_arcsec / 3600.0,
            self.detector.ny_pix * self.pixel_scale_arcsec / 3600.0,
        )

    @property
    def bands(self) -> list[str]:
        return [f.name for f in self.filters]

    def filter(self, band: str) -> Filter:
        for f in self.filters:
            if f.name == band:
                return f
        raise ConfigError(self.name, "band", f"unknown band {band!r}; allowed: {self.bands}")

    def system_throughput(self, band: str) -> float:
        """Mirrors x filter x QE: the fraction of photons at the pupil that become electrons."""
        f = self.filter(band)
        mirrors = self.mirror_reflectivity**self.n_mirrors
        return mirrors * f.filter_throughput * self.detector.qe_by_band[band]

    def zeropoint_mag(self, band: str) -> float:
        """AB magnitude of a source giving 1 e-/s above the atmosphere (no extinction).

        N_e/s = 3631 Jy / h * A * T * (width / centre) for a flat-spectrum (AB) source.
        """
        f = self.filter(band)
        if f.zeropoint_override_mag is not None:
            return f.zeropoint_override_mag
        area_cm2 = self.collecting_area_m2 * 1e4
        rate = _AB0_PHOTONS_PER_S_CM2_PER_DLNL * area_cm2 * self.system_throughput(band)
        return 2.5 * math.log10(rate * f.width_nm / f.center_nm)


def _preset(name: str, aperture_m: float, pixel_scale: float, npix: int, **kw) -> Telescope:
    detector = Detector(nx_pix=npix, ny_pix=npix, pixel_size_um=15.0)
    return Telescope(
        name=name, aperture_m=aperture_m, pixel_scale_arcsec=pixel_scale, detector=detector, **kw
    )


# Presets modelled on common classes of network telescope (rounded public figures).
TELESCOPE_PRESETS: dict[str, Telescope] = {
    # LCO 1-m with a Sinistro 4k camera: 0.389"/pix, 26.5' field.
    "1m": _preset("1m", 1.0, 0.389, 4096, obscuration=0.4, readout_s=28.0),
    # A 2-m class robotic telescope (e.g. Liverpool/FTN): 0.27"/pix, 2k camera.
    "2m": _preset("2m", 2.0, 0.27, 2048, obscuration=0.3, readout_s=15.0,
                  mount=Mount(max_speed_alt_deg_s=2.0, max_speed_az_deg_s=2.0, settle_s=8.0)),
    # A 4-m survey telescope (Blanco/DECam-like single chip scale): 0.26"/pix.
    "4m": _preset("4m", 4.0, 0.26, 4096, obscuration=0.35, readout_s=20.0,
                  mount=Mount(max_speed_alt_deg_s=1.5, max_speed_az_deg_s=1.5,
                              accel_deg_s2=0.5, settle_s=10.0),
                  dome=Dome(rotation_speed_deg_s=2.0)),
}  # fmt: skip


def get_telescope(preset: str, source: str = "telescope preset") -> Telescope:
    try:
        return TELESCOPE_PRESETS[preset]
    except KeyError:
        allowed = ", ".join(sorted(TELESCOPE_PRESETS))
        raise ConfigError(
            source, "telescope", f"unknown preset {preset!r}; allowed: {allowed}"
        ) from None
