"""Train the quality CNN: ``skytwin models train quality --data DIR --out DIR --epochs E --seed S``.

Resumable (``--resume`` continues from ``OUT/checkpoint.pt``, written after every epoch:
model, optimiser, EMA, epoch and the generators' states, all plain tensors and numbers so
``torch.load(weights_only=True)`` reads it). CPU by default, the GPU when
``torch.cuda.is_available()``. Deterministic for a seed on CPU: one seeded torch
generator for the initialisation, one numpy generator for the batches and flips,
``torch.use_deterministic_algorithms``.

Only the ``train`` split is read; 10 % of it (a fixed, seeded subset) is kept aside to
report a validation loss. The ``heldout`` and ``unseen`` splits are for
:mod:`models.quality.evaluate` alone.

Writes ``OUT/quality.pt`` (the state dict of the EMA model, or of the model without EMA)
and ``OUT/manifest.json`` (commands, data seed, losses, sha256).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

WEIGHTS_NAME = "quality.pt"
CHECKPOINT_NAME = "checkpoint.pt"
MODEL_VERSION = "quality-cnn-2"


def prepare(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Normalised images (float16, N×1×H×W) and side features (float32) of loaded shards."""
    from models.quality.features import normalise_image

    images = np.stack([normalise_image(im) for im in data["image"]]).astype(np.float16)
    return images[:, None], data["side"].astype(np.float32)


def _batches(n: int, batch: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for start in range(0, n - batch + 1 if n >= batch else 1, batch):
        yield order[start : start + batch]


def _to_tensors(images, side, data, idx, flips, device):
    import torch

    x = images[idx].astype(np.float32)
    if flips is not None:  # flips keep columns columns (bad columns stay vertical)
        x = np.where(flips[0][:, None, None, None], x[..., ::-1, :], x)
        x = np.where(flips[1][:, None, None, None], x[..., :, ::-1], x)
    return (torch.from_numpy(np.ascontiguousarray(x)).to(device),
            torch.from_numpy(side[idx]).to(device),
            torch.from_numpy(data["score"][idx]).to(device),
            torch.from_numpy(data["seeing"][idx]).to(device),
            torch.from_numpy(data["flags"][idx]).to(device))  # fmt: skip


def evaluate_loss(model, images, side, data, idx, device, batch: int = 64) -> dict[str, float]:
    import torch

    from models.quality.model import loss_terms

    model.eval()
    sums: dict[str, float] = {}
    with torch.inference_mode():
        for start in range(0, len(idx), batch):
            part = idx[start : start + batch]
            x, s, score, seeing, flags = _to_tensors(images, side, data, part, None, device)
            for k, v in loss_terms(model(x, s), score, seeing, flags).items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(part)
    return {k: v / max(len(idx), 1) for k, v in sums.items()}


def train(data_dir: str | Path, out: str | Path, *, epochs: int = 12, seed: int = 0,
          batch: int = 32, lr: float = 3e-3, ema: float = 0.99, resume: bool = False,
          threads: int | None = None, max_frames: int | None = None, stem_stride: int = 2,
          progress: bool = True, argv: list[str] | None = None) -> dict:  # fmt: skip
    """Train on ``data_dir``'s train split into ``out`` (see the module docstring)."""
    import torch
    from tqdm.auto import tqdm

    from models.quality.dataset import load_split
    from models.quality.model import QualityNet, loss_terms

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load_split(data_dir, "train")
    if max_frames:
        data = {k: v[:max_frames] for k, v in data.items()}
    images, side = prepare(data)
    n = len(images)
    split_rng = np.random.default_rng([seed, 0x7A1])
    perm = split_rng.permutation(n)
    n_val = max(1, n // 10) if n >= 10 else 0
    val_idx, train_idx = np.sort(perm[:n_val]), perm[n_val:]

    torch.manual_seed(seed)
    model = QualityNet(stem_stride=stem_stride).to(device)
    ema_model = QualityNet(stem_stride=stem_stride).to(device) if ema else None
    if ema_model is not None:
        ema_model.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = max(1, len(train_idx) // batch)
    total_steps = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=total_steps, pct_start=0.15
    )
    rng = np.random.default_rng([seed, 0xBA7])
    history: list[dict] = []
    start_epoch = 0
    ckpt_path = out / CHECKPOINT_NAME
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True, map_location=device)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        sched.total_steps = epochs * steps_per_epoch  # --epochs may grow on resume
        if ema_model is not None:
            ema_model.load_state_dict(ckpt["ema"])
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(ckpt["rng"])
        history = json.loads(ckpt["history"])
        start_epoch = int(ckpt["epoch"])
    t0 = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        model.train()
        bar = tqdm(list(_batches(len(train_idx), batch, rng)), desc=f"epoch {epoch + 1}/{epochs}",
                   unit="batch", disable=not progress)  # fmt: skip
        running = 0.0
        for k, b in enumerate(bar):
            idx = train_idx[b]
            flips = rng.uniform(size=(2, len(idx))) < 0.5
            x, s, score, seeing, flags = _to_tensors(images, side, data, idx, flips, device)
            losses = loss_terms(model(x, s), score, seeing, flags)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            sched.step()
            if ema_model is not None:
                with torch.no_grad():
                    for pe, pm in zip(ema_model.state_dict().values(), model.state_dict().values(),
                                      strict=True):  # fmt: skip
                        if pe.dtype.is_floating_point:
                            pe.mul_(ema).add_(pm, alpha=1.0 - ema)
                        else:
                            pe.copy_(pm)
            running += float(losses["total"].detach())
            bar.set_postfix(loss=f"{running / (k + 1):.3f}")
        final = ema_model if ema_model is not None else model
        val = evaluate_loss(final, images, side, data, val_idx, device) if n_val else {}
        history.append({"epoch": epoch + 1, "train_loss": running / max(len(bar), 1),
                        **{f"val_{k}": v for k, v in val.items()},
                        "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        checkpoint = {
            "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "ema": (ema_model or model).state_dict(), "epoch": epoch + 1,
            "rng": json.dumps(rng.bit_generator.state), "history": json.dumps(history),
        }  # fmt: skip
        torch.save(checkpoint, ckpt_path)
        torch.save(final.state_dict(), out / WEIGHTS_NAME)
        write_manifest(out, data_dir, seed, history, argv, epochs=epochs, stem_stride=stem_stride)
    return {"history": history, "n_train": len(train_idx), "n_val": n_val}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(out: Path, data_dir, seed: int, history: list[dict], argv, **extra) -> Path:
    index = json.loads((Path(data_dir) / "index.json").read_text())
    path = out / "manifest.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    manifest = {
        **old,
        "model": "quality", "version": MODEL_VERSION, "weights": WEIGHTS_NAME,
        "sha256": sha256(out / WEIGHTS_NAME), "load": "torch.load(path, weights_only=True)",
        "data_command": index["command"], "data_seed": index["seed"], "data_n": index["n"],
        "data_size": index["size"], "data_splits": index["splits"],
        "train_command": "skytwin models train quality " + " ".join(argv or []),
        "train_seed": seed, "history": history, "torch": _torch_version(),
        "python": sys.version.split()[0], **extra,
    }  # fmt: skip
    path.write_text(json.dumps(manifest, indent=1))
    return path


def _torch_version() -> str:
    import torch

    return torch.__version__
