"""How unit-normal noise becomes cloud, seeing, humidity, wind and temperature.

Pure functions, shared by the stochastic model (which feeds them AR(1) noise) and by the
replay and ideal sources (which only need :func:`transparency_from_cloud`).

Cloud. A latent N(0, 1) variable z is thresholded at t = Phi^-1(clear fraction of the
month): cloud_cover = clip(0.25 + 0.5 (z - t), 0, 1). So cloud_cover < 0.25 exactly when
z < t, which happens with the configured clear fraction, while the cover itself still
varies smoothly (thin cloud, broken, overcast). This is the latent-Gaussian ("clipped
Gaussian") construction used for precipitation occurrence in weather generators
(Wilks 1998, J. Hydrology 210, 178).

Transparency. 1 - 0.95 cloud_cover^1.5: thin, patchy cloud (cover 0.25) still passes
88 % of the light, overcast passes 5 %. An illustrative curve, not a fit to data: replay a
log with a measured ``transparency`` column where that matters.

Seeing. Log-normal, ln(FWHM) = ln(median) + sigma_ln z, the usual description of DIMM
seeing statistics (e.g. Tokovinin et al. 2003, PASP 115, 691; Munoz-Tunon et al. 1997,
A&AS 125, 183); its median is the configured one exactly.

Temperature. Mean + seasonal cosine (warmest ~20 July in the north, opposite in the
south) + diurnal cosine peaking at 15 h local solar time + synoptic AR(1) noise. Clouds
damp the diurnal range (Dai, Trenberth & Karl 1999, J. Climate 12, 2451): here by up to
half under overcast.

Humidity. Relative humidity in logit space, so it stays within 0..100 %: the median plus
cloudiness (wetter under cloud and in cloudy months, e.g. the monsoon), minus the diurnal
temperature anomaly (relative humidity falls as the air warms at near-constant moisture),
plus AR(1) noise. The terms are symmetric about zero, so the median humidity is close to
the configured one.

Wind. Log-normal around the median (non-negative, right-skewed like observed site wind
speeds), a little stronger when cloudier (weather systems bring both); median exact.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit
from scipy.stats import norm

from twin.weather.state import CLEAR_CLOUD_COVER_MAX
from twin.world.sites import Climate

CLOUD_COVER_PER_LATENT = 0.5
"""Cloud cover gained per unit of the latent variable above the clear threshold."""

SUMMER_PEAK_YEAR_PHASE = 0.55
"""Warmest time of year in the north (~20 July): seasons lag the solstice by ~1 month."""

DIURNAL_PEAK_HOUR = 15.0
"""Local solar hour of the daily temperature maximum (mid-afternoon)."""

CLOUD_DIURNAL_DAMPING = 0.5
TEMPERATURE_NOISE_C = 2.0
HUMIDITY_CLOUD_LOGIT = 0.6
HUMIDITY_PER_C_LOGIT = 0.12
HUMIDITY_NOISE_LOGIT = 0.5
WIND_SIGMA_LN = 0.45
WIND_CLOUD_CORRELATION = 0.3


def clear_thresholds(climate: Climate) -> np.ndarray:
    """Latent threshold per calendar month (index 0 = January)."""
    return norm.ppf(np.asarray(climate.clear_fraction_by_month, dtype=float))


def cloud_cover_from_latent(latent: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    return np.clip(CLEAR_CLOUD_COVER_MAX + CLOUD_COVER_PER_LATENT * (latent - threshold), 0, 1)


def transparency_from_cloud(cloud_cover: np.ndarray) -> np.ndarray:
    return 1.0 - 0.95 * np.clip(cloud_cover, 0.0, 1.0) ** 1.5


def seeing_fwhm_arcsec(climate: Climate, noise: np.ndarray) -> np.ndarray:
    return climate.seeing_median_arcsec * np.exp(climate.seeing_sigma_ln * noise)


def seasonal_anomaly_c(climate: Climate, lat_deg: float, year_phase: np.ndarray) -> np.ndarray:
    hemisphere = np.sign(lat_deg)
    cycle = np.cos(2.0 * np.pi * (year_phase - SUMMER_PEAK_YEAR_PHASE))
    return climate.temperature_seasonal_amplitude_c * hemisphere * cycle


def diurnal_anomaly_c(
    climate: Climate, solar_hour: np.ndarray, cloud_cover: np.ndarray
) -> np.ndarray:
    cycle = np.cos(2.0 * np.pi * (solar_hour - DIURNAL_PEAK_HOUR) / 24.0)
    damping = 1.0 - CLOUD_DIURNAL_DAMPING * cloud_cover
    return climate.temperature_diurnal_amplitude_c * damping * cycle


def temperature_c(
    climate: Climate, seasonal_c: np.ndarray, diurnal_c: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    return climate.temperature_mean_c + seasonal_c + diurnal_c + TEMPERATURE_NOISE_C * noise


def humidity_pct(
    climate: Climate, cloudiness: np.ndarray, diurnal_c: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """``cloudiness``: latent cloud minus its monthly threshold offset (zero-median)."""
    median = np.clip(climate.humidity_median_pct / 100.0, 1e-3, 1 - 1e-3)
    x = (
        logit(median)
        + HUMIDITY_CLOUD_LOGIT * cloudiness
        - HUMIDITY_PER_C_LOGIT * diurnal_c
        + HUMIDITY_NOISE_LOGIT * noise
    )
    return 100.0 * expit(x)


def wind_m_s(climate: Climate, latent_cloud: np.ndarray, noise: np.ndarray) -> np.ndarray:
    r = WIND_CLOUD_CORRELATION
    z = np.sqrt(1.0 - r**2) * noise + r * latent_cloud
    return climate.wind_median_m_s * np.exp(WIND_SIGMA_LN * z)
