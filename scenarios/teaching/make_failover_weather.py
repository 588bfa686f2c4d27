"""Write ``failover_weather.csv``, the weather log that ``failover.yaml`` replays.

A cold front reaches Sutherland in the afternoon of 7 April 2027 and stays until the next
morning: the sky there is overcast (cloud cover 0.95, above the dome's 0.7 limit) for the
whole night of 7-8 April. Cerro Pachon, 6 h of longitude to the west, stays clear.
Outside the front both sites have their median seeing, humidity and wind (the ``Climate``
of :data:`twin.world.sites.SITES`), so the cloud is the only thing that differs from
``weather: ideal``.

The log is hourly from 6 to 14 April 2027 (UTC): enough for ``skytwin run
scenarios/teaching/failover.yaml --nights 5``; the replay interpolates linearly between
rows. Run from the repository root to regenerate it::

    .venv/bin/python scenarios/teaching/make_failover_weather.py
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

from twin.world.sites import SITES

OUT = Path(__file__).with_name("failover_weather.csv")
FIRST = dt.datetime(2027, 4, 6, tzinfo=dt.UTC)
LAST = dt.datetime(2027, 4, 14, tzinfo=dt.UTC)
CLEAR_CLOUD = 0.05
OVERCAST_CLOUD = 0.95
OVERCAST_HUMIDITY_PCT = 70.0  # damp but below the dome's 85 % limit: the cloud closes it
# The front at Sutherland: cloud ramps up, holds, ramps down (UTC; local time is UTC+2).
FRONT_SITE = "sutherland"
FRONT = (
    dt.datetime(2027, 4, 7, 13, tzinfo=dt.UTC),  # starts to cloud over
    dt.datetime(2027, 4, 7, 15, tzinfo=dt.UTC),  # overcast, 2 h before the night
    dt.datetime(2027, 4, 8, 8, tzinfo=dt.UTC),  # starts to clear, 4 h after the night
    dt.datetime(2027, 4, 8, 10, tzinfo=dt.UTC),  # clear again
)
CLEAR_SITE = "cerro-pachon"
COLUMNS = (
    "time_utc",
    "site",
    "cloud_cover",
    "seeing_fwhm_arcsec",
    "humidity_pct",
    "wind_m_s",
    "temperature_c",
)


def front_fraction(when: dt.datetime) -> float:
    """0 outside the front, 1 while overcast, linear on the ramps."""
    hours = [(t - FIRST).total_seconds() / 3600.0 for t in FRONT]
    return float(np.interp((when - FIRST).total_seconds() / 3600.0, hours, [0.0, 1.0, 1.0, 0.0]))


def row(when: dt.datetime, site_name: str) -> tuple:
    """One log row: the site's median weather, overcast and damper inside the front."""
    climate = SITES[site_name].climate
    front = front_fraction(when) if site_name == FRONT_SITE else 0.0
    cloud = CLEAR_CLOUD + front * (OVERCAST_CLOUD - CLEAR_CLOUD)
    humidity = climate.humidity_median_pct
    humidity += front * (OVERCAST_HUMIDITY_PCT - climate.humidity_median_pct)
    return (when.strftime("%Y-%m-%dT%H:%M:%S"), site_name, round(cloud, 3),
            climate.seeing_median_arcsec, round(humidity, 1), climate.wind_median_m_s,
            climate.temperature_mean_c)  # fmt: skip


def rows() -> list[tuple]:
    hours = int((LAST - FIRST).total_seconds() // 3600)
    times = [FIRST + dt.timedelta(hours=h) for h in range(hours + 1)]
    return [row(when, name) for when in times for name in (FRONT_SITE, CLEAR_SITE)]


def main() -> None:
    with OUT.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows())


if __name__ == "__main__":
    main()
