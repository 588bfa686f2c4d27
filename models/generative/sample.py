"""``skytwin models sample generative --n N --out DIR``: a PNG grid and a FITS cube of samples.

Conditioning: by default that of ``N`` held-out real HDF galaxies (``--data``; sizes,
shapes and S/N of the real sky), else random sizes and shapes at the renderer's S/N
(``--random``). Stamps are cleaned and unit-flux as the renderer uses them
(:meth:`~models.generative.generator.GalaxyGenerator.stamps`); the FITS cube
(``samples.fits``) holds them with their conditioning in a table extension.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.generative.dataset import COND_NAMES, DEFAULT_OUT, conditioning, load
from models.generative.diffusion import DEFAULT_STEPS
from models.generative.generator import WEIGHTS_DIR


def random_conditioning(n: int, render: dict, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 0x5A])
    lo, hi = render["hlr_px_range"]
    return conditioning(np.exp(rng.uniform(np.log(lo), np.log(hi), n)), rng.uniform(0, 0.7, n),
                        rng.uniform(0, 180, n), render["log_snr"], 1.0)  # fmt: skip


def write_grid(path: Path, stamps: np.ndarray, titles: Sequence[str] | None = None,
               columns: int = 8) -> Path:  # fmt: skip
    """Stamps (asinh stretch, each to its own peak) in a grid PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(stamps) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1 + 0.2))
    for i, ax in enumerate(np.atleast_1d(axes).flat):
        ax.set_axis_off()
        if i < len(stamps):
            s = stamps[i] / max(float(stamps[i].max()), 1e-30)
            ax.imshow(np.arcsinh(s / 0.02), cmap="magma", origin="lower", vmin=0,
                      vmax=np.arcsinh(50))  # fmt: skip
            if titles:
                ax.set_title(titles[i], fontsize=6)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    import torch
    from astropy.io import fits
    from astropy.table import Table

    from models.generative.generator import GalaxyGenerator

    p = argparse.ArgumentParser(prog="skytwin models sample generative",
                                description=__doc__.split("\n")[0])  # fmt: skip
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("outputs/generative/samples"))
    p.add_argument("--data", type=Path, default=DEFAULT_OUT)
    p.add_argument("--random", action="store_true", help="random conditioning, not held-out")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = GalaxyGenerator(args.weights, args.steps, threads=args.threads)
    if args.random or not (args.data / "generative.npz").is_file():
        cond = random_conditioning(args.n, gen.manifest["render"], args.seed)
    else:
        data = load(args.data)
        test = np.flatnonzero(data["split"] == "test")
        cond = data["cond"][np.resize(test, args.n)]
    seeds = [args.seed * 1_000_003 + i for i in range(len(cond))]
    t0 = time.perf_counter()
    stamps, ok = gen.stamps(cond, seeds)
    seconds = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    titles = [f"r={np.exp(c[0]):.1f} e={np.hypot(c[1], c[2]):.2f}" for c in cond]
    write_grid(args.out / "samples.png", stamps, titles)
    table = Table(cond, names=COND_NAMES)
    table["ok"] = ok
    fits.HDUList([fits.PrimaryHDU(stamps.astype(np.float32)),
                  fits.BinTableHDU(table, name="COND")]).writeto(args.out / "samples.fits",
                                                                 overwrite=True)  # fmt: skip
    info = {"n": len(stamps), "ok": int(ok.sum()), "steps": args.steps,
            "seconds": round(seconds, 2),
            "stamps_per_s": round(len(stamps) / seconds, 1)}  # fmt: skip
    (args.out / "samples.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info), f"-> {args.out}/samples.png, samples.fits")
