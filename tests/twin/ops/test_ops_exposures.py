"""The loop's at-once detection of an alert exposure equals the day's batch truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twin.ops.exposures import exposure_columns, exposure_detected, exposure_m5, exposure_truth
from twin.ops.network import NetworkTwin
from twin.ops.policies import resolve_policy
from twin.ops.stepping import NullRecorder
from twin.ops.world import World
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]


def test_alert_detection_at_once_equals_the_batch_truth():
    scenario = load_scenario(ROOT / "scenarios" / "global-3site-transients.yaml", nights=3,
                             seed=4)  # fmt: skip
    twin = NetworkTwin(World(scenario), resolve_policy("greedy"), NullRecorder())
    seen: dict[str, list] = {}  # telescope -> [(its world, exposure)]

    def observer(unit, exposure):
        if twin.queue.requests[exposure.request_row].alert_id:
            seen.setdefault(unit.world.name, []).append((unit.world, exposure))

    twin.add_observer(observer)
    twin.run()
    assert sum(map(len, seen.values())) >= 16
    for items in seen.values():
        tw, exposures = items[0][0], [e for _, e in items]
        batch = exposure_truth(tw, twin.queue, exposure_columns(exposures), twin._alert_mag)
        at_once = [exposure_m5(tw, twin.queue, e) for e in exposures]
        # Bit for bit: the same functions on the same values, one row or many.
        assert np.asarray(at_once).tobytes() == batch["m5"].tobytes()
        detected = [exposure_detected(tw, twin.queue, e, twin._alert_mag) for e in exposures]
        np.testing.assert_array_equal(detected, batch["detected"])
        # A transient exactly at the depth is detected, one ulp fainter is not.
        for e, m5 in zip(exposures, at_once, strict=True):
            assert exposure_detected(tw, twin.queue, e, lambda *_, m=m5: m)
            assert not exposure_detected(tw, twin.queue, e,
                                         lambda *_, m=m5: np.nextafter(m, np.inf))  # fmt: skip
