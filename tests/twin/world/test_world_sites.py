"""Built-in sites and their validation."""

import numpy as np
import pytest
from pydantic import ValidationError

from twin.errors import ConfigError
from twin.world.sites import SITES, Site, get_site, great_circle_km


def test_at_least_eight_real_sites_with_sane_climates():
    assert len(SITES) >= 8
    for site in SITES.values():
        assert -90 <= site.lat_deg <= 90
        assert 0.3 < site.climate.clear_fraction_annual < 0.9
        assert 0.4 < site.climate.seeing_median_arcsec < 2.5


def test_known_coordinates():
    pachon = SITES["cerro-pachon"]
    assert pachon.lat_deg == pytest.approx(-30.24, abs=0.01)
    assert pachon.lon_deg == pytest.approx(-70.75, abs=0.01)
    assert great_circle_km(SITES["la-palma"], SITES["teide"]) == pytest.approx(143, abs=5)
    assert great_circle_km(SITES["cerro-pachon"], SITES["cerro-tololo"]) < 15


def test_horizon_mask_interpolates_around_north():
    pachon = SITES["cerro-pachon"]
    assert pachon.horizon_min_alt_deg(90.0) == pytest.approx(18.0)
    assert pachon.horizon_min_alt_deg(45.0) == pytest.approx(16.5)
    np.testing.assert_allclose(pachon.horizon_min_alt_deg([359.999, 0.0, 360.0]), 15.0, atol=1e-3)


def test_latitude_out_of_range_names_the_field():
    data = SITES["hanle"].model_dump() | {"lat_deg": 95.0}
    with pytest.raises(ValidationError, match="lat_deg"):
        Site.model_validate(data)


def test_clear_fraction_must_have_twelve_months_in_range():
    climate = SITES["hanle"].climate.model_dump()
    with pytest.raises(ValidationError, match="clear_fraction_by_month"):
        Site.model_validate(
            SITES["hanle"].model_dump()
            | {"climate": climate | {"clear_fraction_by_month": [0.5] * 11}}
        )
    with pytest.raises(ValidationError, match="month 3"):
        bad = [0.5, 0.5, 1.2] + [0.5] * 9
        Site.model_validate(
            SITES["hanle"].model_dump() | {"climate": climate | {"clear_fraction_by_month": bad}}
        )


def test_unknown_site_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="allowed: cerro-pachon, cerro-tololo"):
        get_site("atlantis")


@pytest.mark.parametrize(
    ("given", "stored"),
    [(350.0, -10.0), (360.0, 0.0), (180.5, -179.5), (180.0, 180.0), (-180.0, 180.0),
     (-70.7494, -70.7494), (0.0, 0.0)],
)  # fmt: skip
def test_longitude_is_stored_wrapped_into_minus_180_to_180(given, stored):
    site = Site.model_validate(SITES["hanle"].model_dump() | {"lon_deg": given})
    assert site.lon_deg == stored  # exact: every consumer must see one value


def test_longitudes_in_range_survive_revalidation_bit_for_bit():
    for site in SITES.values():
        assert -180.0 < site.lon_deg <= 180.0
        assert Site.model_validate(site.model_dump()).lon_deg == site.lon_deg


def test_polar_plateau_climate_validates():
    # Dome C: annual mean -51 C, seasonal swing ~17 C, wind ~3 m/s, seeing 1.3" from the
    # ground (Aristidi et al. 2005, A&A 430, 739; 2009, A&A 499, 955).
    climate = SITES["hanle"].climate.model_dump() | {
        "temperature_mean_c": -51.0, "temperature_seasonal_amplitude_c": 17.0,
        "wind_median_m_s": 2.9, "seeing_median_arcsec": 1.3, "humidity_median_pct": 70.0,
        "clear_fraction_by_month": [0.85] * 12,
    }  # fmt: skip
    dome_c = Site.model_validate(
        SITES["hanle"].model_dump()
        | {"name": "dome-c", "lat_deg": -75.1, "lon_deg": 123.35, "height_m": 3233.0}
        | {"climate": climate}
    )
    assert dome_c.climate.temperature_mean_c == -51.0
    coldest = climate | {"temperature_mean_c": -60.0}  # Dome A's estimated annual mean
    above_layer = climate | {"seeing_median_arcsec": 0.35}  # a telescope above ~30 m
    for variant in (coldest, above_layer):
        Site.model_validate(dome_c.model_dump() | {"climate": variant})
    with pytest.raises(ValidationError, match="temperature_mean_c"):
        Site.model_validate(
            dome_c.model_dump() | {"climate": climate | {"temperature_mean_c": -90}}
        )
