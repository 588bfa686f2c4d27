"""Evaluate the shipped anomaly model on the test split: ROC AUC and precision@k per fault.

The test split comes from runs whose seeds *and nights* neither training nor calibration
saw (no (site, night, pointing) shared; :mod:`models.anomaly.dataset`); each faulted
frame has exactly one fault. Per class, the class's frames are ranked against the normal
test frames by the anomaly score:

- ROC AUC: the probability that a faulted frame scores above a normal one (ties half).
- precision@k: the fraction of faulted frames among the ``k`` highest scores, for
  ``k`` = 50 and ``k`` = the number of faulted frames (R-precision).

Beside it:

- ``model_novel_pointings``: the same, on the test frames (normal and faulted) whose
  field no training frame showed on any night (the survey fields and monitoring targets
  recur from night to night; stars the autoencoder might have memorised are not there).
- ``model_mse_score``: the textbook score, the z-score of the mean squared error alone.
- ``baseline_flat_sky``: the classical baseline, the same features, score and
  calibration with the "reconstruction" a flat sky at 0: residual statistics of the
  preprocessed frame itself, no model.
- ``per_feature_auc``: each feature alone (model residual).
- ``dev_val``: the score on the validation split's faulted frames against its normal
  ones (which are also the calibration frames, so a little flattering): what chose the
  score's features, reported so the choice can be checked.

A gallery PNG (``OUT/anomaly_gallery.png``) shows, per class, inputs, reconstructions
and heat maps; ``weights/roc.png`` the ROC curves per class of the model, the baseline
and the mean-squared-error score. The metrics go into ``weights/manifest.json``
(``metrics``), ``weights/evaluation.json`` and ``OUT/evaluation.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

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


def score_all(model, x, mu, sd, flat: bool = False, use=None):
    """``(scores, features)`` of ``x`` (``flat``: against a reconstruction of 0; ``use``:
    the features the score takes, default :data:`~models.anomaly.model.SCORE_FEATURES`)."""
    import torch

    from models.anomaly.model import SCORE_FEATURES, anomaly_score, features

    model.eval()
    feats = []
    with torch.no_grad():
        for xb in x.split(128):
            feats.append(features(xb, torch.zeros_like(xb) if flat else model(xb))[0])
    f = torch.cat(feats)
    return anomaly_score(f, mu, sd, tuple(use or SCORE_FEATURES)).numpy(), f.numpy()


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
                    (heat, {"vmin": 0.0, "vmax": 4.0, "cmap": "inferno"}),
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


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """One panel per fault class: ROC curves of each named score (``curves``: name →
    ``(scores, classes)`` of the test frames), the AUC in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CLASSES) - 1, figsize=(3.0 * (len(CLASSES) - 1), 3.2))
    for ax, c in zip(axes, CLASSES[1:], strict=True):
        for name, (scores, cls) in curves.items():
            pos, neg = scores[cls == c], scores[cls == "normal"]
            cuts = np.unique(np.r_[pos, neg])[::-1]
            tpr = np.r_[0.0, [(pos >= t).mean() for t in cuts]]
            fpr = np.r_[0.0, [(neg >= t).mean() for t in cuts]]
            ax.plot(fpr, tpr, label=f"{name} {roc_auc(pos, neg):.3f}")
        ax.plot([0, 1], [0, 1], color="0.8", lw=0.8)
        ax.set_title(c)
        ax.set_xlabel("false positive rate")
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("true positive rate")
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
    use = tuple(manifest.get("score_features") or ())
    images, meta = load(args.data, ("val", "test"))
    train_meta = pd.read_parquet(args.data / "anomaly-train.meta.parquet")
    mu, sd = (torch.tensor(manifest["calibration"][k]) for k in ("mu", "sd"))

    def tensors(split):
        m = (meta["split"] == split).to_numpy()
        x = torch.from_numpy(images[m].astype(np.float32))[:, None]
        return x, meta.loc[m, "cls"].to_numpy(), meta.loc[m].reset_index(drop=True)

    x, cls, test_meta = tensors("test")
    scores, feats = score_all(model, x, mu, sd, use=use)
    metrics = {"model": class_metrics(scores, cls)}
    novel = ~test_meta["pointing"].isin(set(train_meta["pointing"])).to_numpy()
    metrics["model_novel_pointings"] = class_metrics(scores[novel], cls[novel])
    mse, _ = score_all(model, x, mu, sd, use=("mean",))
    metrics["model_mse_score"] = class_metrics(mse, cls)
    metrics["per_feature_auc"] = {
        name: {
            c: round(roc_auc(feats[cls == c, i], feats[cls == "normal", i]), 4) for c in CLASSES[1:]
        }
        for i, name in enumerate(FEATURES)
    }
    val_x = split_tensors(images, meta, "val")
    flat_cal = calibrate_flat(val_x)
    base_scores, _ = score_all(model, x, *flat_cal, flat=True, use=use)
    metrics["baseline_flat_sky"] = class_metrics(base_scores, cls)
    dev_x, dev_cls, _ = tensors("val")
    dev_scores, _ = score_all(model, dev_x, mu, sd, use=use)
    metrics["dev_val"] = class_metrics(dev_scores, dev_cls)
    metrics["normal_score_quantiles"] = {
        q: round(float(np.quantile(scores[cls == "normal"], q)), 3) for q in (0.5, 0.9, 0.99)
    }
    metrics["test_frames"] = {"all": len(cls), "novel_pointings": int(novel.sum())}
    gallery(model, x, cls, scores, args.data / "anomaly_gallery.png")
    curves = {"autoencoder": (scores, cls), "flat-sky baseline": (base_scores, cls),
              "AE mean sq. error": (mse, cls)}  # fmt: skip
    roc_figure(curves, args.weights / "roc.png")
    (args.data / "evaluation.json").write_text(json.dumps(metrics, indent=2))
    (args.weights / "evaluation.json").write_text(json.dumps(metrics, indent=2))
    manifest["metrics"] = metrics
    manifest_path.write_text(json.dumps(manifest, indent=2))
    print(table(metrics))
    print(f"gallery: {args.data / 'anomaly_gallery.png'}, ROC: {args.weights / 'roc.png'}")


def table(metrics: dict) -> str:
    """A Markdown table: per class, ROC AUC and R-precision of each score on test."""
    rows = [
        ("model", "autoencoder, local+stripes"),
        ("model_novel_pointings", "same, fields never in training"),
        ("model_mse_score", "autoencoder, mean squared error"),
        ("baseline_flat_sky", "flat-sky baseline, local+stripes"),
    ]
    head = "| score | " + " | ".join(f"{c} AUC / P@n" for c in CLASSES[1:]) + " |"
    lines = [head, "|" + "---|" * (len(CLASSES))]
    for key, label in rows:
        cells = []
        for c in CLASSES[1:]:
            m = metrics[key][c]
            r = m[f"precision_at_{m['n']}"]
            cells.append(f"{m['roc_auc']:.3f} / {r:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibrate_flat(val_x):
    """The baseline's calibration: features of normal validation frames against 0."""
    import torch

    from models.anomaly.model import features

    f = torch.cat([features(xb, torch.zeros_like(xb))[0] for xb in val_x.split(128)])
    return f.mean(0), f.std(0).clamp_min(1e-6)


__all__ = ["calibrate", "class_metrics", "precision_at_k", "roc_auc"]
