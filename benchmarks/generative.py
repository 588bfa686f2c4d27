"""The diffusion galaxy generator's speed: stamps per second, a sky cell's bank, and a frame.

Measured in this process, on the CPU (``--threads``, default 1):

- ``sampler``: stamps per second of the shipped model with its DDIM sampler
  (:data:`models.generative.diffusion.DEFAULT_STEPS` steps, batches of 64), at its stamp
  size, cleaned and unit-flux as the renderer uses them;
- ``bank``: building one sky cell's bank (every galaxy brighter than i = 20 in a 0.2°
  cell, sampled and written) and reading it back;
- ``frame``: a 2048² frame of ``benchmarks/frames.py``'s exposure (1-m preset, r, 60 s,
  b = 12°, 2,700 galaxies) with ``imaging.galaxies: diffusion`` — first with its cells'
  banks built (cold), then with them on disk (warm, every later exposure of the field) —
  against the parametric fast path on the same catalogue, best of ``--repeats``.

    .venv/bin/python benchmarks/generative.py [--quick] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import best_of, report
from frames import bench_spec

import twin  # noqa: F401  (offline astropy)
from twin.imaging.catalog import TrailModel, cell_of, sky_catalog
from twin.imaging.render import psf_fwhm_px, render_expected


def main(argv: list[str] | None = None) -> Path:
    import torch

    from models.generative import source as source_module
    from models.generative.dataset import conditioning
    from models.generative.diffusion import DEFAULT_STEPS
    from models.generative.generator import GalaxyGenerator
    from models.generative.source import BANK_MAG_I, CellBanks, DiffusionGalaxyStamps

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 512² frame, 64 stamps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = 512 if args.quick else 2048
    n_stamps = 64 if args.quick else 256
    repeats = args.repeats or (1 if args.quick else 3)

    gen = GalaxyGenerator(steps=args.steps, threads=args.threads)
    render = gen.manifest["render"]
    rng = np.random.default_rng(0)
    cond = conditioning(np.exp(rng.uniform(np.log(1.3), np.log(4.6), n_stamps)),
                        rng.uniform(0, 0.6, n_stamps), rng.uniform(0, 180, n_stamps),
                        render["log_snr"], 1.0)  # fmt: skip
    gen.stamps(cond[:8], range(8))  # warm-up
    t0 = time.perf_counter()
    gen.stamps(cond, range(n_stamps))
    sampler_s = time.perf_counter() - t0

    spec = bench_spec(size)
    catalog = sky_catalog(spec, trails=TrailModel(rate_per_hour_deg2=0.0))
    cells = sorted(set(zip(*(v.tolist() for v in cell_of(catalog.galaxies["source_id"])),
                           strict=True)))  # fmt: skip
    bank_dir = Path(tempfile.mkdtemp(prefix="skytwin-bank-"))
    try:
        banks = CellBanks(gen, 0, bank_dir)
        t0 = time.perf_counter()
        first = banks.build(*cells[0])
        bank_build_s = time.perf_counter() - t0
        source_module._CACHES.clear()
        t0 = time.perf_counter()
        banks.get(*cells[0])
        bank_read_s = time.perf_counter() - t0
        source_module._CACHES.clear()

        fwhm = psf_fwhm_px(spec) * spec.pixel_scale_arcsec

        def diffusion():
            source = DiffusionGalaxyStamps(fwhm, sky_seed=0, bank_dir=bank_dir, generator=gen)
            return render_expected(spec, catalog=catalog, stamp_source=source), source

        render_expected(spec.resized(64, 64), catalog=catalog)  # warm-up: imports, tables
        t0 = time.perf_counter()
        cold, source = diffusion()
        cold_s = time.perf_counter() - t0
        source_module._CACHES.clear()  # warm = banks on disk, read by a new process
        warm_s = best_of(lambda: (source_module._CACHES.clear(), diffusion()), repeats)
        parametric_s = best_of(lambda: render_expected(spec, catalog=catalog), repeats)
        galaxies = cold.truth[cold.truth["type"] == "galaxy"].to_dict("records")
        banked = sum(f is not None for f in source.lookup(galaxies))
    finally:
        shutil.rmtree(bank_dir, ignore_errors=True)

    rows = [
        {"case": f"sampler ({gen.size}², {args.steps} DDIM steps)", "seconds": sampler_s,
         "per_unit": n_stamps / sampler_s, "unit": "stamps/s", "vs_parametric": float("nan")},
        {"case": f"bank build, one cell (i < {BANK_MAG_I:g}: {len(first['source_id'])} galaxies)",
         "seconds": bank_build_s, "per_unit": bank_build_s, "unit": "s/cell",
         "vs_parametric": float("nan")},
        {"case": "bank read, one cell", "seconds": bank_read_s, "per_unit": bank_read_s,
         "unit": "s/cell", "vs_parametric": float("nan")},
        {"case": f"frame {size}², parametric fast path", "seconds": parametric_s,
         "per_unit": 1 / parametric_s, "unit": "frames/s", "vs_parametric": 1.0},
        {"case": f"frame {size}², diffusion, banks on disk", "seconds": warm_s,
         "per_unit": 1 / warm_s, "unit": "frames/s", "vs_parametric": warm_s / parametric_s},
        {"case": f"frame {size}², diffusion, {len(cells)} banks built", "seconds": cold_s,
         "per_unit": 1 / cold_s, "unit": "frames/s", "vs_parametric": cold_s / parametric_s},
    ]  # fmt: skip
    print(f"{size}² frame: {len(galaxies)} galaxies drawn, {banked} from the model; "
          f"{len(cells)} sky cells; torch threads {args.threads}")  # fmt: skip
    return report("generative_quick" if args.quick else "generative", rows,
                  {"size": size, "galaxies": len(galaxies), "banked_galaxies": banked,
                   "cells": len(cells), "threads": args.threads, "steps": args.steps,
                   "stamp": gen.size, "weights_sha256": gen.sha256,
                   "repeats": repeats})  # fmt: skip


if __name__ == "__main__":
    main()
