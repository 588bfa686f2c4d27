"""Frames for the anomaly model, rendered by the twin: normal ones to learn, faulted ones to test.

Why normal frames only for training: an anomaly detector must flag faults nobody has
labelled (DOMAIN.md Layer 1), so the autoencoder never sees one; the rare faults of
:mod:`twin.imaging.faults` are kept for evaluation, one class at a time, on runs whose
seeds training never used.

Splits (each from its own one-night runs of ``scenarios/global-3site.yaml``, so frames,
sky, weather and equipment differ; run seeds in :data:`SPLIT_SEEDS`):

| split       | frames                        | use                                    |
|-------------|-------------------------------|----------------------------------------|
| train       | normal                        | fit the autoencoder                    |
| val         | normal                        | early stopping, score calibration       |
| test        | normal + each fault (one each) | ROC AUC, precision@k per class         |

Each frame is the exposure's central :data:`FRAME_SIZE`² window, rendered as
``skytwin frame`` renders it (same seed, same noise), then :func:`preprocess`-ed to
:data:`INPUT_SIZE`² (4×4 binned, sky-subtracted, in units of its noise, asinh-squeezed)
and stored as float16 in ``OUT/anomaly-SPLIT.npz`` with a metadata table each.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

FRAME_SIZE = 512
"""Frame window rendered (pixels): 200 arcsec on a 1-m (0.389 arcsec/pixel)."""
BIN = 4
INPUT_SIZE = FRAME_SIZE // BIN
ASINH_SOFTENING = 3.0
"""Noise units below which asinh is linear: sky noise stays visible, stars are squeezed."""
ASINH_SCALE = 3.0
"""Divides the asinh so a bright star (~10⁴ σ) is ~3 and the sky ~0."""

CLASSES = ("normal", "dew", "banding", "vignetting", "glint")
SCENARIO = "scenarios/global-3site.yaml"
SPLIT_SEEDS = {"train": (101, 102, 103, 104, 105, 106), "val": (201,), "test": (301, 302)}
SPLIT_STARTS = ("2026-01-10", "2026-03-15", "2026-05-20", "2026-07-25", "2026-09-30", "2026-11-30")
SPLITS = ("train", "val", "test")
DEFAULT_COUNTS = {"train": 1000, "val": 150, "test_normal": 250, "test_fault": 125}
DEFAULT_OUT = Path("outputs/models/anomaly")


def preprocess(data_adu: np.ndarray, header: Mapping | None = None) -> np.ndarray:
    """Raw ADU ``(FRAME_SIZE, FRAME_SIZE)`` → float32 ``(INPUT_SIZE, INPUT_SIZE)``.

    4×4 mean binning, then the median (sky + bias) subtracted and divided by the binned
    frame's robust noise (1.4826 × median absolute deviation), then
    ``asinh(z / ASINH_SOFTENING) / ASINH_SCALE``. Only the pixels: no header value needed
    (``header`` is accepted for a uniform signature).
    """
    a = np.asarray(data_adu, dtype=np.float32)
    if a.shape != (FRAME_SIZE, FRAME_SIZE):
        raise ValueError(f"frame is {a.shape}; crop a {FRAME_SIZE}² window first (tiles())")
    b = a.reshape(INPUT_SIZE, BIN, INPUT_SIZE, BIN).mean(axis=(1, 3))
    median = float(np.median(b))
    sigma = 1.4826 * float(np.median(np.abs(b - median)))
    z = (b - median) / max(sigma, 1e-3)
    return (np.arcsinh(z / ASINH_SOFTENING) / ASINH_SCALE).astype(np.float32)


def tiles(data_adu: np.ndarray) -> list[np.ndarray]:
    """The frame as non-overlapping ``FRAME_SIZE``² windows (a smaller frame: none)."""
    ny, nx = data_adu.shape
    return [
        data_adu[y : y + FRAME_SIZE, x : x + FRAME_SIZE]
        for y in range(0, ny - FRAME_SIZE + 1, FRAME_SIZE)
        for x in range(0, nx - FRAME_SIZE + 1, FRAME_SIZE)
    ]


# --- rendering ---------------------------------------------------------------------------------


def make_run(seed: int, start: str, runs_dir: Path) -> Path:
    """A one-night greedy run of :data:`SCENARIO` (kept: its frames can be re-rendered)."""
    from twin.ops.run import run_scenario
    from twin.scenario import load_scenario

    out = runs_dir / f"run-{seed}"
    if not (out / "observations.parquet").exists():
        scenario = load_scenario(SCENARIO, nights=1, seed=seed, start=start)
        run_scenario(scenario, out, "greedy", progress=False, plots=False)
    return out


@lru_cache(maxsize=4)
def _run_frames(run_dir: str):
    from twin.imaging.frames import RunFrames

    return RunFrames(run_dir, FRAME_SIZE)


def render_window(run_dir: str | Path, obs_id: int, faults: Sequence[str] = ()):
    """``(raw_adu, header, spec)`` of one exposure's central window with ``faults``."""
    from twin.imaging.fits import frame_header
    from twin.imaging.frames import render_arrays

    frames = _run_frames(str(run_dir))
    spec = replace(frames.spec(int(obs_id)), faults=tuple(faults))
    detector, _ = render_arrays(spec, frames.options)
    return detector.raw_adu, frame_header(spec), spec


