"""Train the autoencoder on normal frames: resumable, deterministic, CPU unless a GPU is there.

A checkpoint (model, optimiser, epoch, history) is written after every epoch to
``OUT/checkpoint.pt`` (atomically), so a killed run continues with ``--resume`` and ends
with the same weights as an unbroken one: each epoch's shuffle comes from a generator
seeded with ``(seed, epoch)``, not from a stream carried across epochs.

At the end the weights of the epoch with the lowest validation loss go to
``models/anomaly/weights/anomaly.pt`` (a plain ``state_dict``, loadable with
``torch.load(weights_only=True)``) and ``manifest.json`` records the command, the data
seed, the losses and the score calibration (means and spreads of the error features
on the *normal* validation frames; no faulted frame is used here); ``splits.parquet``
beside them lists every planned frame (split, class, run seed, obs id, site, night,
pointing) so that the split's disjointness is checked without the frames.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.anomaly.dataset import DEFAULT_OUT, load

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "anomaly.pt"
MODEL_VERSION = "anomaly-ae-v2"
SPLITS_FILE = "splits.parquet"


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _seed_all(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def split_tensors(images: np.ndarray, meta, split: str, cls: str = "normal"):
    import torch

    idx = np.flatnonzero(((meta["split"] == split) & (meta["cls"] == cls)).to_numpy())
    return torch.from_numpy(images[idx].astype(np.float32))[:, None]


def fit(
    model,
    train_x,
    val_x,
    *,
    epochs: int,
    batch: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    device=None,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    crop: int | None = None,
) -> dict:
    """Train ``model`` with Adam on MSE (cosine learning rate over ``epochs``); returns
    ``{"history": [...], "best_state": ..., "best_epoch": ...}``. ``stop_after``: return
    after that many epochs in all, as a killed run would (tests).

    ``crop``: train on a random ``crop``² window of each frame, flipped at random along
    either axis (never rotated: rows stay rows, as the readout has a direction), drawn
    from the epoch's generator, so a resumed run draws the same. The network is fully
    convolutional, so a crop costs a fraction of a frame and many more optimiser steps
    fit in the same time: with whole frames and ~500 steps the autoencoder never got
    past predicting the flat sky. Validation is always on whole frames."""
    import torch

    device = device or torch.device("cpu")
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, epochs) / max(epochs, 1)))
    )
    history: list[dict] = []
    best = {"val_loss": math.inf, "state": None, "epoch": -1}
    start = 0
    if resume and checkpoint is not None and checkpoint.is_file():
        ck = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        history, start = ck["history"], int(ck["epoch"]) + 1
        best = {
            "val_loss": float(ck["best_val_loss"]),
            "state": ck["best_state"],
            "epoch": int(ck["best_epoch"]),
        }
        _log(progress, f"resumed after epoch {start - 1} from {checkpoint}")
    for epoch in range(start, epochs if stop_after is None else min(epochs, stop_after)):
        t0 = time.perf_counter()
        model.train()
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(train_x), generator=g)
        total = 0.0
        for i in range(0, len(order), batch):
            xb = train_x[order[i : i + batch]]
            if crop:
                xb = _augment(xb, crop, g)
            xb = xb.to(device)
            loss = torch.mean((model(xb) - xb) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
        sched.step()
        val = evaluate_loss(model, val_x, device)
        row = {
            "epoch": epoch,
            "train_loss": total / len(order),
            "val_loss": val,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        history.append(row)
        if val < best["val_loss"]:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best = {"val_loss": val, "state": state, "epoch": epoch}
        _log(
            progress,
            f"epoch {epoch + 1}/{epochs} train {row['train_loss']:.5f} "
            f"val {val:.5f} ({row['seconds']} s)",
        )
        if checkpoint is not None:
            _save_checkpoint(checkpoint, model, opt, sched, epoch, history, best)
    return {"history": history, "best_state": best["state"], "best_epoch": best["epoch"]}


def _augment(xb, crop: int, g):
    """One random ``crop``² window per frame, flipped up-down and left-right at random."""
    import torch

    n, _, h, w = xb.shape
    ys = torch.randint(0, h - crop + 1, (n,), generator=g)
    xs = torch.randint(0, w - crop + 1, (n,), generator=g)
    flips = torch.randint(0, 2, (n, 2), generator=g)
    out = []
    for k in range(n):
        t = xb[k, :, ys[k] : ys[k] + crop, xs[k] : xs[k] + crop]
        dims = [d for d, f in zip((1, 2), flips[k].tolist(), strict=True) if f]
        out.append(t.flip(dims) if dims else t)
    return torch.stack(out)


def evaluate_loss(model, x, device, batch: int = 128) -> float:
    import torch

    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i : i + batch].to(device)
            total += float(torch.sum(torch.mean((model(xb) - xb) ** 2, dim=(1, 2, 3))))
    return total / max(len(x), 1)


def _save_checkpoint(path: Path, model, opt, sched, epoch, history, best) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": epoch,
            "history": history,
            "best_state": best["state"],
            "best_val_loss": best["val_loss"],
            "best_epoch": best["epoch"],
        },
        tmp,
    )
    os.replace(tmp, path)


def calibrate(model, val_x, device) -> dict[str, list[float]]:
    """Means and spreads of the log error features on normal validation frames."""
    import torch

    from models.anomaly.model import features

    model.eval()
    with torch.no_grad():
        f = torch.cat([features(xb, model(xb))[0] for xb in val_x.to(device).split(128)]).cpu()
    return {"mu": f.mean(0).tolist(), "sd": f.std(0).clamp_min(1e-6).tolist()}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _log(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    import torch

    from models.anomaly.model import FEATURES, SCORE_FEATURES, ConvAutoencoder

    p = argparse.ArgumentParser(
        prog="skytwin models train anomaly", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", type=Path, default=DEFAULT_OUT, help="dataset folder")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=64, help="train on random crops (0: whole)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--latent", type=int, default=8)
    p.add_argument("--depth", type=int, default=2, help="stride-2 stages (code 128/2^depth)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (torch)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--checkpoint", type=Path, help="default: DATA/checkpoint.pt")
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    _seed_all(args.seed)
    images, meta = load(args.data, ("train", "val"))
    train_x, val_x = split_tensors(images, meta, "train"), split_tensors(images, meta, "val")
    model = ConvAutoencoder(args.width, args.latent, args.depth)
    device = _device(args.device)
    print(f"{len(train_x)} train / {len(val_x)} val normal frames on {device}", flush=True)
    out = fit(
        model,
        train_x,
        val_x,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        device=device,
        checkpoint=args.checkpoint or args.data / "checkpoint.pt",
        resume=args.resume,
        crop=args.crop or None,
    )
    model.load_state_dict(out["best_state"])
    args.weights.mkdir(parents=True, exist_ok=True)
    wpath = args.weights / WEIGHTS_FILE
    torch.save(out["best_state"], wpath)
    info = json.loads((args.data / "anomaly.json").read_text())
    plan_path = args.data / "anomaly-plan.parquet"
    if plan_path.is_file():
        shutil.copyfile(plan_path, args.weights / SPLITS_FILE)
    argv_clean = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--resume"]
    manifest = {
        "model": "anomaly",
        "version": MODEL_VERSION,
        "weights": WEIGHTS_FILE,
        "sha256": sha256(wpath),
        "config": model.config,
        "command": "skytwin models dataset anomaly --data-seed "
        f"{info['data_seed']} --processes 1 && skytwin models train anomaly "
        + shlex.join(argv_clean),
        "data_seed": info["data_seed"],
        "dataset": info,
        "train_seed": args.seed,
        "epochs": args.epochs,
        "best_epoch": out["best_epoch"],
        "history": out["history"],
        "calibration": calibrate(model, val_x, device),
        "features": list(FEATURES),
        "score_features": list(SCORE_FEATURES),
    }
    # New weights, no metrics yet: `skytwin models evaluate anomaly` adds them.
    (args.weights / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"wrote {wpath} (best epoch {out['best_epoch'] + 1})")
