"""The alert operating point: chosen from validation bogus scores, read with the weights."""

import numpy as np

from models.transient.operating import rates, threshold_at_fpr


def test_threshold_at_fpr_lets_at_most_that_share_of_bogus_through():
    rng = np.random.default_rng(0)
    score = np.concatenate([rng.uniform(0, 1, 2000), rng.uniform(0.5, 1, 200)])
    label = np.concatenate([np.zeros(2000, int), np.ones(200, int)])
    t = threshold_at_fpr(label, score, 0.005)
    r = rates(label, score, t)
    assert r["fpr"] <= 0.005 and r["fpr"] >= 0.004  # as many as allowed, no more
    assert r["mdr"] == np.mean(score[2000:] < t)


def test_the_shipped_classifier_raises_alerts_only_above_its_detection_threshold():
    import json
    from pathlib import Path

    from models.transient.classifier import WEIGHTS_DIR, load_classifier

    rb = load_classifier()
    points = json.loads((Path(WEIGHTS_DIR) / "operating_points.json").read_text())
    assert rb.alert_threshold == points["alert_threshold"] > rb.real_threshold
    assert points["splits"]["val"]["alert"]["fpr"] <= 0.005
