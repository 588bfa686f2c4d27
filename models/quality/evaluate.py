"""Figures of the quality model beside the SEP baseline, on data it never trained on.

``skytwin models evaluate quality --data DIR [--weights DIR] [--out DIR]``

For each of the ``heldout`` split (run seeds never trained on, sites seen) and the
``unseen`` split (the held-out site and its telescopes, :data:`~.dataset.UNSEEN_SITE`):
per-flag ROC AUC of the model and of :mod:`models.quality.baseline`, seeing MAE (″) and
score MAE (0–100) of both, and a reliability diagram of the flag probabilities (PNG).
Nothing is fitted here: AUC needs no threshold, the model's probabilities are its
sigmoids, the baseline's thresholds are fixed in its module.

ROC AUC is the Mann–Whitney statistic ``P(s+ > s-) + ½ P(s+ = s-)`` from average ranks
(:func:`roc_auc`), so no scikit-learn is needed.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from models.metrics import roc_auc
from twin.pipeline.stage import FLAG_NAMES

TARGETS = {"auc_heldout": 0.97, "auc_unseen": 0.93, "seeing_mae_arcsec": 0.08, "score_mae": 5.0}


def model_outputs(weights_dir, data: dict, batch: int = 64) -> dict[str, np.ndarray]:
    import torch

    from models.quality.features import normalise_image
    from models.quality.stage import load_model

    model, _ = load_model(weights_dir)
    scores, seeing, probs = [], [], []
    with torch.inference_mode():
        for start in range(0, len(data["image"]), batch):
            images = np.stack([normalise_image(im) for im in data["image"][start : start + batch]])
            side = data["side"][start : start + batch].astype(np.float32)
            out = model(torch.from_numpy(images)[:, None], torch.from_numpy(side))
            scores.append(out["score"].numpy())
            seeing.append(out["seeing"].numpy())
            probs.append(torch.sigmoid(out["logits"]).numpy())
    return {"score": np.concatenate(scores), "seeing": np.concatenate(seeing),
            "probs": np.concatenate(probs)}  # fmt: skip


def _measure(args):
    from models.quality.baseline import measure

    return measure(*args)


def baseline_outputs(data: dict, processes: int = 2) -> dict[str, np.ndarray]:
    from models.quality.baseline import probabilities

    jobs = list(zip(data["image"], data["headers"], strict=True))
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            stats = list(pool.map(_measure, jobs, chunksize=16))
    else:
        stats = [_measure(j) for j in jobs]
    return {
        "score": np.array([s["score"] for s in stats]),
        "seeing": np.array([s["seeing"] for s in stats]),
        "stat": np.array([[s[n] for n in FLAG_NAMES] for s in stats]),
        "probs": np.array([[probabilities(s)[n] for n in FLAG_NAMES] for s in stats]),
    }


def cached_baseline(data_dir: Path, split: str, data: dict, processes: int,
                    max_frames: int | None) -> dict[str, np.ndarray]:  # fmt: skip
    """:func:`baseline_outputs`, kept in ``DATA/sep_SPLIT.npz`` (it does not depend on the
    weights; the file names the baseline version so a changed baseline is re-measured)."""
    from models.quality.baseline import BASELINE_VERSION

    path = data_dir / f"sep_{split}.npz"
    if max_frames is None and path.exists():
        with np.load(path, allow_pickle=False) as z:
            if str(z["version"]) == BASELINE_VERSION and len(z["score"]) == len(data["score"]):
                return {k: z[k] for k in ("score", "seeing", "stat", "probs")}
    base = baseline_outputs(data, processes)
    if max_frames is None:
        np.savez(path, version=np.array(BASELINE_VERSION), **base)
    return base


def figures(data: dict, model: dict | None, base: dict) -> dict:
    """AUC per flag, MAEs, positives, for one split."""
    out: dict = {"n": len(data["score"]), "positives": {}, "auc_model": {}, "auc_sep": {}}
    for k, name in enumerate(FLAG_NAMES):
        y = data["flags"][:, k]
        out["positives"][name] = int(y.sum())
        out["auc_sep"][name] = roc_auc(y, base["stat"][:, k])
        if model is not None:
            out["auc_model"][name] = roc_auc(y, model["probs"][:, k])
    for who, res in (("model", model), ("sep", base)):
        if res is not None:
            out[f"seeing_mae_{who}"] = float(np.mean(np.abs(res["seeing"] - data["seeing"])))
            out[f"score_mae_{who}"] = float(np.mean(np.abs(res["score"] - data["score"])))
    for who in ("model", "sep"):
        aucs = [v for v in out[f"auc_{who}"].values() if np.isfinite(v)]
        out[f"auc_sum_{who}"] = float(np.sum(aucs)) if aucs else float("nan")
    return out


def reliability_plot(path: Path, results: dict[str, tuple[dict, dict, dict]]) -> Path:
    """Observed frequency vs predicted probability (10 bins, all flags pooled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.5), squeeze=False)
    bins = np.linspace(0, 1, 11)
    for ax, (split, (data, model, base)) in zip(axes[0], results.items(), strict=True):
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        for who, res in (("CNN", model), ("SEP", base)):
            if res is None:
                continue
            p, y = res["probs"].ravel(), data["flags"].ravel()
            which = np.clip(np.digitize(p, bins) - 1, 0, 9)
            mids = [p[which == b].mean() for b in range(10) if (which == b).sum() >= 5]
            freq = [y[which == b].mean() for b in range(10) if (which == b).sum() >= 5]
            ax.plot(mids, freq, "o-", label=who)
        ax.set(title=f"{split} (all flags)", xlabel="predicted probability",
               ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1))  # fmt: skip
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_table(report: dict) -> str:
    lines = []
    for split, f in report["splits"].items():
        lines.append(f"\n{split}: {f['n']} frames")
        lines.append(f"{'flag':<11} {'pos':>5} {'CNN AUC':>8} {'SEP AUC':>8}")
        for name in FLAG_NAMES:
            m = f["auc_model"].get(name, float("nan"))
            lines.append(
                f"{name:<11} {f['positives'][name]:>5} {m:>8.3f} {f['auc_sep'][name]:>8.3f}"
            )
        lines.append(f"{'sum':<11} {'':>5} {f.get('auc_sum_model', float('nan')):>8.3f} "
                     f"{f['auc_sum_sep']:>8.3f}")  # fmt: skip
        for what, unit in (("seeing_mae", "″"), ("score_mae", "")):
            lines.append(f"{what:<11} {'':>5} {f.get(what + '_model', float('nan')):>8.3f} "
                         f"{f[what + '_sep']:>8.3f} {unit}")  # fmt: skip
    return "\n".join(lines)


