"""Frames for the anomaly model, rendered by the twin: normal ones to learn, faulted ones to test.

Why normal frames only for training: an anomaly detector must flag faults nobody has
labelled (DOMAIN.md Layer 1), so the autoencoder never sees one; the rare faults of
:mod:`twin.imaging.faults` are kept for evaluation, one class at a time, on runs whose
seeds training never used.

Splits (each from its own one-night runs of ``scenarios/global-3site.yaml``, with their
own run seeds *and* start dates, :data:`SPLIT_RUNS`, so that no split shares a night with
another: frames, sky, weather and equipment differ, and no (site, night, pointing) of a
test frame was seen in training; :func:`plan` checks it and refuses otherwise):

| split | frames                         | use                                            |
|-------|--------------------------------|------------------------------------------------|
| train | normal                         | fit the autoencoder                            |
| val   | normal + each fault (dev set)  | early stopping and calibration (normal only);  |
|       |                                | its faults choose the score, never the test's  |
| test  | normal + each fault (one each) | ROC AUC, precision@k per class                 |

Each frame is the exposure's central :data:`FRAME_SIZE`² window, rendered as
``skytwin frame`` renders it (same seed, same noise), then :func:`preprocess`-ed to
:data:`INPUT_SIZE`² (4×4 binned, sky-subtracted, in units of its noise, asinh-squeezed)
and stored as float16 in ``OUT/anomaly-SPLIT.npz`` with a metadata table each.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

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
SPLIT_RUNS = {
    "train": (
        (101, "2026-01-10"),
        (102, "2026-03-15"),
        (103, "2026-05-20"),
        (104, "2026-07-25"),
        (105, "2026-09-30"),
        (106, "2026-11-30"),
    ),
    "val": ((201, "2026-02-12"),),
    "test": ((301, "2026-04-17"), (302, "2026-10-28")),
}
"""``(run seed, start date)`` of each split's one-night runs: seeds and nights both apart."""
SPLIT_SEEDS = {split: tuple(seed for seed, _ in runs) for split, runs in SPLIT_RUNS.items()}
SPLITS = ("train", "val", "test")
DEFAULT_COUNTS = {
    "train": 1000,
    "val": 150,
    "val_fault": 50,
    "test_normal": 250,
    "test_fault": 125,
}
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
    if (out / "observations.parquet").exists():
        kept = yaml.safe_load((out / "scenario.yaml").read_text())
        if str(kept.get("start")) == str(start) and int(kept.get("seed", -1)) == seed:
            return out
        shutil.rmtree(out)  # another night under this seed: a cached run must not leak in
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


