"""Weather at each site: stochastic from its climate, ideal, or replayed from a log.

Every source follows :class:`WeatherSource` (``sample`` many times, ``at`` one time);
:class:`Forecast` adds lead-time-dependent error on top of any of them, and
:func:`dome_closure` turns weather into dome closures. Time is MJD (UTC) as floats.
"""

from twin.weather.dome import DomeRules, dome_closure
from twin.weather.factory import WEATHER_KINDS, make_weather
from twin.weather.forecast import ErrorGrowth, Forecast, ForecastErrors
from twin.weather.ideal import IdealWeather
from twin.weather.replay import ReplayWeather, write_csv
from twin.weather.state import (
    CLEAR_CLOUD_COVER_MAX,
    WEATHER_FIELDS,
    OutOfSpanError,
    WeatherSource,
    WeatherState,
)
from twin.weather.stochastic import StochasticWeather
from twin.weather.summary import climate_summary, plot_weather, write_traces

__all__ = [
    "CLEAR_CLOUD_COVER_MAX",
    "WEATHER_FIELDS",
    "WEATHER_KINDS",
    "DomeRules",
    "ErrorGrowth",
    "Forecast",
    "ForecastErrors",
    "IdealWeather",
    "OutOfSpanError",
    "ReplayWeather",
    "StochasticWeather",
    "WeatherSource",
    "WeatherState",
    "climate_summary",
    "dome_closure",
    "make_weather",
    "plot_weather",
    "write_csv",
    "write_traces",
]
