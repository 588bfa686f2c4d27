"""Observatory sites: where they are, what their horizon hides, and their climate.

A :class:`Site` is validated configuration (pydantic), so a bad latitude or an unknown
site name is reported with the field and the allowed range before anything runs. The
built-in table :data:`SITES` holds real observatories; the climate figures are rounded
from the site-testing literature cited beside each entry. They are meant to give each
site its character (Chile dry and steady, the Indian monsoon, the Australian cloud), not
to replace a site's own weather archive: for that, replay a recorded log
(:mod:`twin.weather.replay`).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.errors import ConfigError, SafeName

MonthlyFraction = Annotated[list[float], Field(min_length=12, max_length=12)]


def wrap_lon_deg(lon_deg: float) -> float:
    """East longitude wrapped into (-180, 180].

    Why once, here: local noon, the "night of" date, local solar time and the weather's
    night grouping all divide the longitude by 360 and take a floor, so 350 and -10 would
    give nights one day apart. Every consumer reads the stored value, so wrapping at
    validation keeps them all on one convention. Values already in range are returned
    untouched (bit for bit), and ``lon - 360`` is exact for 180 < lon <= 360, so a site
    at 350 is stored as exactly -10. The antimeridian is +180 (date west of the line).
    """
    if lon_deg > 180.0:
        return lon_deg - 360.0
    if lon_deg <= -180.0:
        return lon_deg + 360.0
    return lon_deg


class Climate(BaseModel):
    """Statistics of a site's weather that the stochastic weather model reproduces."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    clear_fraction_by_month: MonthlyFraction = Field(
        description="Fraction of night hours usable (cloud cover < 0.25), January first."
    )
    seeing_median_arcsec: float = Field(gt=0.0, le=5.0, description="Zenith FWHM at 500 nm.")
    seeing_sigma_ln: float = Field(
        default=0.35, gt=0.0, le=1.5, description="Spread of ln(seeing), log-normal model."
    )
    seeing_timescale_min: float = Field(default=30.0, gt=0.0)
    humidity_median_pct: float = Field(ge=0.0, le=100.0)
    wind_median_m_s: float = Field(ge=0.0, le=40.0)
    # Bounds take in the Antarctic plateau: annual means of -49 C at the South Pole,
    # about -51 C at Dome C (Aristidi et al. 2005, A&A 430, 739) and -55 C at Vostok;
    # -70 C leaves room for Dome A / Ridge A site studies and still catches typos. The
    # other plateau figures already fit: seeing ~1.3" from the ground at Dome C, 0.3-0.4"
    # above the ~30 m boundary layer (Lawrence et al. 2004, Nature 431, 278; Aristidi et
    # al. 2009, A&A 499, 955), median wind ~3 m/s, clear fraction 0.7-0.9.
    temperature_mean_c: float = Field(ge=-70.0, le=40.0)
    temperature_seasonal_amplitude_c: float = Field(default=4.0, ge=0.0, le=30.0)
    temperature_diurnal_amplitude_c: float = Field(default=4.0, ge=0.0, le=20.0)
    cloud_persistence_days: float = Field(
        default=1.5, gt=0.0, description="e-folding time of night-to-night cloud memory."
    )
    cloud_timescale_h: float = Field(
        default=3.0, gt=0.0, description="e-folding time of cloud changes within a night."
    )

    @field_validator("clear_fraction_by_month")
    @classmethod
    def _fractions_in_range(cls, values: list[float]) -> list[float]:
        for month, value in enumerate(values, start=1):
            if not 0.0 < value < 1.0:
                raise ValueError(f"month {month} is {value}; allowed: 0 < fraction < 1")
        return values

    @property
    def clear_fraction_annual(self) -> float:
        return float(np.mean(self.clear_fraction_by_month))


