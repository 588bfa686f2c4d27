"""The learned fusion's numbers on held-out stacks, beside the proper coadd.

``skytwin models evaluate fusion --data DIR [--weights DIR] [--out DIR] [--calibrate]``

Everything on the dataset's ``heldout`` split (seeds never used in training), in the
stored units (the coadd's sky σ), on every pixel of the 96² crops but a 4-px border:

- **Image error**, learned vs proper, against the truth (the proper coadd of the
  consistent noiseless frames), as ratios learned / proper (:func:`error_rows`): the RMS
  of the residual in units of the proper coadd's per-pixel σ, the same weighted by the
  truth, and the truth-weighted residual in flux; on consistent stacks (the issue: within
  2 %) and inconsistent ones, overall, by injected kind (stacks with that kind only)
  and over the labelled pixels.
- **Calibration**: ``z = (fused − truth) / σ``; its standard deviation (and RMS) over
  all pixels and per bin fixed in advance — stack kind, median input seeing (< 1.3,
  1.3–1.8, > 1.8″) and pixel brightness (truth < 1, 1–10, > 10 sky σ) — beside the
  proper coadd's own ``z`` with its exact variance (which knows nothing of clouds).
- **Flags**: pixel ROC AUC per kind (positives: pixels of that kind in a frame;
  negatives: pixels of frames with no label there), scored by the "any" probability and
  by the kind's own; beside a classical score, ``|D_j|`` smoothed by a 1.5-px Gaussian
  (the ZOGY difference of the frame against the others). Regions: connected areas of a
  frame with "any" > 0.5 (a threshold fixed before evaluation, not tuned), named by
  their most probable kind; per injected frame, whether one overlaps its labels and is
  named right; per consistent stack, how many regions are raised.

``--calibrate`` first runs :func:`calibrate`: the two inference settings (gates as
trained, or gates times the frame's flag probability) and the variance scale are chosen
on the train split's validation stacks and written to the manifest, never on the
held-out stacks reported here.

Writes ``OUT/evaluation.json`` and ``OUT/fusion_example.png`` (inputs, proper, learned,
σ map, flags of two held-out stacks: a trail and a cloud).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

from models.fusion.inputs import KINDS

BORDER = 4
REGION_THRESHOLD = 0.5
SEEING_BINS_ARCSEC = (1.3, 1.8)
BRIGHTNESS_BINS_SIGMA = (1.0, 10.0)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U from ranks, ties averaged)."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def predict(data: dict, model) -> dict[str, np.ndarray]:
    """Fused image, variance and flag probabilities of every stack of ``data``."""
    from models.fusion.learned import fuse_arrays

    fused, var, flags = [], [], []
    for i in range(len(data["base"])):
        n = int(data["valid"][i].sum())
        out = fuse_arrays(
            model,
            data["difference"][i, :n].astype(np.float32),
            data["removal"][i, :n],
            data["base"][i],
            data["variance"][i],
            data["meta"][i, :n],
        )
        fused.append(out["fused"])
        var.append(out["variance"])
        padded = np.zeros((len(data["valid"][i]), *out["flags"].shape[1:]), np.float32)
        padded[:n] = out["flags"]
        flags.append(padded)
    return {"fused": np.stack(fused), "variance": np.stack(var), "flags": np.stack(flags)}


def _rms(e: np.ndarray, w: np.ndarray | None = None) -> float:
    if w is None:
        return float(np.sqrt(np.mean(e**2)))
    return float(np.sqrt(np.sum(w * e**2) / max(np.sum(w), 1e-12)))


def error_rows(data, pred, inner) -> dict:
    """Error ratios, learned / proper, by stack group, three ways:

    - ``chi_rms``: RMS of ``(image − truth) / σ_proper`` (the proper coadd's exact
      per-pixel σ, shot noise of sources included), every pixel alike;
    - ``chi_truth_weighted_rms``: the same weighted by ``max(truth, 0)``: where the light is;
    - ``flux_truth_weighted_rms``: ``image − truth`` in sky-σ units, weighted by the truth:
      dominated by the brightest stars, whose shot noise (and the twin's finite
      star stamps, the same in both) it measures more than any inconsistency;

    and ``labelled_chi_rms`` over the pixels any frame's labels cover.
    """
    truth = data["truth"][:, inner, inner]
    sigma = np.sqrt(data["variance"][:, inner, inner])
    e_learned = (pred["fused"] - data["truth"])[:, inner, inner]
    e_proper = (data["base"] - data["truth"])[:, inner, inner]
    weight = np.maximum(truth, 0.0)
    any_label = (data["labels"][:, :, inner, inner] > 0).any(1)
    out = {}
    for name, sel in stack_groups(data).items():
        if not sel.any():
            continue
        row = {"n_stacks": int(sel.sum())}
        cases = (
            ("chi_rms", sigma[sel], None),
            ("chi_truth_weighted_rms", sigma[sel], weight[sel]),
            ("flux_truth_weighted_rms", 1.0, weight[sel]),
        )
        for tag, scale, w in cases:
            learned = _rms(e_learned[sel] / scale, w)
            proper = _rms(e_proper[sel] / scale, w)
            row[f"{tag}_learned"], row[f"{tag}_proper"] = learned, proper
            row[f"{tag}_ratio"] = learned / proper
        lab = any_label[sel]
        if lab.any():
            row["labelled_chi_rms_learned"] = _rms((e_learned[sel] / sigma[sel])[lab])
            row["labelled_chi_rms_proper"] = _rms((e_proper[sel] / sigma[sel])[lab])
            row["labelled_chi_rms_ratio"] = (
                row["labelled_chi_rms_learned"] / row["labelled_chi_rms_proper"]
            )
        out[name] = row
    return out


def stack_groups(data) -> dict[str, np.ndarray]:
    """Consistent, inconsistent, and one group per kind (stacks with that kind only)."""
    injected = np.bitwise_or.reduce(data["injected"], axis=1)
    groups = {"consistent": injected == 0, "inconsistent": injected > 0}
    for k, kind in enumerate(KINDS):
        groups[kind] = injected == (1 << k)
    return groups


def calibration_rows(data, pred, inner) -> dict:
    """std and RMS of z, learned and proper, overall and per bin (module docstring)."""
    truth = data["truth"][:, inner, inner]
    z_l = ((pred["fused"] - data["truth"]) / np.sqrt(pred["variance"]))[:, inner, inner]
    z_p = ((data["base"] - data["truth"]) / np.sqrt(data["variance"]))[:, inner, inner]
    seeing = data["seeing_median_arcsec"]
    s_bin = np.digitize(seeing, SEEING_BINS_ARCSEC)
    b_bin = np.digitize(truth, BRIGHTNESS_BINS_SIGMA)
    full = np.ones(truth.shape, bool)
    bins = {"all": full}
    for name, sel in stack_groups(data).items():
        bins[f"stacks_{name}"] = full & sel[:, None, None]
    for k, label in enumerate(("seeing<1.3", "seeing1.3-1.8", "seeing>1.8")):
        bins[f"median_{label}"] = full & (s_bin == k)[:, None, None]
    for k, label in enumerate(("truth<1sigma", "truth1-10sigma", "truth>10sigma")):
        bins[label] = b_bin == k
    out = {}
    for name, sel in bins.items():
        if sel.sum() < 100:
            continue
        out[name] = {
            "n_pix": int(sel.sum()),
            "z_std_learned": float(np.std(z_l[sel])),
            "z_rms_learned": float(np.sqrt(np.mean(z_l[sel] ** 2))),
            "z_std_proper": float(np.std(z_p[sel])),
            "z_rms_proper": float(np.sqrt(np.mean(z_p[sel] ** 2))),
        }
    return out


def flag_rows(data, pred, inner) -> dict:
    """Pixel ROC AUC per kind: the "any" score, the kind's own, and |D| smoothed."""
    valid = data["valid"]
    labels = data["labels"][:, :, inner, inner][valid]
    probs = pred["flags"][:, :, :, inner, inner][valid]
    smoothed = ndimage.gaussian_filter(data["difference"].astype(np.float32), (0, 0, 1.5, 1.5))
    classical = np.abs(smoothed)[:, :, inner, inner][valid]
    negative = labels == 0
    rng = np.random.default_rng(0)  # a fixed subsample of negatives keeps the ranks cheap
    neg_idx = np.flatnonzero(negative.ravel())
    neg_idx = np.sort(rng.choice(neg_idx, min(len(neg_idx), 400_000), replace=False))
    out = {}
    for k, kind in enumerate(KINDS):
        pos_idx = np.flatnonzero(((labels >> k) & 1).ravel())
        if len(pos_idx) == 0:
            continue
        idx = np.concatenate([pos_idx, neg_idx])
        is_pos = np.zeros(len(idx), bool)
        is_pos[: len(pos_idx)] = True
        out[kind] = {
            "n_pos_pix": len(pos_idx),
            "n_neg_pix": len(neg_idx),
            "auc_any": roc_auc(probs[:, -1].ravel()[idx], is_pos),
            "auc_kind": roc_auc(probs[:, k].ravel()[idx], is_pos),
            "auc_classical_abs_difference": roc_auc(classical.ravel()[idx], is_pos),
        }
    return out


