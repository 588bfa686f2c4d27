"""Vectorised feasibility agrees with a per-request loop; each constraint bites."""

import numpy as np
import pytest

from twin.astro.visibility import Geometry
from twin.programme import Request, RequestTable, feasible


def _random_requests(rng: np.random.Generator, count: int) -> list[Request]:
    requests = []
    for i in range(count):
        windows = []
        for _ in range(rng.integers(0, 4)):
            start = 60000.0 + rng.uniform(0.0, 2.0)
            windows.append({"start_mjd": start, "end_mjd": start + rng.uniform(0.01, 0.5)})
        requests.append(
            Request(
                request_id=f"r{i}",
                program="p",
                target_id=f"t{i}",
                ra_deg=rng.uniform(0, 360),
                dec_deg=rng.uniform(-90, 90),
                priority=rng.uniform(0.1, 10),
                plan=[{"band": "r", "exptime_s": 30.0}],
                constraints={
                    "max_airmass": rng.uniform(1.0, 3.0),
                    "min_moon_sep_deg": rng.uniform(0, 90),
                    "max_moon_illum": rng.uniform(0, 1),
                    "max_seeing_arcsec": None if rng.random() < 0.3 else rng.uniform(0.8, 3),
                    "min_transparency": rng.uniform(0, 1),
                    "max_sun_alt_deg": rng.uniform(-18, 0),
                },
                windows=windows,
            )
        )
    return requests


def _random_geometry(rng: np.random.Generator, shape: tuple) -> Geometry:
    alt = rng.uniform(-10, 90, shape)
    return Geometry(
        alt_deg=alt,
        az_deg=rng.uniform(0, 360, shape),
        airmass=rng.uniform(1.0, 3.5, shape),
        hour_angle_h=rng.uniform(-12, 12, shape),
        moon_sep_deg=rng.uniform(0, 180, shape),
        sun_sep_deg=rng.uniform(0, 180, shape),
        moon_alt_deg=rng.uniform(-60, 60, shape),
        sun_alt_deg=rng.uniform(-30, 5, shape),
        moon_illum=rng.uniform(0, 1, shape),
        above_horizon=rng.random(shape) < 0.8,
    )


def _brute_force(request: Request, g: dict, mjd, seeing, transparency) -> bool:
    c = request.constraints
    moon_ok = g["moon_alt_deg"] < 0 or (
        g["moon_sep_deg"] >= c.min_moon_sep_deg and g["moon_illum"] <= c.max_moon_illum
    )
    in_window = not request.windows or any(w.start_mjd <= mjd < w.end_mjd for w in request.windows)
    return bool(
        g["above_horizon"]
        and g["airmass"] <= c.max_airmass
        and moon_ok
        and g["sun_alt_deg"] <= c.max_sun_alt_deg
        and (c.max_seeing_arcsec is None or seeing <= c.max_seeing_arcsec)
        and transparency >= c.min_transparency
        and in_window
    )


def _element(geometry: Geometry, index) -> dict:
    return {name: getattr(geometry, name)[index] for name in geometry.__dataclass_fields__}


def test_matches_brute_force_loop_on_random_geometry():
    rng = np.random.default_rng(7)
    count = 2000
    requests = _random_requests(rng, count)
    table = RequestTable.from_requests(requests)
    geometry = _random_geometry(rng, (count,))
    mjd = 60000.0 + rng.uniform(0, 2.5, count)
    seeing = rng.uniform(0.5, 3.5, count)
    transparency = rng.uniform(0, 1, count)
    mask = feasible(table, geometry, mjd, seeing, transparency)
    expected = np.array(
        [
            _brute_force(r, _element(geometry, k), mjd[k], seeing[k], transparency[k])
            for k, r in enumerate(requests)
        ]
    )
    assert mask.dtype == bool and mask.shape == (count,)
    np.testing.assert_array_equal(mask, expected)
    # The draw must exercise both outcomes, or the comparison proves little.
    assert 0 < mask.sum() < count