class Site(BaseModel):
    """An observatory site: geodetic position, horizon mask, sky quality and climate."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: SafeName  # becomes a folder name (frames/<site>/)
    full_name: str = Field(default="", max_length=200)
    lat_deg: float = Field(ge=-90.0, le=90.0, description="Geodetic latitude, north positive.")
    lon_deg: float = Field(
        ge=-180.0,
        le=360.0,
        description="East longitude; 0..360 is accepted and stored wrapped into (-180, 180].",
    )
    height_m: float = Field(ge=-500.0, le=6000.0)
    timezone: str = Field(description="IANA time zone, for local-time reports.")
    horizon_az_deg: list[float] = Field(
        default_factory=lambda: [0.0, 360.0], description="Azimuths of the mask points."
    )
    horizon_alt_deg: list[float] = Field(
        default_factory=lambda: [15.0, 15.0], description="Lowest usable altitude there."
    )
    sky_brightening_mag: float = Field(
        default=0.0, ge=0.0, le=5.0, description="Artificial light above a pristine dark sky."
    )
    climate: Climate

    @field_validator("lon_deg")
    @classmethod
    def _wrap_longitude(cls, lon_deg: float) -> float:
        return wrap_lon_deg(lon_deg)

    @model_validator(mode="after")
    def _horizon_consistent(self) -> Site:
        az, alt = self.horizon_az_deg, self.horizon_alt_deg
        if len(az) != len(alt) or len(az) < 2:
            raise ValueError("horizon_az_deg and horizon_alt_deg need the same length (>= 2)")
        if any(b <= a for a, b in pairwise(az)) or az[0] < 0 or az[-1] > 360:
            raise ValueError("horizon_az_deg must increase strictly within 0..360")
        if any(not -5.0 <= a <= 90.0 for a in alt):
            raise ValueError("horizon_alt_deg values must lie in -5..90 deg")
        return self

    def horizon_min_alt_deg(self, az_deg: np.ndarray | float) -> np.ndarray:
        """Lowest usable altitude at each azimuth, interpolated around the full circle."""
        az = np.mod(np.asarray(az_deg, dtype=float), 360.0)
        return np.interp(az, self.horizon_az_deg, self.horizon_alt_deg, period=360.0)


def _flat(alt_deg: float) -> dict[str, list[float]]:
    return {"horizon_az_deg": [0.0, 360.0], "horizon_alt_deg": [alt_deg, alt_deg]}


# Coordinates: the observatories' published geodetic positions (rounded to 1e-4 deg).
# Climate: rounded from the cited site-testing papers; clear fraction = usable night
# fraction, seeing = median zenith DIMM seeing at 500 nm.
_SITE_TABLE: list[dict] = [
    # Cerro Pachon (Rubin/Gemini South). Seeing: Tokovinin et al. 2003, PASP 115, 691
    # (DIMM median ~0.7"); clear fraction: LSST Science Book 2009 sec. 2 (~80 %, winter worse).
    dict(
        name="cerro-pachon",
        full_name="Cerro Pachón, Chile",
        lat_deg=-30.2446,
        lon_deg=-70.7494,
        height_m=2663.0,
        timezone="America/Santiago",
        horizon_az_deg=[0.0, 90.0, 180.0, 270.0, 360.0],
        horizon_alt_deg=[15.0, 18.0, 15.0, 14.0, 15.0],
        climate=dict(
            clear_fraction_by_month=[
                0.88,
                0.87,
                0.85,
                0.80,
                0.70,
                0.62,
                0.64,
                0.68,
                0.76,
                0.82,
                0.86,
                0.88,
            ],
            seeing_median_arcsec=0.70,
            seeing_sigma_ln=0.33,
            humidity_median_pct=25.0,
            wind_median_m_s=6.0,
            temperature_mean_c=10.0,
            temperature_seasonal_amplitude_c=4.0,
        ),
    ),
    # Cerro Tololo (CTIO). Tokovinin et al. 2003 (DIMM median ~0.75"); CTIO weather
    # statistics (~78 % usable).
    dict(
        name="cerro-tololo",
        full_name="Cerro Tololo, Chile",
        lat_deg=-30.1690,
        lon_deg=-70.8063,
        height_m=2207.0,
        timezone="America/Santiago",
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.86,
                0.85,
                0.83,
                0.78,
                0.68,
                0.60,
                0.62,
                0.66,
                0.74,
                0.80,
                0.84,
                0.86,
            ],
            seeing_median_arcsec=0.75,
            seeing_sigma_ln=0.35,
            humidity_median_pct=30.0,
            wind_median_m_s=5.0,
            temperature_mean_c=12.0,
            temperature_seasonal_amplitude_c=4.0,
        ),
    ),
    # Roque de los Muchachos, La Palma (ORM). Munoz-Tunon et al. 1997, A&AS 125, 183
    # (median 0.76"); ~72 % usable, winter storms (Garcia-Lorenzo et al. 2010, MNRAS 405).
    dict(
        name="la-palma",
        full_name="Roque de los Muchachos, La Palma",
        lat_deg=28.7606,
        lon_deg=-17.8816,
        height_m=2396.0,
        timezone="Atlantic/Canary",
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.58,
                0.60,
                0.65,
                0.72,
                0.82,
                0.90,
                0.93,
                0.90,
                0.80,
                0.70,
                0.62,
                0.58,
            ],
            seeing_median_arcsec=0.76,
            seeing_sigma_ln=0.38,
            humidity_median_pct=40.0,
            wind_median_m_s=7.0,
            temperature_mean_c=9.0,
            temperature_seasonal_amplitude_c=6.0,
        ),
    ),
    # Teide Observatory, Tenerife: ~130 km from La Palma, same weather systems.
    # Vernin & Munoz-Tunon 1998 (median ~0.8"); usable fraction close to ORM's.
    dict(
        name="teide",
        full_name="Observatorio del Teide, Tenerife",
        lat_deg=28.3000,
        lon_deg=-16.5097,
        height_m=2390.0,
        timezone="Atlantic/Canary",
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.60,
                0.62,
                0.66,
                0.72,
                0.80,
                0.88,
                0.92,
                0.90,
                0.80,
                0.70,
                0.63,
                0.60,
            ],
            seeing_median_arcsec=0.80,
            seeing_sigma_ln=0.38,
            humidity_median_pct=38.0,
            wind_median_m_s=6.5,
            temperature_mean_c=10.0,
            temperature_seasonal_amplitude_c=6.0,
        ),
    ),
    # Siding Spring (AAO/LCO). Wood et al. 1995, PASA 12, 97 (median ~1.5-2");
    # ~60 % usable.
    dict(
        name="siding-spring",
        full_name="Siding Spring Observatory, Australia",
        lat_deg=-31.2733,
        lon_deg=149.0617,
        height_m=1165.0,
        timezone="Australia/Sydney",
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.55,
                0.52,
                0.58,
                0.62,
                0.60,
                0.58,
                0.64,
                0.66,
                0.64,
                0.60,
                0.56,
                0.55,
            ],
            seeing_median_arcsec=1.60,
            seeing_sigma_ln=0.40,
            humidity_median_pct=60.0,
            wind_median_m_s=4.0,
            temperature_mean_c=12.0,
            temperature_seasonal_amplitude_c=7.0,
        ),
    ),
    # Sutherland (SAAO/SALT). Catala et al. 2013, MNRAS 436, 590 (median 1.3");
    # summer thunderstorms, ~65 % usable (SALT site reports).
    dict(
        name="sutherland",
        full_name="SAAO Sutherland, South Africa",
        lat_deg=-32.3794,
        lon_deg=20.8107,
        height_m=1798.0,
        timezone="Africa/Johannesburg",
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.58,
                0.56,
                0.58,
                0.66,
                0.72,
                0.74,
                0.76,
                0.74,
                0.70,
                0.64,
                0.60,
                0.58,
            ],
            seeing_median_arcsec=1.30,
            seeing_sigma_ln=0.38,
            humidity_median_pct=45.0,
            wind_median_m_s=5.5,
            temperature_mean_c=12.0,
            temperature_seasonal_amplitude_c=7.0,
        ),
    ),
    # Hanle (IAO), Ladakh. Stalin et al. 2008, BASI 36, 111 (median ~1.1");
    # ~70 % spectroscopic nights outside the July-August monsoon.
    dict(
        name="hanle",
        full_name="Indian Astronomical Observatory, Hanle",
        lat_deg=32.7794,
        lon_deg=78.9642,
        height_m=4500.0,
        timezone="Asia/Kolkata",
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.78,
                0.76,
                0.74,
                0.72,
                0.70,
                0.62,
                0.45,
                0.48,
                0.70,
                0.84,
                0.84,
                0.80,
            ],
            seeing_median_arcsec=1.10,
            seeing_sigma_ln=0.35,
            humidity_median_pct=30.0,
            wind_median_m_s=5.0,
            temperature_mean_c=-2.0,
            temperature_seasonal_amplitude_c=11.0,
            temperature_diurnal_amplitude_c=7.0,
        ),
    ),
    # Devasthal (ARIES), Uttarakhand. Sagar et al. 2000, A&AS 144, 349 (median ~1.1");
    # the monsoon (June-September) removes most nights.
    dict(
        name="devasthal",
        full_name="Devasthal Observatory (ARIES), India",
        lat_deg=29.3608,
        lon_deg=79.6842,
        height_m=2450.0,
        timezone="Asia/Kolkata",
        sky_brightening_mag=0.1,
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.70,
                0.68,
                0.72,
                0.70,
                0.55,
                0.25,
                0.10,
                0.12,
                0.35,
                0.75,
                0.80,
                0.75,
            ],
            seeing_median_arcsec=1.10,
            seeing_sigma_ln=0.35,
            humidity_median_pct=55.0,
            wind_median_m_s=3.5,
            temperature_mean_c=12.0,
            temperature_seasonal_amplitude_c=8.0,
        ),
    ),
    # Mauna Kea. Skidmore et al. 2009, PASP 121, 1151 (TMT site testing, DIMM median ~0.6");
    # ~75 % usable.
    dict(
        name="mauna-kea",
        full_name="Maunakea, Hawai'i",
        lat_deg=19.8207,
        lon_deg=-155.4681,
        height_m=4205.0,
        timezone="Pacific/Honolulu",
        **_flat(12.0),
        climate=dict(
            clear_fraction_by_month=[
                0.65,
                0.66,
                0.70,
                0.74,
                0.82,
                0.86,
                0.84,
                0.82,
                0.80,
                0.76,
                0.70,
                0.66,
            ],
            seeing_median_arcsec=0.60,
            seeing_sigma_ln=0.35,
            humidity_median_pct=25.0,
            wind_median_m_s=7.0,
            temperature_mean_c=1.0,
            temperature_seasonal_amplitude_c=2.0,
        ),
    ),
    # McDonald Observatory, Texas. Observatory weather archive (~60 % usable, summer
    # monsoon); seeing ~1.2" (HET site characterisation).
    dict(
        name="mcdonald",
        full_name="McDonald Observatory, Texas",
        lat_deg=30.6797,
        lon_deg=-104.0247,
        height_m=2075.0,
        timezone="America/Chicago",
        sky_brightening_mag=0.05,
        **_flat(15.0),
        climate=dict(
            clear_fraction_by_month=[
                0.66,
                0.66,
                0.68,
                0.70,
                0.70,
                0.58,
                0.45,
                0.48,
                0.55,
                0.70,
                0.70,
                0.66,
            ],
            seeing_median_arcsec=1.20,
            seeing_sigma_ln=0.38,
            humidity_median_pct=45.0,
            wind_median_m_s=5.0,
            temperature_mean_c=14.0,
            temperature_seasonal_amplitude_c=8.0,
        ),
    ),
]

SITES: dict[str, Site] = {row["name"]: Site.model_validate(row) for row in _SITE_TABLE}


def get_site(name: str, source: str = "site name") -> Site:
    """Look up a built-in site, with the list of known names in the error."""
    try:
        return SITES[name]
    except KeyError:
        allowed = ", ".join(sorted(SITES))
        raise ConfigError(source, "site", f"unknown site {name!r}; allowed: {allowed}") from None


def great_circle_km(a: Site, b: Site) -> float:
    """Distance between two sites over a spherical Earth (enough for weather correlation)."""
    lat1, lon1, lat2, lon2 = map(np.radians, (a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg))
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return float(2 * 6371.0 * np.arcsin(np.sqrt(h)))
