"""ROC AUC without scikit-learn, checked against cases computed by hand."""

import math

import numpy as np

from models.quality.evaluate import roc_auc


def test_roc_auc_by_hand():
    # Pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) lose, (0.8, 0.1) win, (0.8, 0.4) win → 3/4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts half
    assert roc_auc([1, 1, 0], [3, 2, 1]) == 1.0
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_roc_auc_matches_the_pair_count():
    rng = np.random.default_rng(0)
    y = rng.uniform(size=200) < 0.3
    s = rng.normal(size=200) + y
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert abs(roc_auc(y, s) - pairs) < 1e-12