def region_rows(data, pred, inner) -> dict:
    """Region-level flags at p > REGION_THRESHOLD (module docstring)."""
    found = {kind: [0, 0, 0] for kind in KINDS}  # injected frames, overlapped, named right
    false_regions, consistent = 0, 0
    for i in range(len(data["base"])):
        n = int(data["valid"][i].sum())
        is_consistent = not data["injected"][i].any()
        consistent += is_consistent
        for j in range(n):
            flags = pred["flags"][i, j][:, inner, inner]
            regions, count = ndimage.label(flags[-1] > REGION_THRESHOLD)
            if is_consistent:
                false_regions += count
            labels = data["labels"][i, j][inner, inner]
            for k, kind in enumerate(KINDS):
                mine = (labels >> k) & 1 > 0
                if not mine.any():
                    continue
                found[kind][0] += 1
                hit = np.unique(regions[mine & (regions > 0)])
                if len(hit):
                    found[kind][1] += 1
                    area = np.isin(regions, hit)
                    named = int(np.argmax([flags[q][area].mean() for q in range(len(KINDS))]))
                    found[kind][2] += named == k
    return {
        "threshold": REGION_THRESHOLD,
        "per_kind": {
            kind: {
                "labelled_frames": a,
                "flagged": b,
                "named_right": c,
                "flagged_fraction": b / a if a else None,
            }
            for kind, (a, b, c) in found.items()
        },
        "regions_per_consistent_stack": false_regions / max(consistent, 1),
    }


