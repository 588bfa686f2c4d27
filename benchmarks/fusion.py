"""Speed of the coadds: seconds to fuse 4 × 2048² frames per method, one core.

The issue's speed figure (issue 13, "Numbers to reach"): each baseline of
:mod:`models.fusion` on the same four synthetic 2048² frames — Gaussian PSFs of 0.8, 1.3,
1.9 and 2.5" FWHM at the 1 m telescope's 0.389"/px, white sky noise, a flux scale each,
65-px PSF stamps (±5 FWHM of the worst) — once clean and once with each frame's
defects masked (200 hot pixels and a bad column per frame, NaN under the mask), which
makes the coadds compute the frames-left regions too. ``learned``
(:func:`models.fusion.learned.learned_coadd`: the proper coadd, the consistency terms and
the network with the shipped weights; skipped without torch or weights, or with
``--no-learned``) is timed once per case (``--learned-repeats``). Threads are pinned to one
(``OMP_NUM_THREADS`` etc. before numpy loads; scipy's FFT uses one worker by default).

    .venv/bin/python benchmarks/fusion.py              # ~1-2 min on one core
    .venv/bin/python benchmarks/fusion.py --size 1024  # quicker
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import report  # noqa: E402

from models.fusion import METHODS, AlignedFrame  # noqa: E402
from models.fusion.stamps import gaussian_psf  # noqa: E402

PIXEL_SCALE_ARCSEC = 0.389
SEEING_ARCSEC = (0.8, 1.3, 1.9, 2.5)


def synthetic_frames(size: int, defects: bool, seed: int = 0) -> list[AlignedFrame]:
    """Four frames of white noise and a sprinkling of stars, each with its own PSF."""
    rng = np.random.default_rng(seed)
    widest = SEEING_ARCSEC[-1] / PIXEL_SCALE_ARCSEC
    stamp = 2 * int(np.ceil(5.0 * widest)) + 1
    frames = []
    for j, seeing in enumerate(SEEING_ARCSEC):
        sigma = 15.0 + 3.0 * j
        data = rng.normal(0.0, sigma, (size, size))
        ys, xs = rng.integers(0, size, (2, 2000))
        data[ys, xs] += rng.uniform(100, 5000, 2000)  # delta "stars": the cost is the same
        mask = np.zeros((size, size), bool)
        if defects:
            hy, hx = rng.integers(0, size, (2, 200))
            mask[hy, hx] = True
            mask[:, rng.integers(0, size)] = True
            data[mask] = np.nan
        frames.append(
            AlignedFrame(
                data,
                np.full((size, size), sigma**2),
                mask,
                gaussian_psf(seeing / PIXEL_SCALE_ARCSEC, stamp),
                flux_scale_e=1.0 - 0.1 * j,
            )
        )
    return frames


def timed(fn, frames, repeats: int) -> tuple[float, float]:
    """Best wall and CPU seconds of ``repeats`` coadds (CPU time: the one-core cost even
    on a busy machine, where wall time also counts waiting for the core)."""
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn([replace(f) for f in frames])  # fresh frames: no cached mask or noise
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def learned_method():
    """The learned fusion on one torch thread, its weights loaded once (None if unavailable)."""
    try:
        import torch

        from models.fusion.learned import learned_coadd, load_model
    except ImportError:
        return None
    torch.set_num_threads(1)
    try:
        model = load_model()
    except FileNotFoundError:
        return None
    return lambda frames: learned_coadd(frames, model=model)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--learned-repeats", type=int, default=1)
    parser.add_argument("--no-learned", action="store_true", help="classical methods only")
    args = parser.parse_args(argv)
    methods = dict(METHODS)
    repeats = dict.fromkeys(METHODS, args.repeats)
    if not args.no_learned and (learned := learned_method()) is not None:
        methods["learned"] = learned
        repeats["learned"] = args.learned_repeats
    rows = []
    for defects in (False, True):
        frames = synthetic_frames(args.size, defects)
        for name, fn in methods.items():
            wall_s, cpu_s = timed(fn, frames, repeats[name])
            rows.append(
                {
                    "method": name,
                    "frames": f"{len(frames)}x{args.size}^2",
                    "defects": "hot px + bad col" if defects else "none",
                    "wall_s": round(wall_s, 2),
                    "cpu_s": round(cpu_s, 2),
                    "Mpix_per_cpu_s": round(len(frames) * args.size**2 / cpu_s / 1e6, 2),
                }
            )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report(
        "fusion",
        rows,
        {
            "seeing_arcsec": SEEING_ARCSEC,
            "threads": 1,
            "load_average_1min": load,
            "cpu_count": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
