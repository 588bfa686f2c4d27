"""Sky and exposure physics: airmass, extinction, sky brightness and the exposure-time
calculator (DESIGN.md section 4).

Plain numpy functions of arrays, so the scheduler can evaluate many candidate
pointings at once; angles in degrees, magnitudes AB. Each module cites its sources.
"""

from twin.physics.etc import (
    delivered_seeing_arcsec,
    exptime_for_snr,
    m5,
    n_eff_pixels,
    peak_pixel_electrons,
    peak_pixel_fraction,
    saturation_mag,
    sky_electrons_per_pixel,
    snr,
    source_electrons,
    source_rate_e_per_s,
)
from twin.physics.extinction import (
    EXTINCTION_K_REF,
    REFERENCE_HEIGHT_M,
    airmass_from_alt,
    extinction_coefficient,
    extinction_mag,
)
from twin.physics.sky import (
    DARK_SKY_ZENITH_MAG_ARCSEC2,
    dark_sky_mag_arcsec2,
    ks_moon_brightness_nl,
    moon_phase_angle_deg,
    moon_sky_mag_arcsec2,
    nanolambert_to_v_mag,
    scattering_airmass,
    sky_mag_arcsec2,
    twilight_sky_mag_arcsec2,
)

__all__ = [
    "DARK_SKY_ZENITH_MAG_ARCSEC2",
    "EXTINCTION_K_REF",
    "REFERENCE_HEIGHT_M",
    "airmass_from_alt",
    "dark_sky_mag_arcsec2",
    "delivered_seeing_arcsec",
    "exptime_for_snr",
    "extinction_coefficient",
    "extinction_mag",
    "ks_moon_brightness_nl",
    "m5",
    "moon_phase_angle_deg",
    "moon_sky_mag_arcsec2",
    "n_eff_pixels",
    "nanolambert_to_v_mag",
    "peak_pixel_electrons",
    "peak_pixel_fraction",
    "saturation_mag",
    "scattering_airmass",
    "sky_electrons_per_pixel",
    "sky_mag_arcsec2",
    "snr",
    "source_electrons",
    "source_rate_e_per_s",
    "twilight_sky_mag_arcsec2",
]