def night_mjd(mjd: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """The night an exposure belongs to: the integer MJD of the local noon that starts it
    (local mean solar time, so a night never straddles two labels at any longitude)."""
    return np.floor(np.asarray(mjd, float) + np.asarray(lon_deg, float) / 360.0 - 0.5).astype(int)


POOL_COLUMNS = ["obs_id", "site", "target_id", "ra_deg", "dec_deg", "mjd_start", "site_lon_deg"]


def pointing(target_id, ra_deg, dec_deg) -> pd.Series:
    """``TARGET@RA,DEC`` (degrees to 0.01): a field by its name *and* place, so two runs'
    ``alert-0002`` (other alerts, other places) differ while a survey field or a
    monitoring target is the same pointing whichever night observes it."""
    ra = pd.Series(np.asarray(ra_deg, float)).map("{:.2f}".format)
    dec = pd.Series(np.asarray(dec_deg, float)).map("{:.2f}".format)
    return pd.Series(np.asarray(target_id, str)) + "@" + ra + "," + dec


KEY = ("site", "night", "pointing")
"""What two splits must never share: a site's exposure of one pointing on one night."""


def _pool(split: str, dirs: Sequence[Path]) -> pd.DataFrame:
    frames = []
    for d in dirs:
        obs = pd.read_parquet(Path(d) / "observations.parquet", columns=POOL_COLUMNS)
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "run_dir": str(d),
                    "obs_id": obs["obs_id"].astype(int),
                    "run_seed": int(Path(d).name.split("-")[-1]),
                    "site": obs["site"].astype(str),
                    "night": night_mjd(obs["mjd_start"], obs["site_lon_deg"]),
                    "pointing": pointing(obs["target_id"], obs["ra_deg"], obs["dec_deg"]),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def shared_keys(pools: Mapping[str, pd.DataFrame], a: str, b: str, key=KEY) -> set[tuple]:
    """The ``key`` tuples (default (site, night, pointing)) found in both splits ``a``, ``b``."""
    ka = set(pools[a][list(key)].itertuples(index=False, name=None))
    kb = set(pools[b][list(key)].itertuples(index=False, name=None))
    return ka & kb


def check_disjoint(pools: Mapping[str, pd.DataFrame]) -> None:
    """Raise ``ValueError`` when two splits share a (site, night, pointing), or a night
    at all: a test frame must come from a night training never saw."""
    names = list(pools)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            nights = shared_keys(pools, a, b, ("site", "night"))
            triples = shared_keys(pools, a, b)
            if nights or triples:
                raise ValueError(
                    f"splits {a} and {b} share {len(nights)} (site, night) and "
                    f"{len(triples)} (site, night, pointing), e.g. "
                    f"{sorted(triples or nights)[:3]}; give them other start dates (SPLIT_RUNS)"
                )


def plan(
    runs: Mapping[str, Sequence[Path]], counts: Mapping[str, int], data_seed: int
) -> pd.DataFrame:
    """Which exposure goes where: ``split``, ``cls``, ``run_dir``, ``obs_id``, ``run_seed``,
    ``site``, ``night``, ``pointing``.

    Exposures are drawn without replacement within each split's runs (``data_seed``), so a
    val or test exposure appears once, either normal or with one fault. The splits' runs
    must not share a night (:func:`check_disjoint`).
    """
    rng = np.random.default_rng(data_seed)
    wanted = {
        "train": [("normal", counts["train"])],
        "val": [("normal", counts["val"])] + [(c, counts["val_fault"]) for c in CLASSES[1:]],
        "test": [("normal", counts["test_normal"])]
        + [(c, counts["test_fault"]) for c in CLASSES[1:]],
    }
    pools = {split: _pool(split, dirs) for split, dirs in runs.items()}
    check_disjoint(pools)
    rows = []
    for split, pool in pools.items():
        need = sum(n for _, n in wanted[split])
        if need > len(pool):
            raise ValueError(
                f"{split}: {need} frames wanted, its runs hold {len(pool)}; "
                "add runs to SPLIT_RUNS or ask for fewer"
            )
        picks = rng.permutation(len(pool))[:need]
        k = 0
        for cls, n in wanted[split]:
            chosen = pool.iloc[picks[k : k + n]].copy()
            chosen.insert(1, "cls", cls)
            rows.append(chosen)
            k += n
    cols = ["split", "cls", "run_dir", "obs_id", "run_seed", "site", "night", "pointing"]
    return pd.concat(rows, ignore_index=True)[cols]


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
        split: [make_run(seed, start, out / "runs") for seed, start in split_runs]
        for split, split_runs in SPLIT_RUNS.items()
    }
    full = plan(runs, counts, data_seed)
    train_pointings = set(full.loc[full["split"] == "train", "pointing"])
    out.mkdir(parents=True, exist_ok=True)
    # The whole plan, every split, whichever are rendered now: shipped beside the weights
    # (weights/splits.parquet) so a test can check the splits without the frames.
    full.drop(columns="run_dir").to_parquet(out / "anomaly-plan.parquet", index=False)
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
        "split_runs": SPLIT_RUNS,
        "frames": len(full),
        "shared_site_night_pointing_train_test": 0,  # plan() refuses otherwise
        # Another night, the same field (the monitoring targets recur every night):
        "test_frames_on_a_train_pointing": int(
            full.loc[full["split"] == "test", "pointing"].isin(train_pointings).sum()
        ),
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
