"""Exposure quality: how much an exposure is worth compared with a reference one.

The measure is the effective-time ratio of survey schedulers (Rubin's ``t_eff``): an
exposure with 5-sigma depth ``m5`` is worth ``10**(0.8 (m5 - m5_ref))`` reference
exposures, because SNR² of a background-limited point source grows linearly with
exposure time and 1 mag of depth is a factor 10**0.4 in SNR. The reference is the same
telescope, band and exposure time at zenith, under a dark sky (moon down, sun at -30),
in the site's median seeing with a clear sky: a quality of 1 is a typical good
exposure. Quality is clipped to [0, 1] so a lucky night does not outscore the programme.
"""

from __future__ import annotations

import numpy as np

from twin.physics.etc import delivered_seeing_arcsec, m5
from twin.physics.sky import sky_mag_arcsec2
from twin.world.sites import Site
from twin.world.telescope import Telescope

TEFF_DEX_PER_MAG = 0.8


class QualityModel:
    """Reference depths of one telescope at one site, cached per (band, exposure time)."""

    def __init__(self, site: Site, telescope: Telescope) -> None:
        self.site = site
        self.telescope = telescope
        self._m5_ref: dict[tuple[str, float], float] = {}

    def m5_ref(self, band: str, exptime_s: float) -> float:
        key = (band, float(exptime_s))
        if key not in self._m5_ref:
            centre = self.telescope.filter(band).center_nm
            seeing = delivered_seeing_arcsec(self.site.climate.seeing_median_arcsec, 1.0, centre)
            sky = sky_mag_arcsec2(band, 90.0, -30.0, 90.0, 0.0, -30.0,
                                  self.site.sky_brightening_mag, self.site.height_m)  # fmt: skip
            self._m5_ref[key] = float(
                m5(self.telescope, band, exptime_s=exptime_s, airmass=1.0,
                   seeing_fwhm_arcsec=seeing, sky_mag_arcsec2=sky, height_m=self.site.height_m)
            )  # fmt: skip
        return self._m5_ref[key]

    def quality(self, band: str, exptime_s: float, m5_mag: np.ndarray) -> np.ndarray:
        """Effective-time ratio 0..1 of exposures reaching ``m5_mag``."""
        ratio = 10.0 ** (TEFF_DEX_PER_MAG * (np.asarray(m5_mag) - self.m5_ref(band, exptime_s)))
        return np.clip(np.nan_to_num(ratio, nan=0.0, neginf=0.0), 0.0, 1.0)

    def depth(
        self, band: str, exptime_s: float, *, airmass: np.ndarray, seeing_fwhm_arcsec: np.ndarray,
        sky_mag_arcsec2: np.ndarray, transparency: np.ndarray, throughput: float | np.ndarray = 1.0,
    ) -> np.ndarray:  # fmt: skip
        """m5 of exposures; ``throughput`` (mirror ageing, 0..1) scales the collected light."""
        return m5(
            self.telescope, band, exptime_s=exptime_s, airmass=airmass,
            seeing_fwhm_arcsec=seeing_fwhm_arcsec, sky_mag_arcsec2=sky_mag_arcsec2,
            transparency=np.asarray(transparency) * np.asarray(throughput),
            height_m=self.site.height_m,
        )  # fmt: skip