def test_matches_brute_force_on_a_candidates_by_times_grid():
    rng = np.random.default_rng(11)
    requests = _random_requests(rng, 50)
    table = RequestTable.from_requests(requests)
    geometry = _random_geometry(rng, (50, 40))
    mjd = 60000.0 + np.linspace(0, 2.5, 40)  # broadcasts along the time axis
    mask = feasible(table, geometry, mjd, 1.2, 0.6)
    assert mask.shape == (50, 40)
    for k, request in enumerate(requests):
        for t in range(40):
            assert mask[k, t] == _brute_force(request, _element(geometry, (k, t)), mjd[t], 1.2, 0.6)


def _good_request(**constraints) -> Request:
    fields = {
        "max_airmass": 2.0,
        "min_moon_sep_deg": 30.0,
        "max_moon_illum": 0.5,
        "max_seeing_arcsec": 2.0,
        "min_transparency": 0.7,
        "max_sun_alt_deg": -12.0,
    }
    fields.update(constraints)
    return Request(
        request_id="r",
        program="p",
        target_id="t",
        ra_deg=0.0,
        dec_deg=0.0,
        plan=[{"band": "g", "exptime_s": 10.0}],
        constraints=fields,
        windows=[{"start_mjd": 60000.0, "end_mjd": 60000.5}],
    )


def _good_geometry(**changes) -> Geometry:
    values = {
        "alt_deg": 60.0,
        "az_deg": 180.0,
        "airmass": 1.15,
        "hour_angle_h": 0.0,
        "moon_sep_deg": 90.0,
        "sun_sep_deg": 150.0,
        "moon_alt_deg": 20.0,
        "sun_alt_deg": -30.0,
        "moon_illum": 0.3,
        "above_horizon": True,
    }
    values.update(changes)
    return Geometry(**{name: np.array([value]) for name, value in values.items()})


GOOD = {"mjd": 60000.2, "seeing_arcsec": 1.0, "transparency": 0.9}


def _check(geometry: Geometry, request: Request | None = None, **conditions) -> bool:
    table = RequestTable.from_requests([request or _good_request()])
    return bool(feasible(table, geometry, **{**GOOD, **conditions})[0])


def test_good_conditions_are_feasible():
    assert _check(_good_geometry())


@pytest.mark.parametrize(
    ("geometry_change", "conditions"),
    [
        ({"above_horizon": False}, {}),
        ({"airmass": 2.01}, {}),
        ({"moon_sep_deg": 29.9}, {}),
        ({"moon_illum": 0.51}, {}),
        ({"sun_alt_deg": -11.9}, {}),
        ({}, {"seeing_arcsec": 2.01}),
        ({}, {"transparency": 0.69}),
        ({}, {"mjd": 59999.99}),
        ({}, {"mjd": 60000.5}),  # windows are half-open
    ],
)
def test_each_constraint_switches_the_mask(geometry_change, conditions):
    assert not _check(_good_geometry(**geometry_change), **conditions)


def test_limits_are_inclusive():
    geometry = _good_geometry(airmass=2.0, moon_sep_deg=30.0, moon_illum=0.5, sun_alt_deg=-12.0)
    assert _check(geometry, seeing_arcsec=2.0, transparency=0.7, mjd=60000.0)


def test_moon_limits_waived_while_moon_is_down():
    close_full_moon = {"moon_sep_deg": 5.0, "moon_illum": 1.0}
    assert not _check(_good_geometry(moon_alt_deg=1.0, **close_full_moon))
    assert _check(_good_geometry(moon_alt_deg=-1.0, **close_full_moon))


def test_no_seeing_limit_and_no_windows_mean_any():
    request = _good_request(max_seeing_arcsec=None).model_copy(update={"windows": ()})
    assert _check(_good_geometry(), request, seeing_arcsec=9.0, mjd=12345.0)


def test_table_columns_and_take():
    requests = [
        _good_request(),
        _good_request(max_seeing_arcsec=None).model_copy(update={"windows": ()}),
    ]
    table = RequestTable.from_requests(requests)
    assert len(table) == 2
    assert table.window_start_mjd.shape == (2, 1)
    assert np.isinf(table.max_seeing_arcsec[1]) and np.isneginf(table.window_start_mjd[1, 0])
    sub = table.take([1])
    assert sub.request_ids == ("r",) and np.isinf(sub.max_seeing_arcsec[0])


def test_shape_mismatch_is_explained():
    table = RequestTable.from_requests([_good_request(), _good_request()])
    with pytest.raises(ValueError, match="first axis must be the candidates"):
        feasible(table, _good_geometry(), **GOOD)
