"""Train a real/bogus classifier: ``skytwin models train transient --data DIR --arch A``.

Reads the ``train`` split to fit and the ``val`` split to choose the epoch and the
threshold; ``test`` and ``unseen`` are for :mod:`models.transient.evaluate` alone.

Why an epoch is a subsample: the dataset holds ~30 bogus candidates per real one, and
one core trains ~100 candidates a second. Each epoch sees every real candidate and a
fresh random ``bogus_per_epoch`` bogus ones (seeded), with the loss weighted so both
classes weigh the same (``pos_weight`` = bogus / real in the epoch). Augmentation:
flips along each axis (they keep a bad column a column; a 90° rotation would not).

The epoch kept is the one with the lowest validation FPR at 1 % missed-detection rate
(ties: the lower validation loss); ``real_threshold`` is the P(real) that misses 1 %
of the validation set's real candidates (:func:`threshold_at_mdr`).

Resumable: ``OUT/checkpoint_<arch>.pt`` after every epoch, removed when training ends
(model, optimiser, best state, history, the numpy and torch generators' states; plain
tensors, numbers and JSON text, so ``torch.load(weights_only=True)`` reads it).
Deterministic for a seed on CPU (``torch.use_deterministic_algorithms``, one torch
generator for the initialisation and dropout, one numpy generator for subsamples and
flips).

Writes ``OUT/realbogus.pt`` (``arch="triplet"``) or ``OUT/vgg6.pt`` (the baseline) with
:func:`models.transient.classifier.save_classifier`, and their entry in
``OUT/manifest.json`` (commands, data index, history, threshold, sha256).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

MODEL_VERSIONS = {"triplet": "realbogus-triplet-1", "vgg6": "realbogus-vgg6-1"}
TARGET_MDR = 0.01


def threshold_at_mdr(label: np.ndarray, score: np.ndarray, mdr: float = TARGET_MDR) -> float:
    """The highest score threshold (``real ⇔ score ≥ t``) missing at most ``mdr`` of the
    real candidates."""
    real = np.sort(np.asarray(score)[np.asarray(label) == 1])
    if real.size == 0:
        return 0.5
    return float(real[int(np.floor(mdr * real.size))])


def fpr_at_threshold(label: np.ndarray, score: np.ndarray, threshold: float) -> float:
    bogus = np.asarray(score)[np.asarray(label) == 0]
    return float((bogus >= threshold).mean()) if bogus.size else float("nan")


def weights_name(arch: str) -> str:
    from models.transient.classifier import BASELINE_NAME, WEIGHTS_NAME

    return WEIGHTS_NAME if arch == "triplet" else BASELINE_NAME


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(features, axis=0)
    std = np.nanstd(features, axis=0)
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def _standardise(table, mean, std) -> np.ndarray:
    from models.transient.cutouts import FEATURE_COLUMNS

    x = table.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32)
    return np.nan_to_num((x - mean) / std).astype(np.float32)


def _epoch_indices(label: np.ndarray, bogus_per_epoch: int, rng: np.random.Generator):
    real, bogus = np.flatnonzero(label == 1), np.flatnonzero(label == 0)
    if len(bogus) > bogus_per_epoch:
        bogus = rng.choice(bogus, bogus_per_epoch, replace=False)
    return rng.permutation(np.r_[real, bogus])


def predict_logits(model, triplets, side, batch: int = 256) -> np.ndarray:
    import torch

    model.eval()
    out = np.empty(len(triplets), np.float32)
    with torch.inference_mode():
        for s in range(0, len(triplets), batch):
            x = torch.from_numpy(triplets[s : s + batch].astype(np.float32))
            out[s : s + batch] = model(x, torch.from_numpy(side[s : s + batch])).numpy()
    return out


def train(data_dir: str | Path, out: str | Path, *, arch: str = "triplet", epochs: int = 10,
          seed: int = 0, batch: int = 64, lr: float = 2e-3, bogus_per_epoch: int = 5000,
          threads: int | None = 1, resume: bool = False, progress: bool = True,
          max_train: int | None = None, argv: list[str] | None = None) -> dict:  # fmt: skip
    """Train ``arch`` on ``data_dir``'s train split; write the weights into ``out``."""
    import torch

    from models.transient.classifier import build_model, save_classifier
    from models.transient.cutouts import CUTOUT_PX, FEATURE_COLUMNS
    from models.transient.dataset import load_split

    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trip_tr, tab_tr = load_split(data_dir, ("train",))
    if max_train is not None:
        trip_tr, tab_tr = trip_tr[:max_train], tab_tr.iloc[:max_train]
    trip_va, tab_va = load_split(data_dir, ("val",))
    if len(tab_tr) == 0 or tab_tr["label"].sum() == 0:
        raise ValueError(f"{data_dir} has no real candidates in its train split: build more pairs")
    mean, std = feature_stats(tab_tr.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float64))
    side_tr, side_va = _standardise(tab_tr, mean, std), _standardise(tab_va, mean, std)
    y_tr, y_va = tab_tr["label"].to_numpy(np.int64), tab_va["label"].to_numpy(np.int64)

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(arch)
    _reinit(model, gen)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=int(epochs * (1 + (y_tr.sum() + bogus_per_epoch) // batch))
    )
    rng = np.random.default_rng([seed, 0x7B])
    history: list[dict] = []
    best: dict = {"fpr": np.inf, "loss": np.inf, "state": None, "epoch": 0}
    ckpt_path = out / f"checkpoint_{arch}.pt"
    start = 0
    if resume and ckpt_path.exists():
        start, history, best = _load_checkpoint(ckpt_path, model, opt, sched, rng)
    t0 = time.perf_counter()
    for epoch in range(start, epochs):
        model.train()
        idx = _epoch_indices(y_tr, bogus_per_epoch, rng)
        pos_weight = torch.tensor(float((y_tr[idx] == 0).sum()) / max((y_tr[idx] == 1).sum(), 1))
        losses = []
        for s in range(0, len(idx) - batch + 1, batch):
            part = idx[s : s + batch]
            x = _flip(trip_tr[part].astype(np.float32), rng)
            logit = model(torch.from_numpy(x), torch.from_numpy(side_tr[part]))
            target = torch.from_numpy(y_tr[part].astype(np.float32))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logit, target, pos_weight=pos_weight
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        logit_va = predict_logits(model, trip_va, side_va)
        score_va = 1.0 / (1.0 + np.exp(-logit_va.astype(np.float64)))
        thr = threshold_at_mdr(y_va, score_va)
        val_fpr = fpr_at_threshold(y_va, score_va, thr)
        val_loss = float(
            torch.nn.functional.binary_cross_entropy_with_logits(
                torch.from_numpy(logit_va), torch.from_numpy(y_va.astype(np.float32))
            )
        )
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
               "val_fpr_at_1pct_mdr": val_fpr, "val_threshold": thr,
               "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        history.append(row)
        if (val_fpr, val_loss) < (best["fpr"], best["loss"]):
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = {"fpr": val_fpr, "loss": val_loss, "epoch": epoch + 1, "threshold": thr,
                    "state": state}  # fmt: skip
        _save_checkpoint(ckpt_path, model, opt, sched, rng, epoch + 1, history, best)
        if progress:
            print(f"{arch} {json.dumps(row)}", file=sys.stderr, flush=True)
    model.load_state_dict(best["state"])
    meta = {
        "arch": arch, "version": MODEL_VERSIONS[arch], "cutout_px": CUTOUT_PX,
        "feature_columns": list(FEATURE_COLUMNS), "feature_mean": mean.tolist(),
        "feature_std": std.tolist(), "real_threshold": best["threshold"],
        "threshold_rule": f"P(real) missing {TARGET_MDR:.0%} of the val split's real candidates",
        "best_epoch": best["epoch"], "val_fpr_at_1pct_mdr": best["fpr"], "seed": seed,
    }  # fmt: skip
    path = save_classifier(out / weights_name(arch), model, meta)
    result = {"arch": arch, "n_train": len(y_tr), "n_train_real": int(y_tr.sum()),
              "n_val": len(y_va), "n_val_real": int(y_va.sum()),
              "real_threshold": best["threshold"], "best_epoch": best["epoch"],
              "history": history}  # fmt: skip
    _write_manifest(out, data_dir, path, meta, result, argv, epochs, seed, batch, lr,
                    bogus_per_epoch)  # fmt: skip
    ckpt_path.unlink(missing_ok=True)  # finished: only an interrupted run keeps one
    return result


def _reinit(model, gen) -> None:
    """Initialise from ``gen`` (the seed alone decides the weights)."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_uniform_(m.weight, a=5**0.5, generator=gen)
                if m.bias is not None:
                    bound = 1.0 / max(m.weight[0].numel(), 1) ** 0.5
                    torch.nn.init.uniform_(m.bias, -bound, bound, generator=gen)


def _flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    flip_y = rng.uniform(size=len(x)) < 0.5
    flip_x = rng.uniform(size=len(x)) < 0.5
    x = np.where(flip_y[:, None, None, None], x[..., ::-1, :], x)
    x = np.where(flip_x[:, None, None, None], x[..., :, ::-1], x)
    return np.ascontiguousarray(x)


def _save_checkpoint(path, model, opt, sched, rng, epoch, history, best) -> None:
    import torch

    blob = {
        "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
        "epoch": epoch, "history_json": json.dumps(history),
        "best_json": json.dumps({k: v for k, v in best.items() if k != "state"}),
        "best_state": best["state"] or {}, "rng_json": json.dumps(rng.bit_generator.state),
        "torch_rng": torch.get_rng_state(),
    }  # fmt: skip
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def _load_checkpoint(path, model, opt, sched, rng):
    import torch

    blob = torch.load(path, weights_only=True, map_location="cpu")
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["opt"])
    sched.load_state_dict(blob["sched"])
    rng.bit_generator.state = json.loads(blob["rng_json"])
    torch.set_rng_state(blob["torch_rng"])
    best = json.loads(blob["best_json"])
    best["state"] = blob["best_state"] or None
    return int(blob["epoch"]), json.loads(blob["history_json"]), best


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_manifest(out, data_dir, path, meta, result, argv, epochs, seed, batch, lr,
                    bogus_per_epoch) -> None:  # fmt: skip
    import fcntl
    import os

    # Both archs may train at once into one folder: read-modify-write under a lock on
    # the folder itself (no lock file left behind).
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _update_manifest(out / "manifest.json", data_dir, path, meta, result, argv, epochs,
                         seed, batch, lr, bogus_per_epoch)  # fmt: skip
    finally:
        os.close(fd)


def _update_manifest(manifest_path, data_dir, path, meta, result, argv, epochs, seed, batch,
                     lr, bogus_per_epoch) -> None:  # fmt: skip
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    index_path = Path(data_dir) / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    manifest.update({"model": "transient", "load": "torch.load(path, weights_only=True)",
                     "data_command": index.get("command", ""), "data_index": index})  # fmt: skip
    command = "skytwin models train transient " + " ".join(argv or [])
    manifest.setdefault("models", {})[meta["arch"]] = {
        "version": meta["version"], "weights": path.name, "sha256": sha256(path),
        "bytes": path.stat().st_size, "train_command": command,
        "options": {"epochs": epochs, "seed": seed, "batch": batch, "lr": lr,
                    "bogus_per_epoch": bogus_per_epoch},
        "real_threshold": meta["real_threshold"], "best_epoch": meta["best_epoch"],
        "val_fpr_at_1pct_mdr": meta["val_fpr_at_1pct_mdr"],
        **{k: result[k] for k in ("n_train", "n_train_real", "n_val", "n_val_real")},
        "history": result["history"],
    }  # fmt: skip
    manifest_path.write_text(json.dumps(manifest, indent=1))