def evaluate(data_dir, weights_dir=None, out=None, processes: int = 2,
             max_frames: int | None = None) -> dict:  # fmt: skip
    """Compute the figures on both evaluation splits; write JSON and PNG into ``out``."""
    from models.quality.dataset import load_split
    from models.quality.stage import WEIGHTS_DIR

    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    out = Path(out or weights_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"data": str(data_dir), "weights": str(weights_dir), "targets": TARGETS,
                    "splits": {}}  # fmt: skip
    plots = {}
    for split in ("heldout", "unseen"):
        data = load_split(data_dir, split)
        if max_frames:
            data = {k: v[:max_frames] for k, v in data.items()}
        model = model_outputs(weights_dir, data)
        base = cached_baseline(Path(data_dir), split, data, processes, max_frames)
        report["splits"][split] = figures(data, model, base)
        plots[split] = (data, model, base)
    report["reliability_png"] = str(reliability_plot(out / "reliability.png", plots))
    (out / "evaluation.json").write_text(json.dumps(report, indent=1))
    manifest_path = weights_dir / "manifest.json"
    if manifest_path.exists() and out == weights_dir:
        manifest = json.loads(manifest_path.read_text())
        manifest["metrics"] = {
            split: {k: f[k] for k in ("n", "auc_model", "auc_sep", "seeing_mae_model",
                                      "seeing_mae_sep", "score_mae_model", "score_mae_sep")}
            for split, f in report["splits"].items()
        }  # fmt: skip
        manifest_path.write_text(json.dumps(manifest, indent=1))
    return report
