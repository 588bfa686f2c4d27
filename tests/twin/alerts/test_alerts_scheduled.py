"""Scheduled alerts: fixed kind, place, brightness and time, joined to the random stream."""

import pytest
from pydantic import ValidationError

from twin.alerts.lightcurves import KINDS
from twin.alerts.stream import AlertSpec, ScheduledAlert, generate_alerts

START_MJD = 60000.0


def _entry(**changes) -> dict:
    fields = dict(
        kind="sn_cc", ra_deg=204.25, dec_deg=-29.87, issued_after_start_days=0.5, peak_mag_r=16.0
    )
    return {**fields, **changes}


def test_scheduled_alone_at_zero_rate():
    spec = AlertSpec(rate_per_day=0.0, scheduled=[_entry(), _entry(issued_after_start_days=0.2)])
    alerts = generate_alerts(spec, START_MJD, START_MJD + 2.0, seed=1)
    # Sorted by issue time; ids follow the order of the list, not of issue.
    assert [a.alert_id for a in alerts] == ["alert-sched-01", "alert-sched-00"]
    assert [a.issued_mjd for a in alerts] == pytest.approx([START_MJD + 0.2, START_MJD + 0.5])
    first = alerts[1]
    assert (first.kind, first.ra_deg, first.dec_deg, first.peak_mag_r) == (
        "sn_cc",
        204.25,
        -29.87,
        16.0,
    )
    # No delay given: t0 is the middle of the kind's discovery-delay range before the issue.
    low, high = spec.discovery_delay_days["sn_cc"]
    assert first.issued_mjd - first.t0_mjd == pytest.approx(0.5 * (low + high))


def test_own_discovery_delay_sets_t0():
    spec = AlertSpec(rate_per_day=0.0, scheduled=[_entry(discovery_delay_days=2.0)])
    (alert,) = generate_alerts(spec, START_MJD, START_MJD + 1.0, seed=1)
    assert alert.t0_mjd == pytest.approx(START_MJD + 0.5 - 2.0)


def test_random_stream_unchanged_and_merged_in_issue_order():
    random_only = generate_alerts(AlertSpec(rate_per_day=3.0), START_MJD, START_MJD + 10.0, 7)
    spec = AlertSpec(rate_per_day=3.0, scheduled=[_entry(issued_after_start_days=4.5)])
    merged = generate_alerts(spec, START_MJD, START_MJD + 10.0, 7)
    assert [a for a in merged if "sched" not in a.alert_id] == random_only
    issued = [a.issued_mjd for a in merged]
    assert issued == sorted(issued) and len(merged) == len(random_only) + 1


def test_outside_the_period_left_out_and_epoch_for_joined_periods():
    spec = AlertSpec(rate_per_day=0.0, scheduled=[_entry(issued_after_start_days=3.0)])
    assert generate_alerts(spec, START_MJD, START_MJD + 2.0, seed=1) == []
    # Joined periods with one epoch: the alert falls in the second period only, once.
    first = generate_alerts(spec, START_MJD, START_MJD + 2.0, 1, schedule_epoch_mjd=START_MJD)
    second = generate_alerts(
        spec, START_MJD + 2.0, START_MJD + 4.0, 1, id_prefix="p1", schedule_epoch_mjd=START_MJD
    )
    assert first == [] and [a.alert_id for a in second] == ["p1-sched-00"]
    assert second[0].issued_mjd == pytest.approx(START_MJD + 3.0)


def test_unknown_kind_names_the_allowed_kinds():
    with pytest.raises(ValidationError) as error:
        AlertSpec(scheduled=[_entry(kind="tde")])
    message = str(error.value)
    assert "tde" in message and all(kind in message for kind in KINDS)


@pytest.mark.parametrize(
    "changes",
    [
        {"ra_deg": 360.0},
        {"dec_deg": -91.0},
        {"issued_after_start_days": -0.1},
        {"peak_mag_r": 31.0},
        {"discovery_delay_days": 0.0},
        {"issued_days": 0.5},
    ],
    ids=["ra", "dec", "before-start", "peak", "delay", "unknown-field"],
)
def test_bad_entries_rejected(changes):
    with pytest.raises(ValidationError):
        ScheduledAlert(**_entry(**changes))
