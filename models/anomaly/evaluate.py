"""Evaluate the shipped anomaly model on the test split: ROC AUC and precision@k per fault.

The test split comes from runs whose seeds neither training nor calibration saw; each
faulted frame has exactly one fault. Per class, the class's frames are ranked against the
normal test frames by the anomaly score:

- ROC AUC: the probability that a faulted frame scores above a normal one (ties half).
- precision@k: the fraction of faulted frames among the ``k`` highest scores, for
  ``k`` = 50 and ``k`` = the number of faulted frames (R-precision).

Beside it, the classical baseline: the same features and calibration with the
"reconstruction" a flat sky at 0 (the frame's own pixel statistics, no model), and the
AUC of each feature alone. A gallery PNG shows, per class, inputs, reconstructions and
heat maps. The metrics go into ``weights/manifest.json`` (``metrics``) and
``OUT/evaluation.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.anomaly.dataset import CLASSES, DEFAULT_OUT, load
from models.anomaly.train import WEIGHTS_DIR, calibrate, split_tensors
from models.metrics import precision_at_k
from models.metrics import roc_auc as _roc_auc


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC of positive scores ``pos`` against negative scores ``neg``."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    return _roc_auc(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])


def class_metrics(scores: np.ndarray, cls: np.ndarray) -> dict[str, dict[str, float]]:
    neg = scores[cls == "normal"]
    out = {}
    for c in CLASSES[1:]:
        pos = scores[cls == c]
        if len(pos):
            out[c] = {
                "roc_auc": round(roc_auc(pos, neg), 4),
                "precision_at_50": round(precision_at_k(pos, neg, 50), 4),
                f"precision_at_{len(pos)}": round(precision_at_k(pos, neg, len(pos)), 4),
                "n": len(pos),
            }
    out["normal"] = {"n": len(neg)}
    return out


def score_all(model, x, mu, sd, flat: bool = False):
    """``(scores, features)`` of ``x`` (``flat``: against a reconstruction of 0)."""
    import torch

    from models.anomaly.model import anomaly_score, features

    model.eval()
    feats = []
    with torch.no_grad():
        for xb in x.split(128):
            feats.append(features(xb, torch.zeros_like(xb) if flat else model(xb))[0])
    f = torch.cat(feats)
    return anomaly_score(f, mu, sd).numpy(), f.numpy()


def gallery(model, x, cls: np.ndarray, scores: np.ndarray, path: Path, per_class: int = 4) -> None:
    """Per class: the ``per_class`` frames at the class's score quartiles, as input /
    reconstruction / heat map, titled with their scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from models.anomaly.model import features

    fig, axes = plt.subplots(
        3 * len(CLASSES), per_class, figsize=(2.2 * per_class, 6.6 * len(CLASSES))
    )
    for r, c in enumerate(CLASSES):
        idx = np.flatnonzero(cls == c)
        idx = idx[np.argsort(scores[idx])]
        picks = idx[np.linspace(0, len(idx) - 1, per_class).round().astype(int)] if len(idx) else []
        for j, i in enumerate(picks):
            xb = x[i : i + 1]
            with torch.no_grad():
                recon = model(xb)
                heat = features(xb, recon)[1][0].numpy()
            for k, (img, kw) in enumerate(
                [
                    (xb[0, 0].numpy(), {"vmin": -0.3, "vmax": 1.0}),
                    (recon[0, 0].numpy(), {"vmin": -0.3, "vmax": 1.0}),
                    (heat, {"vmin": 0.0, "vmax": 0.05, "cmap": "inferno"}),
                ]
            ):
                ax = axes[3 * r + k, j]
                ax.imshow(img, origin="lower", cmap=kw.pop("cmap", "gray"), **kw)
                ax.set_xticks([])
                ax.set_yticks([])
                if k == 0:
                    ax.set_title(f"{c} {scores[i]:.1f}", fontsize=8)
            axes[3 * r, 0].set_ylabel("input", fontsize=8)
            axes[3 * r + 1, 0].set_ylabel("reconstruction", fontsize=8)
            axes[3 * r + 2, 0].set_ylabel("heat map", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    import torch

    from models.anomaly.model import FEATURES, ConvAutoencoder

    p = argparse.ArgumentParser(
        prog="skytwin models evaluate anomaly", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", type=Path, default=DEFAULT_OUT)
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    manifest_path = args.weights / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    model = ConvAutoencoder(**manifest["config"])
    model.load_state_dict(torch.load(args.weights / manifest["weights"], weights_only=True))
    images, meta = load(args.data, ("val", "test"))
    test = (meta["split"] == "test").to_numpy()
    x = torch.from_numpy(images[test].astype(np.float32))[:, None]
    cls = meta.loc[test, "cls"].to_numpy()
    mu, sd = (torch.tensor(manifest["calibration"][k]) for k in ("mu", "sd"))
    scores, feats = score_all(model, x, mu, sd)
    metrics = {"model": class_metrics(scores, cls)}
    metrics["per_feature_auc"] = {
        name: {
            c: round(roc_auc(feats[cls == c, i], feats[cls == "normal", i]), 4) for c in CLASSES[1:]
        }
        for i, name in enumerate(FEATURES)
    }
    val_x = split_tensors(images, meta, "val")
    flat_cal = calibrate_flat(val_x)
    base_scores, _ = score_all(model, x, *flat_cal, flat=True)
    metrics["baseline_flat_sky"] = class_metrics(base_scores, cls)
    metrics["normal_score_quantiles"] = {
        q: round(float(np.quantile(scores[cls == "normal"], q)), 3) for q in (0.5, 0.9, 0.99)
    }
    gallery(model, x, cls, scores, args.data / "anomaly_gallery.png")
    (args.data / "evaluation.json").write_text(json.dumps(metrics, indent=2))
    manifest["metrics"] = metrics
    manifest_path.write_text(json.dumps(manifest, indent=2))
    for c, m in metrics["model"].items():
        print(c, m, "baseline", metrics["baseline_flat_sky"][c])
    print(f"gallery: {args.data / 'anomaly_gallery.png'}")


def calibrate_flat(val_x):
    """The baseline's calibration: features of normal validation frames against 0."""
    import torch

    from models.anomaly.model import features

    f = torch.cat([features(xb, torch.zeros_like(xb))[0] for xb in val_x.split(128)])
    return f.mean(0), f.std(0).clamp_min(1e-6)


__all__ = ["calibrate", "class_metrics", "precision_at_k", "roc_auc"]
