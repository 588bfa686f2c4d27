"""The classifier's second operating point: when a real candidate may *raise* an alert.

Two decisions ride on P(real). Counting a candidate as a detection of an alert the
centre already knows is cheap, and missing one delays a confirmation: the stage's
``real_threshold`` keeps 99 % of the validation split's real candidates (1 % missed).
Raising the network's *own* alert sends follow-up and a confirmation request to other
sites, so it needs the issue's false-positive budget instead: ``alert_threshold`` is the
P(real) above which at most :data:`ALERT_FPR` (0.5 %) of the validation split's bogus
candidates lie. Both are chosen on the validation split only (never on test or in a
run) and written beside the weights, in ``operating_points.json``, which
:func:`models.transient.classifier.load_classifier` reads:

    .venv/bin/python -m models.transient.operating --data outputs/transient/data

also reports, for information, the missed and false-positive rates the alert threshold
gives on the test and unseen splits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ALERT_FPR = 0.005
"""The issue's false-positive target: the budget for raising a network alert."""
OPERATING_FILE = "operating_points.json"


def threshold_at_fpr(label: np.ndarray, score: np.ndarray, fpr: float = ALERT_FPR) -> float:
    """The lowest threshold (``real ⇔ score ≥ t``) with at most ``fpr`` of bogus above it."""
    bogus = np.sort(np.asarray(score)[np.asarray(label) == 0])[::-1]
    if bogus.size == 0:
        return 0.0
    k = int(np.floor(fpr * bogus.size))  # bogus allowed at or above the threshold
    return float(np.nextafter(bogus[k], np.inf))


def rates(label: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    real, bogus = score[label == 1], score[label == 0]
    return {"n_real": int(real.size), "n_bogus": int(bogus.size),
            "mdr": float(np.mean(real < threshold)) if real.size else float("nan"),
            "fpr": float(np.mean(bogus >= threshold)) if bogus.size else float("nan")}  # fmt: skip


def operating_points(data_dir: str | Path, weights_path: str | Path | None = None) -> dict:
    """The alert threshold from the validation split, and its rates on every split."""
    from models.transient.classifier import WEIGHTS_DIR, WEIGHTS_NAME, load_classifier
    from models.transient.dataset import load_split

    weights_path = Path(weights_path or WEIGHTS_DIR / WEIGHTS_NAME)
    rb = load_classifier(weights_path)
    out: dict = {"weights": weights_path.name, "version": rb.version, "alert_fpr": ALERT_FPR,
                 "real_threshold": rb.real_threshold, "splits": {}}  # fmt: skip
    scored = {}
    for split in ("val", "test", "unseen"):
        triplets, table = load_split(data_dir, (split,))
        if table.empty:
            continue
        scored[split] = (table["label"].to_numpy(), rb.predict_proba(triplets, table))
    label, score = scored["val"]
    out["alert_threshold"] = threshold_at_fpr(label, score)
    for split, (label, score) in scored.items():
        out["splits"][split] = {"alert": rates(label, score, out["alert_threshold"]),
                                "real": rates(label, score, rb.real_threshold)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict:
    import torch

    import twin  # noqa: F401  (offline astropy)
    from models.transient.classifier import WEIGHTS_DIR, WEIGHTS_NAME

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the dataset (skytwin models dataset)")
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = operating_points(args.data, args.weights_dir / WEIGHTS_NAME)
    result["command"] = f"python -m models.transient.operating --data {args.data}"
    (args.weights_dir / OPERATING_FILE).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
