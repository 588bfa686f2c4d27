"""What the weather is at one site and instant, and the protocol every weather source follows.

The twin swaps weather models freely (stochastic, ideal, a replayed log; DESIGN.md
"Seams"), so they all answer the same two questions: the conditions at many times at
once (vectorised, for the hot path and for statistics) and at one time (a
:class:`WeatherState`, for a decision). Time is always MJD (UTC) as plain floats.

"Clear" follows the :class:`twin.world.sites.Climate` definition: cloud cover below 0.25.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

CLEAR_CLOUD_COVER_MAX = 0.25
"""Cloud cover below which a sample counts as clear (the Climate clear-fraction definition)."""


@dataclass(frozen=True)
class WeatherState:
    """Weather at one site and instant.

    | field              | unit    | range     | meaning                                  |
    |--------------------|---------|-----------|------------------------------------------|
    | cloud_cover        | -       | 0..1      | fraction of the sky covered              |
    | transparency       | -       | 0..1      | fraction of starlight passing the clouds |
    | seeing_fwhm_arcsec | arcsec  | > 0       | atmospheric FWHM at zenith, 500 nm       |
    | humidity_pct       | %       | 0..100    | relative humidity at the dome            |
    | wind_m_s           | m/s     | >= 0      | wind speed at the dome                   |
    | temperature_c      | deg C   |           | air temperature at the dome              |
    """

    cloud_cover: float
    transparency: float
    seeing_fwhm_arcsec: float
    humidity_pct: float
    wind_m_s: float
    temperature_c: float

    @property
    def is_clear(self) -> bool:
        return self.cloud_cover < CLEAR_CLOUD_COVER_MAX


WEATHER_FIELDS: tuple[str, ...] = tuple(WeatherState.__dataclass_fields__)
"""The WeatherState field names, in order: the keys of every ``sample`` dictionary."""


@runtime_checkable
class WeatherSource(Protocol):
    """Anything that can tell the weather at a site: stochastic, ideal or replayed."""

    def sample(self, site_name: str, mjd: np.ndarray) -> dict[str, np.ndarray]:
        """Weather at each MJD (UTC); keys are :data:`WEATHER_FIELDS`, arrays like ``mjd``."""
        ...

    def at(self, site_name: str, mjd: float) -> WeatherState:
        """Weather at one MJD (UTC)."""
        ...


class OutOfSpanError(ValueError):
    """A weather query fell outside the span a source was generated for or recorded over."""


def check_span(site_name: str, mjd: np.ndarray, start_mjd: float, end_mjd: float) -> None:
    """Raise :class:`OutOfSpanError` unless every ``mjd`` lies within start..end."""
    if mjd.size == 0:
        return
    lo, hi = float(np.min(mjd)), float(np.max(mjd))
    tolerance_day = 1e-9
    if lo < start_mjd - tolerance_day or hi > end_mjd + tolerance_day or np.isnan(lo + hi):
        raise OutOfSpanError(
            f"site {site_name!r}: requested MJD {lo:.5f}..{hi:.5f} lies outside the weather "
            f"span {start_mjd:.5f}..{end_mjd:.5f}; generate or record a longer span, "
            "or query inside it"
        )


def state_at(samples: dict[str, np.ndarray]) -> WeatherState:
    """The single WeatherState of a one-element ``sample`` result."""
    return WeatherState(**{name: float(samples[name][0]) for name in WEATHER_FIELDS})
