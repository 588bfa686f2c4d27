"""Train the galaxy diffusion model: resumable, EMA, CPU by default and a GPU when present.

Every batch is drawn afresh from a generator seeded by ``(seed, step)`` — which stamps
(:data:`REAL_FRACTION` real, the rest parametric), which of the eight rotations/flips,
which diffusion times and noise — so a run stopped and resumed from its checkpoint
(``OUT/checkpoint.pt``, written atomically every ``--checkpoint-every`` steps) takes the
same batches as one never stopped. An exponential moving average of the weights
(decay :data:`EMA_DECAY`, warmed up as ``(1 + n)/(10 + n)``) is kept beside them;
``--ship`` says which of the two is written: ``ema``, the default, or ``model``, the last
step's. The cosine schedule ends at a tenth of the rate, so the last step is already
steady, while the EMA still averages ~1/(1 - decay) steps taken at higher rates. On the
shipped run the two score alike: the last step's morphology a little closer to real
galaxies, its conditioning a little looser (README). The held-out real stamps give a
validation loss at fixed times and noise.

At the end (or with ``--export`` from the last checkpoint) the shipped weights go to
``models/generative/weights/generative.pt`` (a plain ``state_dict``, read with
``torch.load(weights_only=True)``) and ``manifest.json`` records the exact command
that retrains them, the data set, the losses and the rendering constants.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.generative.dataset import DEFAULT_OUT, dihedral, dihedral_cond, load

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "generative.pt"
MODEL_VERSION = "generative-unet-v1"
REAL_FRACTION = 0.6
EMA_DECAY = 0.999
WARMUP_STEPS = 200
DEFAULT_RUN = Path("outputs/generative/run")
SHIPPED = ("ema", "model")


def device_for(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Batches:
    """Training batches from the data set's ``train`` split, deterministic per step."""

    def __init__(self, data: dict[str, np.ndarray], seed: int) -> None:
        train = data["split"] == "train"
        self.x, self.cond = data["x"], data["cond"]
        self.real = np.flatnonzero(train & (data["real"] > 0))
        self.param = np.flatnonzero(train & (data["real"] == 0))
        self.seed = int(seed)

    def __call__(self, step: int, batch: int):
        import torch

        rng = np.random.default_rng([self.seed, int(step)])
        n_real = rng.binomial(batch, REAL_FRACTION) if len(self.param) else batch
        idx = np.r_[rng.choice(self.real, n_real), rng.choice(self.param, batch - n_real)]
        if not len(self.param):
            idx = rng.choice(self.real, batch)
        ks = rng.integers(0, 8, len(idx))
        xs = np.stack([dihedral(self.x[i], k) for i, k in zip(idx, ks, strict=True)])
        cs = np.stack([dihedral_cond(self.cond[i], k) for i, k in zip(idx, ks, strict=True)])
        g = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        return torch.from_numpy(xs[:, None]), torch.from_numpy(cs), g


def validation_loss(model, data: dict[str, np.ndarray], device, n_times: int = 4) -> float:
    """v-loss on the held-out real stamps at fixed times and noise (comparable across runs)."""
    import torch

    from models.generative.diffusion import alpha_sigma

    test = np.flatnonzero(data["split"] == "test")
    if not len(test):
        return math.nan
    x0 = torch.from_numpy(data["x"][test][:, None]).to(device)
    cond = torch.from_numpy(data["cond"][test]).to(device)
    g = torch.Generator().manual_seed(12345)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for t_val in np.linspace(0.1, 0.9, n_times):
            eps = torch.randn(x0.shape, generator=g).to(device)
            t = torch.full((len(x0),), float(t_val), device=device)
            a, s = (v[:, None, None, None] for v in alpha_sigma(t))
            pred = model(a * x0 + s * eps, t, cond)
            total += float(torch.mean((pred - (a * eps - s * x0)) ** 2))
    model.train()
    return total / n_times


