"""Train the learned fusion: ``skytwin models train fusion --data DIR --out DIR``.

Resumable: ``OUT/checkpoint.pt`` (model, optimiser, schedule, epoch, the batch
generator's state and the history; plain tensors and JSON strings, so
``torch.load(weights_only=True)`` reads it) is written after every epoch, and
``--resume`` continues from it. CPU by default (one thread with ``--threads 1``), the
GPU when present. Same seed, same data → same weights on CPU: one seeded torch generator
for the initialisation, one numpy generator for batches, crops and flips,
``torch.use_deterministic_algorithms``.

Reads the ``train`` split only, keeps 10 % of it (seeded) for a validation loss; the
``heldout`` split is :mod:`models.fusion.evaluate`'s alone. Each step takes random
``--crop``² windows of the stored 96² stacks, flipped and transposed at random (the
terms are equivariant to those; the network's inputs carry no orientation).

Writes ``OUT/fusion.pt`` (the state dict) and ``OUT/manifest.json`` (the commands, data
seed, history, sha256).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_VERSION = "fusion-gated-2"
ARRAYS = ("base", "variance", "truth", "difference", "removal", "labels", "meta", "valid")


def batch_tensors(data: dict, idx: np.ndarray, crop: int, rng: np.random.Generator | None):
    """A batch of stacks ``idx`` as tensors: ``crop``² windows (centred without ``rng``),
    randomly flipped and transposed with it."""
    import torch

    from models.fusion.learned import network_inputs

    size = data["base"].shape[-1]
    out: dict[str, list] = {k: [] for k in ARRAYS}
    for i in idx:
        if rng is None:
            y0 = x0 = (size - crop) // 2
            flips = (False, False, False)
        else:
            y0, x0 = (int(v) for v in rng.integers(0, size - crop + 1, 2))
            flips = tuple(bool(v) for v in rng.uniform(size=3) < 0.5)
        for key in ARRAYS:
            a = data[key][i]
            if a.ndim >= 2 and a.shape[-1] == size:
                a = a[..., y0 : y0 + crop, x0 : x0 + crop]
                if flips[0]:
                    a = a[..., ::-1, :]
                if flips[1]:
                    a = a[..., :, ::-1]
                if flips[2]:
                    a = np.swapaxes(a, -1, -2)
            out[key].append(np.ascontiguousarray(a))
    batch = {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}
    n = int(batch["valid"].sum(1).max())  # trim the frame slots no stack of the batch uses
    for k in ("difference", "removal", "labels", "meta", "valid"):
        batch[k] = batch[k][:, :n]
    for k in ("base", "variance", "truth", "removal", "meta"):
        batch[k] = batch[k].float()
    batch["frames"], batch["shared"] = network_inputs(
        batch["difference"], batch["removal"], batch["base"], batch["variance"]
    )
    return batch


def validation_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) indices of the train split: a seeded 10 % kept aside."""
    perm = np.random.default_rng([seed, 0x7A1]).permutation(n)
    return np.sort(perm[: n // 10]), perm[n // 10 :]


def epoch_batches(
    idx: np.ndarray, n_frames: np.ndarray, batch: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch's batches in a random order: stacks of one frame count together (no padded
    slot is computed), the few left over per count in mixed batches at the end."""
    out, left = [], []
    for n in np.unique(n_frames[idx]):
        group = rng.permutation(idx[n_frames[idx] == n])
        full = len(group) // batch * batch
        out += [group[k : k + batch] for k in range(0, full, batch)]
        left += list(group[full:])
    left = np.array(left, dtype=idx.dtype)
    out += [left[k : k + batch] for k in range(0, len(left), batch)]
    return [out[k] for k in rng.permutation(len(out))]


def forward(model, batch):
    return model(batch["frames"], batch["shared"], batch["meta"], batch["valid"])


def validation_loss(model, data, idx, crop: int, batch: int = 16) -> dict[str, float]:
    import torch

    from models.fusion.learned import loss_terms

    model.eval()
    sums: dict[str, float] = {}
    with torch.inference_mode():
        for start in range(0, len(idx), batch):
            b = batch_tensors(data, idx[start : start + batch], crop, None)
            for k, v in loss_terms(forward(model, b), b).items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(b["base"])
    model.train()
    return {k: v / max(len(idx), 1) for k, v in sums.items()}


def train(
    data_dir: str | Path,
    out: str | Path,
    *,
    epochs: int = 12,
    seed: int = 0,
    batch: int = 8,
    lr: float = 2e-3,
    crop: int = 64,
    width: int = 16,
    threads: int | None = None,
    max_stacks: int | None = None,
    resume: bool = False,
    progress: bool = True,
    argv: list[str] | None = None,
) -> dict:
    """Train on ``data_dir``'s train split into ``out`` (module docstring)."""
    import torch
    from tqdm.auto import tqdm

    from models.fusion.dataset import load_split
    from models.fusion.learned import WEIGHTS_NAME, FusionNet, loss_terms

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = load_split(data_dir, "train")
    if max_stacks:
        data = {k: v[:max_stacks] for k, v in data.items()}
    n = len(data["base"])
    val_idx, train_idx = validation_split(n, seed)
    n_val = len(val_idx)

    torch.manual_seed(seed)
    model = FusionNet(width=width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    n_frames = data["valid"].sum(1)
    steps_per_epoch = len(epoch_batches(train_idx, n_frames, batch, np.random.default_rng(0)))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1
    )
    rng = np.random.default_rng([seed, 0xBA7])
    history: list[dict] = []
    start_epoch = 0
    ckpt_path = out / CHECKPOINT_NAME
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        rng.bit_generator.state = json.loads(ckpt["rng"])
        history = json.loads(ckpt["history"])
        start_epoch = int(ckpt["epoch"])
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    for epoch in range(start_epoch, epochs):
        batches = epoch_batches(train_idx, n_frames, batch, rng)
        running = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
        for step in bar:
            b = batch_tensors(data, batches[step], crop, rng)
            losses = loss_terms(forward(model, b), b)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            sched.step()
            running += float(losses["total"].detach())
            bar.set_postfix(loss=f"{running / (step + 1):.4f}")
        val = validation_loss(model, data, val_idx, crop) if n_val else {}
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": running / steps_per_epoch,
                **{f"val_{k}": v for k, v in val.items()},
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
                "rng": json.dumps(rng.bit_generator.state),
                "history": json.dumps(history),
            },
            ckpt_path,
        )
        torch.save(model.state_dict(), out / WEIGHTS_NAME)
        write_manifest(
            out,
            data_dir,
            seed,
            history,
            argv,
            epochs=epochs,
            width=width,
            crop=crop,
            batch=batch,
            lr=lr,
            n_train=len(train_idx),
            n_val=n_val,
        )
    return {"history": history, "n_train": len(train_idx), "n_val": n_val}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(out: Path, data_dir, seed: int, history: list[dict], argv, **extra) -> Path:
    """``manifest.json``: the commands that made the weights, data, losses, checksum."""
    import torch

    from models.fusion.learned import WEIGHTS_NAME

    index = json.loads((Path(data_dir) / "index.json").read_text())
    path = Path(out) / "manifest.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    manifest = {
        **old,
        "model": "fusion",
        "version": MODEL_VERSION,
        "weights": WEIGHTS_NAME,
        "sha256": sha256(Path(out) / WEIGHTS_NAME),
        "load": "torch.load(path, weights_only=True)",
        "data_command": index["command"],
        "data_seed": index["seed"],
        "data_splits": index["splits"],
        "data_seconds": index["seconds"],
        "train_command": "skytwin models train fusion " + " ".join(argv or []),
        "train_seed": seed,
        "history": history,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        **extra,
    }
    path.write_text(json.dumps(manifest, indent=1))
    return path