def evaluate(
    data_dir: str | Path,
    weights: str | Path | None = None,
    out: str | Path | None = None,
    figure: bool = True,
) -> dict:
    """The report (module docstring), written to ``OUT/evaluation.json``."""
    import torch

    from models.fusion.dataset import load_split
    from models.fusion.learned import WEIGHTS_DIR, load_model

    torch.set_num_threads(1)
    out = Path(out) if out is not None else Path(weights) if weights else WEIGHTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(weights)
    data = load_split(data_dir, "heldout")
    pred = predict(data, model)
    size = data["base"].shape[-1]
    inner = slice(BORDER, size - BORDER)
    report = {
        "data": str(data_dir),
        "split": "heldout",
        "n_stacks": len(data["base"]),
        "units": "the proper coadd's sky sigma (1 / F_R)",
        "border_pix": BORDER,
        "image_error": error_rows(data, pred, inner),
        "calibration": calibration_rows(data, pred, inner),
        "flags_auc": flag_rows(data, pred, inner),
        "flag_regions": region_rows(data, pred, inner),
    }
    if figure:
        report["figure"] = str(example_figure(data, pred, out / "fusion_example.png"))
    (out / "evaluation.json").write_text(json.dumps(report, indent=1))
    return report


def calibrate(data_dir: str | Path, weights: str | Path | None = None, seed: int = 0) -> dict:
    """Choose the inference settings on the *validation* stacks (the train split's seeded
    10 % that training never fits; the held-out split is not read), and write them to the
    weights' manifest under ``inference``:

    - ``gate_by_flag`` (see :func:`models.fusion.learned.fused_from`): on if it gives the
      lower of the worse of the consistent and inconsistent truth-weighted χ ratios;
    - ``variance_scale``: the mean of z² with that setting, so z has unit RMS on them.
    """
    import torch

    from models.fusion.dataset import load_split
    from models.fusion.learned import WEIGHTS_DIR, WEIGHTS_NAME, load_model
    from models.fusion.train import validation_split

    torch.set_num_threads(1)
    model = load_model(weights)
    data = load_split(data_dir, "train")
    val_idx, _ = validation_split(len(data["base"]), seed)
    data = {k: v[val_idx] for k, v in data.items()}
    size = data["base"].shape[-1]
    inner = slice(BORDER, size - BORDER)
    rows = {}
    for gate_by_flag in (False, True):
        model.gate_by_flag, model.variance_scale = gate_by_flag, 1.0
        pred = predict(data, model)
        errors = error_rows(data, pred, inner)
        z = ((pred["fused"] - data["truth"]) / np.sqrt(pred["variance"]))[:, inner, inner]
        rows[str(gate_by_flag)] = {
            "chi_truth_weighted_ratio": {
                g: errors[g]["chi_truth_weighted_rms_ratio"] for g in ("consistent", "inconsistent")
            },
            "chi_ratio": {g: errors[g]["chi_rms_ratio"] for g in ("consistent", "inconsistent")},
            "mean_z2": float(np.mean(z**2)),
        }
    choice = min(
        (False, True), key=lambda m: max(rows[str(m)]["chi_truth_weighted_ratio"].values())
    )
    settings = {
        "gate_by_flag": choice,
        "variance_scale": rows[str(choice)]["mean_z2"],
        "chosen_on": f"{len(val_idx)} validation stacks of the train split (seed {seed})",
        "validation": rows,
    }
    path = Path(weights) if weights is not None else WEIGHTS_DIR
    manifest_path = (path.parent if path.name == WEIGHTS_NAME else path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["inference"] = settings
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return settings


def example_figure(data, pred, path: Path) -> Path:
    """Inputs (D_j), proper, learned, σ and flags of a trail and a cloud held-out stack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    injected = np.bitwise_or.reduce(data["injected"], axis=1)
    picks = [
        int(np.flatnonzero(injected == (1 << KINDS.index(k)))[0])
        for k in ("trail", "cloud")
        if (injected == (1 << KINDS.index(k))).any()
    ]
    fig, axes = plt.subplots(2 * len(picks), 5, figsize=(13, 5.4 * len(picks)))
    axes = np.atleast_2d(axes)
    for row, i in enumerate(picks):
        n = int(data["valid"][i].sum())
        top, bottom = axes[2 * row], axes[2 * row + 1]
        for j in range(5):
            ax = top[j]
            if j < n:
                ax.imshow(data["difference"][i, j].astype(float), cmap="RdBu_r", vmin=-5, vmax=5)
                kinds = [KINDS[k] for k in range(len(KINDS)) if data["injected"][i, j] >> k & 1]
                ax.set_title(f"input {j}: D_j {'(' + ','.join(kinds) + ')' if kinds else ''}")
            ax.axis("off")
        top_sigma = max(float(np.percentile(data["truth"][i], 99.9)), 10.0)
        panels = [
            ("truth", data["truth"][i]),
            ("proper", data["base"][i]),
            ("learned", pred["fused"][i]),
        ]
        for ax, (title, img) in zip(bottom[:3], panels, strict=True):  # asinh stretch
            ax.imshow(np.arcsinh(img / 3.0), cmap="gray", vmin=-1.0, vmax=np.arcsinh(top_sigma / 3))
            ax.set_title(f"{title} (asinh, σ units)")
        im = bottom[3].imshow(np.sqrt(pred["variance"][i]), cmap="magma")
        bottom[3].set_title("learned σ")
        plt.colorbar(im, ax=bottom[3], fraction=0.046)
        flags = pred["flags"][i, :n, -1]
        bottom[4].imshow(flags.max(0), cmap="viridis", vmin=0, vmax=1)
        bottom[4].contour(
            flags.argmax(0) == int(np.argmax(data["injected"][i] > 0)),
            [0.5],
            colors="w",
            linewidths=0.3,
        )
        bottom[4].set_title("flag p (max over frames)")
        for ax in bottom:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def format_table(report: dict) -> str:
    """A short text summary of :func:`evaluate`'s report."""
    lines = ["image error (learned / proper):"]
    for name, row in report["image_error"].items():
        lines.append(
            f"  {name:13s} n={row['n_stacks']:4d} chi {row['chi_rms_ratio']:.3f} "
            f"chi truth-weighted {row['chi_truth_weighted_rms_ratio']:.3f} "
            f"flux truth-weighted {row['flux_truth_weighted_rms_ratio']:.3f} "
            f"labelled {row.get('labelled_chi_rms_ratio', float('nan')):.3f}"
        )
    lines.append("z std (learned, proper):")
    for name, row in report["calibration"].items():
        lines.append(f"  {name:26s} {row['z_std_learned']:.3f}  {row['z_std_proper']:.3f}")
    lines.append("flag AUC (any, kind, classical |D|):")
    for kind, row in report["flags_auc"].items():
        lines.append(
            f"  {kind:11s} {row['auc_any']:.3f} {row['auc_kind']:.3f} "
            f"{row['auc_classical_abs_difference']:.3f}"
        )
    return "\n".join(lines)