def fit(model, data: dict[str, np.ndarray], *, steps: int, batch: int = 64, lr: float = 1e-3,
        seed: int = 0, device=None, checkpoint: Path | None = None, resume: bool = False,
        checkpoint_every: int = 200, eval_every: int = 200, progress: bool = True,
        stop_after: int | None = None, log_path: Path | None = None,
        warmup_steps: int = WARMUP_STEPS) -> dict:  # fmt: skip
    """Train ``model`` for ``steps`` steps; returns ``{"ema": module, "history": [...]}``.

    ``stop_after``: return after that many steps in all, as a killed run would (tests).
    """
    import torch
    from tqdm.auto import tqdm

    from models.generative.diffusion import loss_v

    device = device or torch.device("cpu")
    model.to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def schedule(step: int) -> float:  # warm-up, then cosine to a tenth
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        frac = (step - warmup_steps) / max(steps - warmup_steps, 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    history: list[dict] = []
    start = 0
    if resume and checkpoint is not None and checkpoint.is_file():
        ck = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, history = int(ck["step"]), list(ck["history"])
        _log(progress, f"resumed at step {start} from {checkpoint}", log_path)
    batches = Batches(data, seed)
    end = steps if stop_after is None else min(steps, stop_after)
    bar = tqdm(total=steps, initial=start, unit="step", disable=not progress, desc="train")
    running, t0 = [], time.perf_counter()
    model.train()
    for step in range(start, end):
        x0, cond, g = batches(step, batch)
        loss = loss_v(model, x0.to(device), cond.to(device), generator=g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(EMA_DECAY, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                pe.mul_(decay).add_(pm.detach(), alpha=1.0 - decay)
        running.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}")
        done = step + 1
        if done % eval_every == 0 or done == end:
            row = {"step": done, "train_loss": float(np.mean(running)),
                   "val_loss": validation_loss(ema, data, device),
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            history.append(row)
            running, t0 = [], time.perf_counter()
            _log(progress, json.dumps(row), log_path)
        if checkpoint is not None and (done % checkpoint_every == 0 or done == end):
            _save_checkpoint(checkpoint, model, ema, opt, sched, done, history)
    bar.close()
    return {"ema": ema, "model": model, "history": history, "step": end}


def _save_checkpoint(path: Path, model, ema, opt, sched, step: int, history) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "step": step, "history": history}, tmp)  # fmt: skip
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _log(progress: bool, message: str, log_path: Path | None = None) -> None:
    if log_path is not None:
        with open(log_path, "a") as f:
            f.write(message + "\n")
    if progress:
        print(message, file=sys.stderr, flush=True)


def write_weights(net, out_dir: Path, *, command: str, data_meta: dict, history: list,
                  step: int, args: dict, data: dict[str, np.ndarray]) -> Path:  # fmt: skip
    """The network's ``state_dict`` (the EMA's or the last step's, ``--ship``) and
    ``manifest.json`` (rendering constants included)."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / WEIGHTS_FILE
    torch.save({k: v.detach().cpu().clone() for k, v in net.state_dict().items()}, path)
    real_train = (data["split"] == "train") & (data["real"] > 0)
    cond = data["cond"][real_train]
    manifest = {
        "model": "generative", "version": MODEL_VERSION, "weights": WEIGHTS_FILE,
        "sha256": sha256(path), "config": net.config, "stamp": int(data["x"].shape[-1]),
        "command": command, "data_seed": data_meta["seed"], "dataset": data_meta,
        "train": {**args, "steps_done": step}, "history": history,
        "render": {
            "log_snr": float(np.percentile(cond[:, 3], 90)),
            "hlr_px_range": [float(np.exp(np.percentile(cond[:, 0], 2))),
                             float(np.exp(np.percentile(cond[:, 0], 98)))],
        },
    }  # fmt: skip
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return path


def main(argv: Sequence[str] | None = None) -> None:
    import torch

    from models.generative.model import GalaxyUNet

    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="skytwin models train generative",
                                description=__doc__.split("\n")[0])  # fmt: skip
    p.add_argument("--data", type=Path, default=DEFAULT_OUT, help="dataset folder")
    p.add_argument("--out", type=Path, default=DEFAULT_RUN, help="checkpoint and log folder")
    p.add_argument("--steps", type=int, default=3600)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--widths", default="24,48,64", help="UNet channels per level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (torch)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--export", action="store_true",
                   help="write the weights from OUT/checkpoint.pt without training")  # fmt: skip
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--ship", choices=SHIPPED, default="ema",
                   help="weights written: the moving average or the last step's")  # fmt: skip
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load(args.data)
    data_meta = json.loads((args.data / "generative.json").read_text())
    widths = tuple(int(w) for w in args.widths.split(","))
    model = GalaxyUNet(n_cond=data["cond"].shape[1], widths=widths)
    device = device_for(args.device)
    checkpoint = args.out / "checkpoint.pt"
    args.out.mkdir(parents=True, exist_ok=True)
    if args.export:
        out = fit(model, data, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                  device=device, checkpoint=checkpoint, resume=True, stop_after=0,
                  progress=False)  # fmt: skip
        import torch as _t

        out["step"] = int(_t.load(checkpoint, weights_only=True)["step"])
    else:
        print(f"{(data['split'] == 'train').sum()} training stamps on {device}", flush=True)
        out = fit(model, data, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                  device=device, checkpoint=checkpoint, resume=args.resume,
                  log_path=args.out / "train.log")  # fmt: skip
    clean = [a for a in argv if a not in ("--resume", "--export")]
    command = (f"skytwin models dataset generative --seed {data_meta['seed']} "
               f"--n-parametric {data_meta['n_parametric']} --out {args.data} && "
               "skytwin models train generative " + shlex.join(clean))  # fmt: skip
    path = write_weights(out[args.ship], args.weights, command=command, data_meta=data_meta,
                         history=out["history"], step=out["step"], data=data,
                         args={k: str(v) if isinstance(v, Path) else v
                               for k, v in vars(args).items()})  # fmt: skip
    print(f"wrote {path} after {out['step']} steps")
