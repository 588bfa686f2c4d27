"""Site-centre links against hand-computed figures.

Defaults: 150 ms one way, 50 Mbit/s = 6.25e6 byte/s, so 100 MB (10^8 byte) takes 16 s.
Hand-built schedules (``Link.from_outages``) make the exact checks; drawn ones the
statistical ones.
"""

import itertools
import math

import numpy as np
import pytest
from pydantic import ValidationError

from twin.ops.links import DataUplink, Link, LinkSpec, frame_size_bytes

T0 = 60000.0  # MJD
SECOND = 1.0 / 86_400.0  # day
HOUR = 1.0 / 24.0
LATENCY = 0.150 * SECOND
ABS_MJD = 1e-6 * SECOND  # 1 µs: well above float rounding at MJD 6e4 (~1e-11 day)

SPEC = LinkSpec()


def ideal_link() -> Link:
    return Link.from_outages("site-a", SPEC, [], T0, T0 + 1.0)


def one_outage_link() -> Link:
    """Down for one hour from T0 + 0.5 day."""
    return Link.from_outages("site-a", SPEC, [(T0 + 0.5, T0 + 0.5 + HOUR)], T0, T0 + 1.0)


def test_spec_defaults_and_derived_figures():
    assert SPEC.latency_ms == 150.0
    assert SPEC.bandwidth_mbit_s == 50.0
    assert SPEC.bytes_per_s == 6.25e6
    assert SPEC.mean_outage_h == pytest.approx(math.exp(0.32), rel=1e-12)
    assert SPEC.down_fraction == pytest.approx(math.exp(0.32) / (72.0 + math.exp(0.32)))


def test_bad_spec_names_the_field():
    with pytest.raises(ValidationError, match="bandwidth_mbit_s"):
        LinkSpec(bandwidth_mbit_s=-10.0)
    with pytest.raises(ValidationError, match="latency_s"):
        LinkSpec(latency_s=0.1)  # unknown field: the unit is in the name (latency_ms)


def test_down_fraction_over_a_long_span():
    # Short up times so ~1e5 cycles fit in 70 years: the fraction's relative standard
    # error is ~0.5%, the 3% tolerance is > 5 sigma.
    spec = LinkSpec(mtbf_h=5.0, mttr_h=1.0, outage_sigma_ln=0.8)
    link = Link("site-a", spec, 7, T0, T0 + 70 * 365.25)
    outages = np.array(link.outages())
    down = np.minimum(outages[:, 1], link.end_mjd) - outages[:, 0]
    fraction = down.sum() / (link.end_mjd - link.start_mjd)
    assert fraction == pytest.approx(spec.down_fraction, rel=0.03)
    up_times_h = (outages[1:, 0] - outages[:-1, 1]) * 24.0
    assert up_times_h.mean() == pytest.approx(5.0, rel=0.03)
    assert np.median((outages[:, 1] - outages[:, 0]) * 24.0) == pytest.approx(1.0, rel=0.03)
    # The vectorised mask on a fine grid agrees with the intervals.
    grid = np.linspace(link.start_mjd, link.end_mjd, 2_000_001)
    assert 1.0 - link.up_mask(grid).mean() == pytest.approx(fraction, rel=0.01)


def test_schedule_is_reproducible_and_per_site():
    a = Link("site-a", SPEC, 123, T0, T0 + 365.0)
    assert (
        a.outages() == Link("site-a", SPEC, np.random.SeedSequence(123), T0, T0 + 365.0).outages()
    )
    assert a.outages() != Link("site-b", SPEC, 123, T0, T0 + 365.0).outages()
    assert a.outages() != Link("site-a", SPEC, 124, T0, T0 + 365.0).outages()
    # Around 365 * 24 / 73.4 = 119 outages a year.
    assert 80 < len(a.outages()) < 160
    # A longer span extends the schedule without changing its start.
    longer = Link("site-a", SPEC, 123, T0, T0 + 3 * 365.0).outages()
    full = [o for o in a.outages() if o[1] <= T0 + 365.0]
    assert longer[: len(full)] == full


def test_outages_events_and_is_up_agree():
    link = Link("site-a", SPEC, 5, T0, T0 + 60.0)
    outages = link.outages()
    assert outages == sorted(outages)
    assert all(s < e for s, e in outages)
    assert all(e < s for (_, e), (s, _) in itertools.pairwise(outages))
    assert link.is_up(T0)  # every link starts up
    events = link.events()
    assert [name for _, name in events[:4]] == ["link_down", "link_up"] * 2
    assert [t for t, _ in events] == sorted(t for t, _ in events)
    start, end = outages[0]
    assert not link.is_up(start) and link.is_up(end)  # down on [start, end)
    assert link.next_up_mjd(start) == end
    assert link.next_up_mjd(end) == end
    times = np.array([start - SECOND, start, (start + end) / 2, end, end + SECOND])
    np.testing.assert_array_equal(link.up_mask(times), [link.is_up(t) for t in times])
    assert link.up_mask(times.reshape(5, 1)).shape == (5, 1)


def test_message_when_up_takes_the_latency():
    assert ideal_link().message_arrival_mjd(T0 + 0.25) == pytest.approx(
        T0 + 0.25 + LATENCY, abs=ABS_MJD
    )
    link = one_outage_link()
    assert link.message_arrival_mjd(T0 + 0.25) == pytest.approx(T0 + 0.25 + LATENCY, abs=ABS_MJD)


