"""The almanac against astroplan's Observer (twilights) and astropy (moon, LST)."""

import astropy.units as u
import numpy as np
import pytest
from astroplan import Observer, moon_illumination
from astropy.time import Time

from twin.astro.almanac import Almanac, local_noon_mjd, site_location
from twin.world.sites import SITES, Site

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


def _at_lon(lon_deg: float) -> Site:
    return Site.model_validate(SITES["la-palma"].model_dump() | {"lon_deg": lon_deg})


@pytest.mark.parametrize(
    ("lon_deg", "noon_mjd"),
    [
        (-10.0, 61200.5 + 10.0 / 360.0),  # local noon 40 min after UTC noon
        (350.0, 61200.5 + 10.0 / 360.0),  # the same meridian, not the day before
        (180.0, 61200.0),  # UTC+12: noon is 00:00 UTC of the same date
        (-180.0, 61200.0),  # the same meridian, on the +180 side of the date line
    ],
)
def test_local_noon_at_any_spelling_of_the_longitude(lon_deg, noon_mjd):
    site = _at_lon(lon_deg)
    assert local_noon_mjd(site, 61200.3) == pytest.approx(noon_mjd, abs=1e-12)
    night = Almanac(site, 61200.3, days=1).night(0)
    assert night.night_date == Time(61200.0, format="mjd").to_value("iso", "date")


def test_almanac_at_lon_350_equals_lon_minus_10():
    east, west = Almanac(_at_lon(350.0), 61200.0, days=2), Almanac(_at_lon(-10.0), 61200.0, 2)
    np.testing.assert_array_equal(east.mjd, west.mjd)
    assert east.nights() == west.nights()