def _render_job(job: tuple[str, int, str]) -> np.ndarray:
    run_dir, obs_id, cls = job
    raw, header, _ = render_window(run_dir, obs_id, () if cls == "normal" else (cls,))
    return preprocess(raw, header).astype(np.float16)


def plan(
    runs: Mapping[str, Sequence[Path]], counts: Mapping[str, int], data_seed: int
) -> pd.DataFrame:
    """Which exposure goes where: ``split``, ``cls``, ``run_dir``, ``obs_id``, ``run_seed``.

    Exposures are drawn without replacement within each split's runs (``data_seed``), so a
    test exposure appears once, either normal or with one fault.
    """
    rng = np.random.default_rng(data_seed)
    rows = []
    wanted = {
        "train": [("normal", counts["train"])],
        "val": [("normal", counts["val"])],
        "test": [("normal", counts["test_normal"])]
        + [(c, counts["test_fault"]) for c in CLASSES[1:]],
    }
    for split, dirs in runs.items():
        pool = [
            (str(d), int(o), int(d.name.split("-")[-1]))
            for d in dirs
            for o in pd.read_parquet(d / "observations.parquet", columns=["obs_id"])["obs_id"]
        ]
        need = sum(n for _, n in wanted[split])
        if need > len(pool):
            raise ValueError(
                f"{split}: {need} frames wanted, its runs hold {len(pool)}; "
                "add seeds to SPLIT_SEEDS or ask for fewer"
            )
        picks = rng.permutation(len(pool))[:need]
        k = 0
        for cls, n in wanted[split]:
            for i in picks[k : k + n]:
                d, o, s = pool[i]
                rows.append({"split": split, "cls": cls, "run_dir": d, "obs_id": o, "run_seed": s})
            k += n
    return pd.DataFrame(rows)


def build(
    out: Path = DEFAULT_OUT,
    counts: Mapping[str, int] | None = None,
    data_seed: int = 0,
    processes: int = 2,
    splits: Sequence[str] = SPLITS,
    progress: bool = True,
) -> Path:
    """Render ``splits`` into ``out/anomaly-SPLIT.npz`` (+ ``.meta.parquet``), one file per
    split so training can start while the test split renders; ``out/anomaly.json``
    records the settings. The plan (which exposure where) covers every split whichever
    are built, so building them apart gives the same frames as together."""
    from tqdm.auto import tqdm

    counts = {**DEFAULT_COUNTS, **(counts or {})}
    out = Path(out)
    t0 = time.perf_counter()
    runs = {
        split: [
            make_run(seed, SPLIT_STARTS[i % len(SPLIT_STARTS)], out / "runs")
            for i, seed in enumerate(seeds)
        ]
        for split, seeds in SPLIT_SEEDS.items()
    }
    full = plan(runs, counts, data_seed)
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:
        # Grouped by run so each worker's cached RunFrames and flat fields are reused.
        meta = full[full["split"] == split].sort_values(["run_dir", "obs_id"], kind="stable")
        meta = meta.reset_index(drop=True)
        jobs = list(meta[["run_dir", "obs_id", "cls"]].itertuples(index=False, name=None))
        images = np.empty((len(jobs), INPUT_SIZE, INPUT_SIZE), np.float16)
        bar = tqdm(total=len(jobs), unit="frame", desc=f"anomaly {split}", disable=not progress)
        with ProcessPoolExecutor(max_workers=max(1, processes)) as pool:
            for i, image in enumerate(pool.map(_render_job, jobs, chunksize=8)):
                images[i] = image
                bar.update(1)
        bar.close()
        np.savez(out / f"anomaly-{split}.npz", images=images)
        meta.to_parquet(out / f"anomaly-{split}.meta.parquet", index=False)
    info = {
        "data_seed": data_seed,
        "counts": counts,
        "frame_size": FRAME_SIZE,
        "input_size": INPUT_SIZE,
        "scenario": SCENARIO,
        "split_seeds": SPLIT_SEEDS,
        "frames": len(full),
        "processes": processes,
    }
    info_path = out / "anomaly.json"
    old = json.loads(info_path.read_text()) if info_path.is_file() else {}
    seconds = old.get("seconds", {}) if old.get("counts") == counts else {}
    seconds[",".join(splits)] = round(time.perf_counter() - t0, 1)
    info_path.write_text(json.dumps({**info, "seconds": seconds}, indent=2))
    return out


def load(
    out: Path = DEFAULT_OUT, splits: Sequence[str] = SPLITS
) -> tuple[np.ndarray, pd.DataFrame]:
    """``(images float16 (n, 128, 128), meta)`` of the built ``splits``."""
    out = Path(out)
    images, metas = [], []
    for split in splits:
        path = out / f"anomaly-{split}.npz"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: build it first with `skytwin models dataset anomaly --splits {split}`"
            )
        with np.load(path, allow_pickle=False) as z:
            images.append(z["images"])
        metas.append(pd.read_parquet(out / f"anomaly-{split}.meta.parquet"))
    return np.concatenate(images), pd.concat(metas, ignore_index=True)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="skytwin models dataset anomaly", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    for key, n in DEFAULT_COUNTS.items():
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=int,
            default=n,
            dest=key,
            help=f"frames (default {n})",
        )
    args = p.parse_args(argv)
    counts = {k: getattr(args, k) for k in DEFAULT_COUNTS}
    out = build(args.out, counts, args.data_seed, args.processes, args.splits)
    print(f"wrote {', '.join(f'anomaly-{s}.npz' for s in args.splits)} in {out}")