def test_message_during_outage_waits_for_its_end():
    link = one_outage_link()
    end = T0 + 0.5 + HOUR
    assert link.message_arrival_mjd(T0 + 0.5 + 0.5 * HOUR) == pytest.approx(
        end + LATENCY, abs=ABS_MJD
    )
    assert link.message_arrival_mjd(T0 + 0.5) == pytest.approx(end + LATENCY, abs=ABS_MJD)


def test_message_in_flight_when_link_drops_is_resent():
    link = one_outage_link()
    end = T0 + 0.5 + HOUR
    # Sent 50 ms before the outage: still in flight when it starts.
    assert link.message_arrival_mjd(T0 + 0.5 - 0.05 * SECOND) == pytest.approx(
        end + LATENCY, abs=ABS_MJD
    )
    # Sent 200 ms before: arrived 50 ms before the outage.
    sent = T0 + 0.5 - 0.2 * SECOND
    assert link.message_arrival_mjd(sent) == pytest.approx(sent + LATENCY, abs=ABS_MJD)


def test_bulk_data_at_bandwidth():
    uplink = DataUplink(ideal_link())
    assert uplink.send(T0 + 0.1, 100e6) == pytest.approx(
        T0 + 0.1 + 16 * SECOND + LATENCY, abs=ABS_MJD
    )
    assert uplink.busy_until_mjd == pytest.approx(T0 + 0.1 + 16 * SECOND, abs=ABS_MJD)


def test_transfer_across_an_outage_is_delayed_by_its_length():
    sent = T0 + 0.5 - 8 * SECOND  # half of the 16 s goes before the outage
    clear = DataUplink(ideal_link()).send(sent, 100e6)
    delayed = DataUplink(one_outage_link()).send(sent, 100e6)
    assert delayed - clear == pytest.approx(HOUR, abs=ABS_MJD)
    # A transfer queued during the outage starts when it ends.
    during = DataUplink(one_outage_link()).send(T0 + 0.5 + 0.1 * HOUR, 100e6)
    assert during == pytest.approx(T0 + 0.5 + HOUR + 16 * SECOND + LATENCY, abs=ABS_MJD)


def test_fifo_second_send_waits_for_the_first():
    uplink = DataUplink(ideal_link())
    t = T0 + 0.1
    first = uplink.send(t, 100e6)
    second = uplink.send(t + 4 * SECOND, 100e6)  # first still has 12 s to go
    assert second - first == pytest.approx(16 * SECOND, abs=ABS_MJD)
    assert second == pytest.approx(t + 32 * SECOND + LATENCY, abs=ABS_MJD)
    # At t + 4 s: 200 MB queued, 4 s * 6.25 MB/s = 25 MB sent.
    assert uplink.backlog_bytes(t + 4 * SECOND) == pytest.approx(175e6, rel=1e-6)
    assert uplink.backlog_bytes(t + 40 * SECOND) == 0.0
    # Once the queue is empty a new send starts at once.
    third = uplink.send(t + 60 * SECOND, 6.25e6)
    assert third == pytest.approx(t + 61 * SECOND + LATENCY, abs=ABS_MJD)


def test_backlog_does_not_count_the_outage():
    uplink = DataUplink(one_outage_link())
    uplink.send(T0 + 0.5 - 8 * SECOND, 100e6)
    # During the outage half the data (8 s worth) is still waiting.
    assert uplink.backlog_bytes(T0 + 0.5 + 0.5 * HOUR) == pytest.approx(50e6, rel=1e-6)


def test_send_out_of_order_raises():
    uplink = DataUplink(ideal_link())
    uplink.send(T0 + 0.2, 1e6)
    with pytest.raises(ValueError, match=r"sent_mjd = 60000\.1 is before .* 60000\.2"):
        uplink.send(T0 + 0.1, 1e6)
    with pytest.raises(ValueError, match="size_bytes"):
        uplink.send(T0 + 0.3, -1.0)


def test_many_sends_on_a_drawn_schedule_keep_their_uptime():
    # Each transfer spends exactly size / rate seconds of up time on the link.
    link = Link("site-a", LinkSpec(mtbf_h=2.0, mttr_h=0.5), 11, T0, T0 + 30.0)
    uplink = DataUplink(link)
    rng = np.random.default_rng(0)
    sent = np.sort(rng.uniform(T0, T0 + 29.0, 2000))
    sizes = rng.uniform(0.0, 2e9, 2000)  # up to 320 s each: queues build up
    previous_end = -math.inf
    for t, size in zip(sent.tolist(), sizes.tolist(), strict=True):
        start = max(t, previous_end)
        arrival = uplink.send(t, size)
        end = uplink.busy_until_mjd
        assert link.uptime_s(start, end) == pytest.approx(size / SPEC.bytes_per_s, abs=1e-4)
        assert link.is_up(end) or end in dict(link.outages())
        assert arrival >= end + LATENCY - ABS_MJD
        previous_end = end


def test_frame_size():
    assert frame_size_bytes(4096, 4096) == 32 * 2**20
    assert frame_size_bytes(4096, 4096, compression=2.0) == 16 * 2**20
    assert frame_size_bytes(100, 100, bytes_per_pixel=4) == 40_000
    with pytest.raises(ValueError, match="compression"):
        frame_size_bytes(10, 10, compression=0.0)


def test_bad_span_and_bad_outage_log_raise():
    with pytest.raises(ValueError, match="end_mjd"):
        Link("site-a", SPEC, 1, T0, T0)
    with pytest.raises(ValueError, match="sorted"):
        Link.from_outages("site-a", SPEC, [(T0 + 0.5, T0 + 0.4)], T0, T0 + 1.0)
