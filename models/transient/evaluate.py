"""Figures of the real/bogus classifier beside the VGG6 baseline, on data neither saw.

``skytwin models evaluate transient --data DIR [--weights DIR] [--out DIR]``

For the ``test`` split (held-out frame seeds and another static sky) and the ``unseen``
split (a site and a telescope never in training, :data:`~.dataset.UNSEEN_SITE`), for
our model (``realbogus.pt``) and the braai-like baseline (``vgg6.pt``) on the same
candidates:

- at each model's ``real_threshold`` (fixed on the ``val`` split at 1 % missed-detection
  rate, *not* refitted here): the MDR and FPR it gives on the split; this is the
  figure compared with the issue's target (FPR ≤ 0.5 % at 1 % MDR);
- for reference, the FPR at exactly 1 % MDR on the split itself (an oracle threshold:
  what the ROC curve says, as papers quote it);
- ROC AUC (:func:`models.metrics.roc_auc`, Mann-Whitney);
- the same at ``|Scorr| ≥ 10`` (:data:`BRIGHT_SCORR`; its threshold also from val);
- rejection (fraction scored below the threshold) per bogus class;
- recall of the *injections* (every injected source outside ZOGY's mask, found or not;
  the masked ones are counted and left out): found = a real candidate within 1.5 px
  scored ≥ the threshold; binned in ``mag − m5`` (m5: the twin's
  5σ depth of the new frame) and in injected SNR, with the 50 % point of a logistic fit
  in ``mag − m5`` (target: within 0.3 mag of m5), beside the same for detection alone
  (``|Scorr| ≥ 5``), which no classifier can beat.

Writes ``evaluation.json`` and ``evaluation.png`` into ``out`` (default: the weights
folder), and the figures into its ``manifest.json``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from models.metrics import roc_auc

TARGETS = {"fpr_at_1pct_mdr": 0.005, "m50_minus_m5_abs_mag": 0.3}
ANCHORS = {"ATLAS CNN FPR at 1% MDR": 0.0072, "ZTF braai FPR (FNR 1.1%)": 0.029}
SPLITS = ("test", "unseen")
MAG_BINS = np.arange(-3.0, 0.51, 0.25)
SNR_BINS = np.array([0, 3, 5, 7, 10, 15, 20, 30, 50, 100, 1e6])
BRIGHT_SCORR = 10.0
"""The secondary figure: candidates with ``|Scorr| ≥ 10`` only (threshold again from
val). Why: at 1 % MDR over *every* detection the threshold is set by the faintest
5-6σ reals, which no cut-out tells from noise; surveys quote their FPR on curated,
mostly brighter, real sets (braai's reals are ZTF alerts scanned by people)."""


def scores(weights_path: Path, triplets: np.ndarray, table: pd.DataFrame):
    """``(P(real), threshold, version)`` of the classifier in ``weights_path``."""
    from models.transient.classifier import load_classifier

    rb = load_classifier(weights_path)
    return rb.predict_proba(triplets.astype(np.float32), table), rb.real_threshold, rb.version


def fpr_at_mdr(label: np.ndarray, score: np.ndarray, mdr: float = 0.01) -> float:
    from models.transient.train import fpr_at_threshold, threshold_at_mdr

    return fpr_at_threshold(label, score, threshold_at_mdr(label, score, mdr))


def classifier_figures(table: pd.DataFrame, score: np.ndarray, threshold: float) -> dict:
    y = table["label"].to_numpy()
    real, bogus = score[y == 1], score[y == 0]
    per_class = {}
    for name, group in table[y == 0].groupby("bogus_class"):
        s = score[group.index.to_numpy()]
        per_class[name] = {"n": len(s), "rejected": float((s < threshold).mean())}
    return {
        "threshold_from_val": threshold,
        "mdr": float((real < threshold).mean()) if real.size else float("nan"),
        "fpr": float((bogus >= threshold).mean()) if bogus.size else float("nan"),
        "fpr_at_1pct_mdr_oracle": fpr_at_mdr(y, score),
        "roc_auc": roc_auc(y, score),
        "bogus_rejection": per_class,
    }


def recall_figures(injections: pd.DataFrame, table: pd.DataFrame, score: np.ndarray,
                   threshold: float) -> dict:  # fmt: skip
    """Recall of every injection outside ZOGY's mask against ``mag − m5`` and injected
    SNR (module docstring); by kind at the end."""
    if injections.empty:
        return {"n_injections": 0}
    inj = injections.assign(inj_index=injections.groupby("pair_id").cumcount())
    masked = inj["masked"].to_numpy(bool)
    inj = inj[~masked]
    is_real = (table["label"].to_numpy() == 1) & (table["inj_index"].to_numpy() >= 0)
    keys = pd.MultiIndex.from_arrays(
        [table.loc[is_real, "pair_id"], table.loc[is_real, "inj_index"]]
    )
    best = pd.Series(score[is_real], index=keys).groupby(level=[0, 1]).max()
    idx = pd.MultiIndex.from_arrays([inj["pair_id"], inj["inj_index"]])
    inj = inj.assign(score=best.reindex(idx).fillna(-1.0).to_numpy())
    inj["found"] = inj["score"] >= threshold
    dm = (inj["mag"] - inj["m5_mag"]).to_numpy()
    out = {"n_injections": len(inj), "n_masked_left_out": int(masked.sum()),
           "found_by_kind": inj.groupby("kind")["found"].mean().to_dict(),
           "detected_by_kind": inj.groupby("kind")["detected"].mean().to_dict()}  # fmt: skip
    for what, flag in (("classified", inj["found"]), ("detected", inj["detected"])):
        flag = flag.to_numpy(bool)
        out[what] = {
            "mag_minus_m5_bins": _binned(dm, flag, MAG_BINS),
            "snr_bins": _binned(inj["snr"].to_numpy(), flag, SNR_BINS),
            "m50_minus_m5": _m50(dm, flag),
        }
    return out


def _binned(x: np.ndarray, flag: np.ndarray, edges: np.ndarray) -> list[dict]:
    rows = []
    for lo, hi in itertools.pairwise(edges):
        sel = (x >= lo) & (x < hi)
        if sel.sum():
            rows.append({"lo": float(lo), "hi": float(hi), "n": int(sel.sum()),
                         "recall": float(flag[sel].mean())})  # fmt: skip
    return rows


def _m50(dm: np.ndarray, flag: np.ndarray) -> float:
    """Where a logistic ``1 / (1 + exp((dm − m50) / w))`` fitted to the outcomes is ½."""
    from scipy.optimize import minimize

    if len(dm) < 10 or flag.all() or not flag.any():
        return float("nan")

    def nll(p):
        z = np.clip((dm - p[0]) / max(abs(p[1]), 1e-3), -50, 50)
        prob = np.clip(1.0 / (1.0 + np.exp(z)), 1e-9, 1 - 1e-9)
        return -np.sum(np.where(flag, np.log(prob), np.log(1.0 - prob)))

    m50 = float(minimize(nll, [0.0, 0.2], method="Nelder-Mead").x[0])
    inside = dm.min() - 0.5 <= m50 <= dm.max() + 0.5
    return m50 if inside else float("nan")  # no turnover in the range: no 50 % point


def _bright_thresholds(data_dir, models: dict) -> dict[str, float]:
    """Per model, the 1 % MDR threshold of the *val* split's candidates with
    ``|Scorr| ≥`` :data:`BRIGHT_SCORR` (the secondary figure's threshold)."""
    from models.transient.dataset import load_split
    from models.transient.train import threshold_at_mdr

    triplets, table = load_split(data_dir, ("val",))
    bright = table["scorr_abs"].to_numpy() >= BRIGHT_SCORR
    out = {}
    for name, path in models.items():
        score, _, _ = scores(path, triplets[bright], table[bright].reset_index(drop=True))
        out[name] = threshold_at_mdr(table["label"].to_numpy()[bright], score)
    return out


def evaluate(data_dir, weights_dir=None, out=None) -> dict:
    """The figures on both evaluation splits; JSON and PNG into ``out``."""
    from models.transient.classifier import BASELINE_NAME, WEIGHTS_DIR, WEIGHTS_NAME
    from models.transient.dataset import load_injections, load_pairs, load_split

    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    out = Path(out or weights_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = {k: weights_dir / n for k, n in (("ours", WEIGHTS_NAME), ("vgg6", BASELINE_NAME))}
    models = {k: p for k, p in models.items() if p.exists()}
    pairs = load_pairs(data_dir)
    injections = load_injections(data_dir)
    report: dict = {"data": str(data_dir), "weights": str(weights_dir), "targets": TARGETS,
                    "anchors": ANCHORS, "splits": {}}  # fmt: skip
    curves = {}
    bright_thr = _bright_thresholds(data_dir, models)
    report["bright_thresholds_from_val"] = bright_thr
    for split in SPLITS:
        triplets, table = load_split(data_dir, (split,))
        split_pairs = pairs[pairs["split"] == split]
        split_inj = injections[injections["split"] == split] if len(injections) else injections
        entry = {"n_pairs": len(split_pairs),
                 "n_failed_pairs": int((split_pairs["failed"] != "").sum()),
                 "n_candidates": len(table), "n_real": int(table["label"].sum()),
                 "n_bogus": int((table["label"] == 0).sum()), "models": {}}  # fmt: skip
        for name, path in models.items():
            score, thr, version = scores(path, triplets, table)
            fig = classifier_figures(table, score, thr)
            fig["version"] = version
            fig["recall"] = recall_figures(split_inj, table, score, thr)
            bright = table["scorr_abs"].to_numpy() >= BRIGHT_SCORR
            fig["bright"] = {
                "scorr_at_least": BRIGHT_SCORR, "n_real": int(table["label"][bright].sum()),
                "n_bogus": int((table["label"][bright] == 0).sum()),
                **{k: fig_b[k] for fig_b in [classifier_figures(
                    table[bright].reset_index(drop=True), score[bright], bright_thr[name])]
                   for k in ("threshold_from_val", "mdr", "fpr", "fpr_at_1pct_mdr_oracle")},
            }  # fmt: skip
            entry["models"][name] = fig
            curves[(split, name)] = (table["label"].to_numpy(), score, fig)
        report["splits"][split] = entry
    report["figure_png"] = str(figure(out / "evaluation.png", curves))
    (out / "evaluation.json").write_text(json.dumps(report, indent=1))
    manifest_path = weights_dir / "manifest.json"
    if manifest_path.exists() and out == weights_dir:
        manifest = json.loads(manifest_path.read_text())
        manifest["metrics"] = {
            split: {name: {k: m[k] for k in ("mdr", "fpr", "fpr_at_1pct_mdr_oracle", "roc_auc")}
                    | {"m50_minus_m5": m["recall"]["classified"]["m50_minus_m5"]}
                    for name, m in e["models"].items()}
            for split, e in report["splits"].items()
        }  # fmt: skip
        manifest_path.write_text(json.dumps(manifest, indent=1))
    return report


def figure(path: Path, curves: dict) -> Path:
    """ROC (log FPR), recall vs mag − m5, per-class rejection: test and unseen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for (split, name), (y, s, fig_) in curves.items():
        style = "-" if split == "test" else "--"
        order = np.argsort(-s)
        tp = np.cumsum(y[order] == 1) / max((y == 1).sum(), 1)
        fp = np.cumsum(y[order] == 0) / max((y == 0).sum(), 1)
        axes[0].plot(np.clip(fp, 1e-4, 1), 1 - tp, style, label=f"{name} {split}")
        rows = fig_["recall"]["classified"]["mag_minus_m5_bins"]
        axes[1].plot([0.5 * (r["lo"] + r["hi"]) for r in rows], [r["recall"] for r in rows],
                     style + "o", ms=3, label=f"{name} {split}")  # fmt: skip
    for split in SPLITS:
        key = next(((sp, n) for sp, n in curves if sp == split), None)
        if key is None:
            continue
        rows = curves[key][2]["recall"]["detected"]["mag_minus_m5_bins"]
        axes[1].plot([0.5 * (r["lo"] + r["hi"]) for r in rows], [r["recall"] for r in rows],
                     "k:" if split == "test" else "k-.", lw=1.5,
                     label=f"detected |Scorr|≥5 {split}")  # fmt: skip
    axes[0].axvline(0.005, color="k", lw=0.5)
    axes[0].axhline(0.01, color="k", lw=0.5)
    axes[0].set(xscale="log", yscale="log", xlabel="false-positive rate",
                ylabel="missed-detection rate",
                title="ROC (lines: FPR 0.5 %, MDR 1 %)")  # fmt: skip
    axes[1].axvline(0.0, color="k", lw=0.5)
    axes[1].set(xlabel="injected mag − m5", ylabel="recall at the val threshold",
                title="recall of injections", ylim=(0, 1.02))  # fmt: skip
    names = sorted({c for v in curves.values() for c in v[2]["bogus_rejection"]})
    width = 0.8 / max(len(curves), 1)
    for k, ((split, name), (_, _, fig_)) in enumerate(curves.items()):
        rej = [fig_["bogus_rejection"].get(c, {}).get("rejected", np.nan) for c in names]
        axes[2].bar(np.arange(len(names)) + k * width, rej, width, label=f"{name} {split}")
    axes[2].set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right")
    axes[2].set(ylabel="rejected at the val threshold", ylim=(0.0, 1.02),
                title="bogus rejection per class")  # fmt: skip
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_table(report: dict) -> str:
    lines = [f"{'split':<7} {'model':<5} {'cands':>6} {'real':>5} {'thr(val)':>8} {'MDR':>6} "
             f"{'FPR':>7} {'FPR@1%':>7} {'AUC':>7} {'m50-m5':>7}"]  # fmt: skip
    for split, e in report["splits"].items():
        for name, m in e["models"].items():
            lines.append(
                f"{split:<7} {name:<5} {e['n_candidates']:>6} {e['n_real']:>5} "
                f"{m['threshold_from_val']:>8.4f} {m['mdr']:>6.2%} {m['fpr']:>7.2%} "
                f"{m['fpr_at_1pct_mdr_oracle']:>7.2%} {m['roc_auc']:>7.4f} "
                f"{m['recall']['classified']['m50_minus_m5']:>+7.2f}"
            )
    return "\n".join(lines)
