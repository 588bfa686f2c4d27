"""Calibrate and evaluate the measured-depth score on the quality dataset's runs.

The same runs, perturbations and labels as ``skytwin models dataset quality --seed 0``
(:mod:`models.quality.dataset`: held-out seeds, and a site and telescopes never seen in
training), rendered at the in-loop default frame size (1024²) instead of 256², because
the depth is measured on the whole frame. Three scorers on the same frames:

- ``depth``: :func:`models.quality.depth.measure_depth` (score, FWHM, transparency);
- ``cnn``: the shipped quality CNN (:class:`models.quality.stage.QualityStage`);
- ``sep``: the SEP baseline (:func:`models.quality.baseline.measure`).

``--calibrate`` fits the three constants of :mod:`models.quality.depth` (FWHM slope and
offset, aperture fraction) on frames of the *train* split and prints them; ``--evaluate``
writes ``depth_eval.json`` (score MAE, seeing MAE, cloud ROC AUC per split and scorer)
and ``depth_eval_frames.parquet`` (every frame's truth and the three scorers' outputs).

    .venv/bin/python -m models.quality.depth_eval --calibrate --n 120
    .venv/bin/python -m models.quality.depth_eval --evaluate --n 150 --out models/quality/weights
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.metrics import roc_auc

REPO = Path(__file__).resolve().parents[2]
FRAME_SIZE = 1024
CLOUD_INDEX = 0  # FLAG_NAMES[0] == "cloud"


def _jobs(split: str, n: int, size: int, seed: int, root: Path) -> list[tuple]:
    from models.quality.dataset import frame_jobs, make_runs, run_plans

    plans = run_plans(seed)
    runs = make_runs(plans, root, REPO)
    # The dataset's split fractions apply to the frames drawn: 0.15 of 6n + 10 gives the
    # held-out and unseen splits 136 frames for n = 150, the train split its first n.
    jobs, splits = frame_jobs(plans, runs, 6 * n + 10, size, seed)
    return [j for j, s in zip(jobs, splits, strict=True) if s == split][:n]


def _measure(job: tuple) -> dict:
    import torch

    from models.quality.baseline import measure
    from models.quality.dataset import make_frame
    from models.quality.depth import measure_depth

    torch.set_num_threads(1)
    frame = make_frame(job)
    truth = frame["truth"]
    header, data = frame["header"], frame["image"]
    depth = measure_depth(data, header)
    cnn = _cnn().predict(data, header)
    sep = measure(data, header)
    return {
        "score": frame["score"], "seeing": frame["seeing"], "cloud": int(frame["flags"][0]),
        "seeing_etc": math.hypot(truth["seeing_fwhm_arcsec"], truth["defocus_fwhm_arcsec"]),
        "transparency": truth["transparency"], "pixel_scale": truth["pixel_scale_arcsec"],
        "depth_score": depth["score"], "depth_fwhm": depth["fwhm_arcsec"],
        "depth_transparency": depth["transparency"], "depth_stars": depth["n_stars"],
        "depth_fwhm_raw": depth["fwhm_raw_arcsec"],
        "depth_transparency_raw": depth["transparency_raw"],
        "cnn_score": float(cnn["score"]), "cnn_seeing": float(cnn["seeing"]),
        "cnn_cloud": float(cnn["flags"][CLOUD_INDEX]),
        "sep_score": sep["score"], "sep_seeing": sep["seeing"], "sep_cloud": sep["cloud"],
        "site": frame["site"],
    }  # fmt: skip


@lru_cache(maxsize=1)
def _cnn():
    """The shipped CNN, loaded once per worker process."""
    from models.quality.stage import QualityStage

    return QualityStage(threads=1)


def measure_split(split: str, n: int, processes: int, root: Path, seed: int = 0) -> list[dict]:
    from tqdm import tqdm

    jobs = _jobs(split, n, FRAME_SIZE, seed, root)
    with ProcessPoolExecutor(processes) as pool:
        return list(tqdm(pool.map(_measure, jobs), total=len(jobs), desc=split, unit="frame"))


def calibrate(rows: list[dict]) -> dict:
    """FWHM_etc² = slope · FWHM_measured² + offset · scale², and the aperture fraction.

    Fitted on the raw measurements of the frames the depth could measure, with 3σ
    clipping (a trailed or donut frame's FWHM is not the ETC's).
    """
    fwhm = np.array([r["seeing_etc"] for r in rows])
    meas = np.array([r["depth_fwhm_raw"] for r in rows])
    scale = np.array([r["pixel_scale"] for r in rows])
    ok = np.isfinite(meas) & np.isfinite(fwhm)
    design = np.column_stack([meas**2, scale**2])
    for _ in range(5):
        coef, *_ = np.linalg.lstsq(design[ok], fwhm[ok] ** 2, rcond=None)
        resid = design @ coef - fwhm**2
        ok &= np.abs(resid) < 3.0 * np.std(resid[ok])
    ratio = np.array([r["depth_transparency_raw"] / r["transparency"] for r in rows])
    good = np.isfinite(ratio)
    return {"FWHM_SLOPE": round(float(coef[0]), 3), "FWHM_OFFSET_PIX2": round(float(coef[1]), 3),
            "APERTURE_FRACTION": round(float(np.median(ratio[good])), 3),
            "frames": int(ok.sum())}  # fmt: skip


def summarise(rows: list[dict]) -> dict:
    """Score and seeing MAE and cloud ROC AUC of each scorer on the same frames.

    ``depth`` is what the ``quality-depth`` stage outputs: the measured depth's score,
    FWHM and cloud probability, and the CNN's where the depth could not be measured.
    A scorer's seeing MAE leaves out the frames it gave no FWHM for (SEP without a star).
    """
    from models.quality.depth import cloud_probability

    out: dict = {"n": len(rows)}
    score = np.array([r["score"] for r in rows])
    seeing = np.array([r["seeing"] for r in rows])
    cloud = np.array([r["cloud"] for r in rows])
    measured = np.array([math.isfinite(r["depth_score"]) for r in rows])
    out["depth_measured_fraction"] = round(float(measured.mean()), 3)
    # The depth stage falls back on the CNN where it cannot measure (as the stage does).
    depth_score = np.where(
        measured, [r["depth_score"] for r in rows], [r["cnn_score"] for r in rows]
    )
    depth_seeing = np.where(
        measured, [r["depth_fwhm"] for r in rows], [r["cnn_seeing"] for r in rows]
    )
    depth_cloud = np.where(measured, [cloud_probability(r["depth_transparency"]) for r in rows],
                           [r["cnn_cloud"] for r in rows])  # fmt: skip
    scorers = {
        "depth": (depth_score, depth_seeing, depth_cloud),
        "cnn": ([r["cnn_score"] for r in rows], [r["cnn_seeing"] for r in rows],
                [r["cnn_cloud"] for r in rows]),
        "sep": ([r["sep_score"] for r in rows], [r["sep_seeing"] for r in rows],
                [r["sep_cloud"] for r in rows]),
    }  # fmt: skip
    for name, (s, f, c) in scorers.items():
        out[name] = {
            "score_mae": round(float(np.mean(np.abs(np.asarray(s, float) - score))), 2),
            "seeing_mae_arcsec": round(float(np.nanmean(np.abs(np.asarray(f, float) - seeing))), 3),
            "cloud_auc": round(float(roc_auc(cloud, np.asarray(c, float))), 4),
        }

    def mae(a, b):
        return float(np.mean(np.abs(a[measured] - b[measured])))

    out["depth_on_measured"] = {
        "score_mae": round(mae(depth_score, score), 2),
        "seeing_mae_arcsec": round(mae(depth_seeing, seeing), 3),
    }
    out["cloud_positives"] = int(cloud.sum())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--calibrate", action="store_true")
    mode.add_argument("--evaluate", action="store_true")
    parser.add_argument("--n", type=int, default=150, help="frames per split")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--runs", default="outputs/quality/depth_runs",
                        help="where the dataset's runs are kept (reused)")  # fmt: skip
    parser.add_argument("--out", default="outputs/quality", help="where depth_eval.json goes")
    args = parser.parse_args(argv)
    root = Path(args.runs)
    started = time.perf_counter()
    if args.calibrate:
        rows = measure_split("train", args.n, args.processes, root)
        print(json.dumps(calibrate(rows), indent=1))
        return
    result = {"frame_size_pix": FRAME_SIZE, "command": "python -m models.quality.depth_eval "
              f"--evaluate --n {args.n}"}  # fmt: skip
    import pandas as pd

    out = Path(args.out)
    frames = []
    for split in ("heldout", "unseen"):
        rows = measure_split(split, args.n, args.processes, root)
        result[split] = summarise(rows)
        frames += [{"split": split, **r} for r in rows]
    result["seconds"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frames).to_parquet(out / "depth_eval_frames.parquet")
    (out / "depth_eval.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
