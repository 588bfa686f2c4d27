"""Classification figures the model evaluations share (no scikit-learn needed).

One home, so the quality and anomaly evaluations report the same AUC for the same
scores.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count half); NaN when a class is
    missing."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_at_k(pos: np.ndarray, neg: np.ndarray, k: int) -> float:
    """Fraction of positives among the ``k`` highest scores; a tie at the cut goes to the
    negatives (they come first in the stable sort), so ties never flatter the model."""
    scores = np.concatenate([np.asarray(neg, float), np.asarray(pos, float)])
    labels = np.concatenate([np.zeros(len(neg)), np.ones(len(pos))])
    top = np.argsort(-scores, kind="stable")[: min(k, len(scores))]
    return float(labels[top].mean())
