"""The issue's depth figures for the baselines, on twin stacks of N = 2..6 frames.

For each N, one field is rendered by the twin (:mod:`.twin_stack`: stars and galaxies,
Kolmogorov ⊗ Airy PSFs from each spec's seeing, Poisson + read noise) at N seeings spread
evenly over 0.8–2.5", with transparency and sky varying too; the three coadds are made,
and for each: the 5σ point-source depth from the exact background-limited noise of a
PSF fit (:func:`~.photometry.coadd_flux_sigma`), the same measured on the noise itself
(coadd minus the noiseless coadd, :func:`~.photometry.matched_filter_sigma`), the gain
over the best single frame, and SNR² / Σ SNR_i² (1 for Zackay & Ofek's proper coadd).

    .venv/bin/python -m models.fusion.figures            # ~1 min; writes
                                                         # benchmarks/results/fusion_depth.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from models.fusion import METHODS
from models.fusion.photometry import (
    coadd_flux_sigma,
    frame_flux_sigma,
    limiting_mag,
    matched_filter_sigma,
)
from models.fusion.twin_stack import base_spec, render_stack

SEEING_RANGE_ARCSEC = (0.8, 2.5)
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "fusion_depth.json"


def stack_specs(n: int, size: int, seed: int):
    """N exposures of one field: seeing spread over the range, transparency and sky too."""
    rng = np.random.default_rng(seed)
    seeing = np.linspace(*SEEING_RANGE_ARCSEC, n)
    return [
        base_spec(
            size=size,
            seed=seed * 100 + j,
            seeing_fwhm_arcsec=float(s),
            transparency=float(rng.uniform(0.6, 1.0)),
            sky_mag_arcsec2=float(rng.uniform(20.0, 21.3)),
        )
        for j, s in enumerate(seeing)
    ]


def figures_for(n: int, size: int = 384, seed: int = 0) -> list[dict]:
    """One row per method for an N-frame stack (see the module docstring)."""
    stack = render_stack(stack_specs(n, size, seed), noise_seed=seed)
    frames = [s.frame for s in stack]
    single = [frame_flux_sigma(f) for f in frames]
    best = min(single)
    sum_snr2 = sum(s**-2 for s in single)
    rows = []
    for name, fn in METHODS.items():
        coadd = fn(frames)
        truth = fn([s.noiseless for s in stack])
        sigma = coadd_flux_sigma(coadd, frames)
        measured = matched_filter_sigma(coadd.image - truth.image, coadd.psf, ~coadd.mask)
        rows.append(
            {
                "n_frames": n,
                "method": name,
                "m5_best_frame": round(limiting_mag(best), 3),
                "m5_coadd": round(limiting_mag(sigma), 3),
                "dm5_vs_best": round(limiting_mag(sigma) - limiting_mag(best), 3),
                "dm5_limit": round(2.5 * math.log10(math.sqrt(sum_snr2) * best), 3),
                "snr2_ratio": round(sigma**-2 / sum_snr2, 4),
                "snr2_ratio_measured": round(measured**-2 / sum_snr2, 3),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--max-frames", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = [r for n in range(2, args.max_frames + 1) for r in figures_for(n, args.size, seed=n)]
    keys = list(rows[0])
    print("  ".join(keys))
    for r in rows:
        print("  ".join(str(r[k]) for k in keys))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "fusion_depth",
        "seeing_arcsec": SEEING_RANGE_ARCSEC,
        "frame_size": args.size,
        "rows": rows,
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
