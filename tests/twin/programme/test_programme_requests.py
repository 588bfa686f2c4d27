"""Request models: sane defaults, nonsense rejected naming the field."""

import pytest
from pydantic import ValidationError

from twin.errors import from_pydantic
from twin.programme import Constraints, ExposurePlan, Request, Window


def _request(**overrides):
    fields = {
        "request_id": "r1",
        "program": "p",
        "target_id": "t1",
        "ra_deg": 10.0,
        "dec_deg": -20.0,
        "plan": [{"band": "r", "exptime_s": 60.0, "count": 3}],
    }
    fields.update(overrides)
    return Request(**fields)


def _locations(error: ValidationError) -> list[tuple]:
    return [tuple(item["loc"]) for item in error.errors()]


def test_defaults_are_valid_and_frozen():
    request = _request()
    assert request.constraints == Constraints()
    assert request.constraints.max_airmass == pytest.approx(2.0)
    assert request.constraints.max_sun_alt_deg == pytest.approx(-12.0)
    assert request.windows == () and request.cadence_days is None
    assert request.total_exptime_s == pytest.approx(180.0)
    with pytest.raises(ValidationError):
        request.priority = 5.0


def test_negative_exposure_names_the_field():
    with pytest.raises(ValidationError) as caught:
        _request(plan=[{"band": "r", "exptime_s": -5.0}])
    assert ("plan", 0, "exptime_s") in _locations(caught.value)
    assert "greater than or equal to 0.1" in str(caught.value)
    message = str(from_pydantic("programme.yaml", caught.value))
    assert "plan.0.exptime_s" in message and "-5.0" in message


def test_airmass_below_one_names_the_field():
    with pytest.raises(ValidationError) as caught:
        _request(constraints={"max_airmass": 0.8})
    assert ("constraints", "max_airmass") in _locations(caught.value)
    assert "greater than or equal to 1" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"ra_deg": 360.0}, ("ra_deg",)),
        ({"dec_deg": -91.0}, ("dec_deg",)),
        ({"priority": 0.0}, ("priority",)),
        ({"plan": []}, ("plan",)),
        ({"plan": [{"band": "r", "exptime_s": 10.0, "count": 0}]}, ("plan", 0, "count")),
        ({"constraints": {"min_moon_sep_deg": 200.0}}, ("constraints", "min_moon_sep_deg")),
        ({"constraints": {"max_moon_illum": 1.5}}, ("constraints", "max_moon_illum")),
        ({"constraints": {"max_seeing_arcsec": 0.0}}, ("constraints", "max_seeing_arcsec")),
        ({"constraints": {"min_transparency": -0.1}}, ("constraints", "min_transparency")),
        ({"constraints": {"max_sun_alt_deg": 5.0}}, ("constraints", "max_sun_alt_deg")),
        ({"cadence_days": -1.0}, ("cadence_days",)),
    ],
)
def test_out_of_range_values_name_the_field(overrides, location):
    with pytest.raises(ValidationError) as caught:
        _request(**overrides)
    assert location in _locations(caught.value)


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError) as caught:
        _request(prioirty=2.0)
    assert ("prioirty",) in _locations(caught.value)
    assert "unknown field" in str(from_pydantic("programme.yaml", caught.value))
    with pytest.raises(ValidationError) as caught:
        Constraints(max_airmas=1.5)
    assert ("max_airmas",) in _locations(caught.value)
    with pytest.raises(ValidationError):
        ExposurePlan(band="r", exptime_s=1.0, exp_time=2.0)


def test_window_end_must_follow_start():
    assert Window(start_mjd=60000.0, end_mjd=60000.5).end_mjd == pytest.approx(60000.5)
    with pytest.raises(ValidationError) as caught:
        Window(start_mjd=60001.0, end_mjd=60000.0)
    assert ("end_mjd",) in _locations(caught.value)
    assert "later than start_mjd" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        _request(windows=[{"start_mjd": 5.0, "end_mjd": 5.0}])
    assert ("windows", 0, "end_mjd") in _locations(caught.value)
