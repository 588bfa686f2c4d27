"""The almanac against astroplan's Observer (twilights) and astropy (moon, LST)."""

import astropy.units as u
import numpy as np
from astroplan import Observer, moon_illumination
from astropy.time import Time

from twin.astro.almanac import Almanac, site_location
from twin.world.sites import SITES

MINUTE_D = 1.0 / 1440.0


def test_twilights_match_astroplan_within_a_minute():
    site = SITES["sutherland"]
    alm = Almanac(site, 61150.0, days=3)
    observer = Observer(location=site_location(site), pressure=0 * u.hPa)
    for i in range(3):
        night = alm.night(i)
        noon = Time(alm.mjd[i * 288], format="mjd")
        dusk = observer.twilight_evening_astronomical(noon, which="next").mjd
        dawn = observer.twilight_morning_astronomical(noon, which="next").mjd
        nautical = observer.twilight_evening_nautical(noon, which="next").mjd
        assert abs(night.evening_twilight_mjd["astronomical"] - dusk) < MINUTE_D
        assert abs(night.morning_twilight_mjd["astronomical"] - dawn) < MINUTE_D
        assert abs(night.evening_twilight_mjd["nautical"] - nautical) < MINUTE_D
        assert night.sunset_mjd < night.evening_twilight_mjd["civil"] < nautical


def test_night_length_and_moon():
    alm = Almanac(SITES["la-palma"], 61222.0, days=1)  # a June night in the north: short
    june = alm.night(0)
    alm_dec = Almanac(SITES["la-palma"], 61405.0, days=1)  # December: long
    assert 5.0 < june.astronomical_night_h < 7.0
    assert 9.5 < alm_dec.night(0).astronomical_night_h < 11.5
    t = Time(0.5 * (alm.mjd[0] + alm.mjd[-1]), format="mjd")
    assert abs(june.moon_illum_midnight - float(moon_illumination(t))) < 0.01


def test_lst_matches_astropy():
    site = SITES["mauna-kea"]
    alm = Almanac(site, 61300.0, days=2)
    mjd = np.linspace(alm.mjd[0], alm.mjd[-1], 97)
    ref = Time(mjd, format="mjd").sidereal_time("apparent", longitude=site.lon_deg * u.deg).hour
    diff_h = np.mod(alm.lst_hours(mjd) - ref + 12, 24) - 12
    assert np.max(np.abs(diff_h)) * 3600 < 0.5  # seconds of time


def test_far_future_dates_work_offline():
    alm = Almanac(SITES["cerro-tololo"], Time("2034-07-01").mjd, days=1)
    night = alm.night(0)
    assert 9.0 < night.astronomical_night_h < 11.5  # austral winter
