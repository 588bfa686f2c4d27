"""Labelled frames for the quality model, made by the twin itself, with truth.

``skytwin models dataset quality --out DIR --n N --size PIX --seed S``

How a frame is made: one night of a shipped scenario (``scenarios/*.yaml``) is run with
the greedy policy at a drawn start date and run seed; an exposure of the log is turned
into its :class:`~twin.imaging.spec.FrameSpec` (:class:`~twin.imaging.frames.RunFrames`,
central ``PIX × PIX`` window of the detector); each condition below is forced with
probability :data:`P_FORCE` by ``dataclasses.replace`` of the spec; the frame is rendered
in memory (:func:`models.quality.frames.render_in_memory`).

Defocus is drawn as the out-of-focus pupil (``defocus_model="annulus"``): with the
twin's default Gaussian defocus, a defocused frame is a frame with worse seeing and no
measurement on the pixels can tell ``focus`` from ``bad_seeing``.

Labels, all from the truth of the (perturbed) spec, thresholds in :data:`THRESHOLDS`:

| flag        | positive when                                                      |
|-------------|--------------------------------------------------------------------|
| cloud       | transparency < 0.8 (more than 0.24 mag lost to cloud)              |
| bad_seeing  | delivered atmospheric FWHM > 1.5″                                  |
| tracking    | tracking trail length > 1.0″                                       |
| focus       | defocus FWHM > 1.0″                                                |
| sensor      | ≥ 10 hot pixels or ≥ 1 bad column inside the frame                 |
| trail       | a trail whose light in the frame is ≥ 10σ of a 10 × 5 pixel patch  |
| bright_sky  | sky more than 1.0 mag brighter than the site's dark zenith sky     |

``score`` = 100 × the effective-time ratio recomputed for the perturbed spec with the
twin's own model (:meth:`twin.ops.quality.QualityModel.depth` then ``.quality``, as
:func:`twin.ops.exposures.exposure_truth` does). ``seeing``: the FWHM of the PSF the
frame was drawn with — atmosphere ⊗ optics ⊗ annulus defocus, tracking left out
(:func:`image_fwhm_label`, computed when the shards are loaded and cached beside them).
The shards store the quadrature ``seeing ⊕ defocus`` (the ``IMGFWHM`` card, loaded as
``seeing_quadrature``), which is the FWHM of a *Gaussian* defocus: on the annulus frames
it is off by 0.05″ on average (0.03″ low on frames with under 0.5″ defocus, the Airy
core; 0.10″ high with over 1.5″ defocus; up to 0.36″), measured on the first 500 frames of
``--n 8000 --seed 0``: as large as the 0.08″ the seeing estimate is asked to reach.

Splits: ``train``; ``heldout`` (runs with seeds never used for training, sites seen);
``unseen`` (every frame of the held-out site :data:`UNSEEN_SITE`, whose telescopes —
``hanle-1m`` and the only 2-m, ``hanle-2m`` — are never in training).

Storage: ``shard_NNN.npz`` (``image`` uint16 N×PIX×PIX, ``side`` float16, ``score``,
``seeing``, ``flags`` uint8 N×7, ``truth`` float32 N×len(TRUTH_NAMES), ``split`` uint8),
``shard_NNN.headers.json`` (the header cards per frame, for the SEP baseline), and
``index.json`` (shards, counts, flag positives, the command and seed). No pickle.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from twin.pipeline.stage import FLAG_NAMES

SCENARIOS = ("global-3site", "dense-8site", "india-chile", "single-site")
UNSEEN_SITE = "hanle"
SPLITS = ("train", "heldout", "unseen")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
P_FORCE = 0.22
THRESHOLDS = {
    "cloud_transparency": 0.8, "bad_seeing_arcsec": 1.5, "tracking_arcsec": 1.0,
    "focus_defocus_arcsec": 1.0, "sensor_hot_pixels": 10, "sensor_bad_columns": 1,
    "trail_snr": 10.0, "bright_sky_mag": 1.0,
}  # fmt: skip
TRUTH_NAMES = ("transparency", "seeing_fwhm_arcsec", "defocus_fwhm_arcsec",
               "tracking_error_arcsec", "sky_excess_mag", "n_hot_in_frame",
               "n_bad_columns_in_frame", "trail_snr", "quality", "pixel_scale_arcsec")  # fmt: skip
DEFOCUS_MODEL = "annulus"
SHARD_SIZE = 500
RUNS_PER_SPLIT = {"train": 10, "heldout": 4, "unseen": 4}


@dataclass(frozen=True)
class RunPlan:
    scenario: str
    seed: int
    start: str
    split: str


def run_plans(seed: int, runs_per_split: dict[str, int] | None = None,
              scenarios: tuple[str, ...] | None = None) -> list[RunPlan]:  # fmt: skip
    """The runs a dataset draws from: disjoint run seeds per split, starts over a year.

    ``scenarios`` (tests) replaces the scenario list of every split (the unseen split
    needs one with a telescope at :data:`UNSEEN_SITE`).
    """
    rng = np.random.default_rng([seed, 0x51])
    plans = []
    for k, split in enumerate(SPLITS):
        names = SCENARIOS if split != "unseen" else ("dense-8site", "india-chile")
        names = scenarios or names
        for j in range((runs_per_split or RUNS_PER_SPLIT)[split]):
            day = int(rng.integers(0, 365))
            start = (np.datetime64("2027-01-01") + np.timedelta64(day, "D")).astype(str)
            plans.append(RunPlan(names[j % len(names)], 1000 * seed + 100 * k + j, start, split))
    return plans


def make_runs(plans: list[RunPlan], root: Path, repo: Path) -> dict[int, Path]:
    """Run each plan's night (kept under ``root/runs``; an existing run is reused)."""
    from twin.ops.run import run_scenario
    from twin.scenario import load_scenario

    out = {}
    for i, plan in enumerate(plans):
        run_dir = root / "runs" / f"{plan.scenario}_{plan.seed}"
        if not (run_dir / "observations.parquet").exists():
            scenario = load_scenario(repo / "scenarios" / f"{plan.scenario}.yaml", nights=1,
                                     seed=plan.seed, start=plan.start)  # fmt: skip
            run_scenario(scenario, run_dir, "greedy", progress=False, plots=False)
        out[i] = run_dir
    return out


# --- one frame -------------------------------------------------------------------------

_RUNS: dict[str, object] = {}


def _run_frames(run_dir: str, size: int):
    from twin.imaging.frames import RunFrames

    if run_dir not in _RUNS:
        _RUNS[run_dir] = RunFrames(run_dir, size=size)
    return _RUNS[run_dir]


def perturb(spec, rng: np.random.Generator) -> tuple[object, float | None]:
    """Force conditions on ``spec`` (each with probability P_FORCE); the trail rate or None."""
    from twin.imaging.catalog import field_radius_deg
    from twin.imaging.detector import detector_window

    force = rng.uniform(size=7) < P_FORCE
    changes: dict = {}
    if force[0]:  # cloud, across the threshold so both sides are populated
        changes["transparency"] = float(rng.uniform(0.05, 0.95))
    if force[1]:
        changes["seeing_fwhm_arcsec"] = float(rng.uniform(1.0, 3.0))
    if force[2]:
        changes["tracking_error_arcsec"] = float(rng.uniform(0.3, 5.0))
        changes["tracking_pa_deg"] = float(rng.uniform(0.0, 180.0))
    if force[3]:
        changes["defocus_fwhm_arcsec"] = float(rng.uniform(0.5, 3.5))
    if force[4]:
        row0, col0 = detector_window(spec)
        n_hot = int(rng.integers(0, 60))
        local = np.stack([rng.integers(0, spec.ny, n_hot), rng.integers(0, spec.nx, n_hot)], 1)
        old = np.zeros((0, 2), np.int64) if spec.hot_pixels is None else spec.hot_pixels
        hot = local + np.array([row0, col0])
        changes["hot_pixels"] = np.concatenate([np.asarray(old).reshape(-1, 2), hot])
        changes["n_hot_pixels"] = len(changes["hot_pixels"])
        n_bad = int(rng.integers(0, 4))
        old_cols = np.zeros(0, np.int64) if spec.bad_columns is None else spec.bad_columns
        cols = col0 + rng.integers(0, spec.nx, n_bad)
        changes["bad_columns"] = np.concatenate([np.asarray(old_cols).ravel(), cols])
        changes["n_bad_columns"] = len(changes["bad_columns"])
    if force[6]:
        changes["sky_mag_arcsec2"] = float(spec.sky_mag_arcsec2 - rng.uniform(0.3, 4.0))
    spec = replace(spec, **changes)
    rate = None
    if force[5]:  # about two trails expected through the footprint and its margin
        area = math.pi * field_radius_deg(spec) ** 2
        rate = 2.0 / (area * spec.exptime_s / 3600.0)
    return spec, rate


def labels(spec, frame, tw) -> dict:
    """Score, seeing, flags and truth columns of a rendered, perturbed frame."""
    from twin.physics.sky import sky_mag_arcsec2

    site = tw.site.site
    m5 = tw.quality.depth(spec.band, spec.exptime_s, airmass=np.asarray(spec.airmass),
                          seeing_fwhm_arcsec=np.asarray(spec.image_fwhm_arcsec),
                          sky_mag_arcsec2=np.asarray(spec.sky_mag_arcsec2),
                          transparency=np.asarray(spec.transparency),
                          throughput=spec.throughput)  # fmt: skip
    quality = float(tw.quality.quality(spec.band, spec.exptime_s, m5))
    dark = float(sky_mag_arcsec2(spec.band, 90.0, -30.0, 90.0, 0.0, -30.0,
                                 site.sky_brightening_mag, site.height_m))  # fmt: skip
    det = spec.telescope.detector
    sky_e = float(frame.header["SKYLEVEL"]) * det.gain_e_per_adu
    trails = frame.truth[frame.truth["type"] == "trail"]
    noise = math.sqrt(50.0 * (max(sky_e, 0.0) + det.read_noise_e**2))
    trail_snr = float(trails["flux_e"].max() / noise) if len(trails) else 0.0
    truth = {
        "transparency": spec.transparency, "seeing_fwhm_arcsec": spec.seeing_fwhm_arcsec,
        "defocus_fwhm_arcsec": spec.defocus_fwhm_arcsec,
        "tracking_error_arcsec": spec.tracking_error_arcsec,
        "sky_excess_mag": dark - spec.sky_mag_arcsec2,
        "n_hot_in_frame": frame.n_hot_pixels_in_frame,
        "n_bad_columns_in_frame": frame.n_bad_columns_in_frame, "trail_snr": trail_snr,
        "quality": quality, "pixel_scale_arcsec": spec.pixel_scale_arcsec,
    }  # fmt: skip
    return {"score": 100.0 * quality, "seeing": spec.image_fwhm_arcsec,
            "flags": flags_from_truth(truth), "truth": truth}  # fmt: skip


def flags_from_truth(truth: dict) -> np.ndarray:
    """The seven flags (order of FLAG_NAMES) from truth values (see the module table)."""
    t = THRESHOLDS
    values = {
        "cloud": truth["transparency"] < t["cloud_transparency"],
        "bad_seeing": truth["seeing_fwhm_arcsec"] > t["bad_seeing_arcsec"],
        "tracking": truth["tracking_error_arcsec"] > t["tracking_arcsec"],
        "focus": truth["defocus_fwhm_arcsec"] > t["focus_defocus_arcsec"],
        "sensor": truth["n_hot_in_frame"] >= t["sensor_hot_pixels"]
        or truth["n_bad_columns_in_frame"] >= t["sensor_bad_columns"],
        "trail": truth["trail_snr"] >= t["trail_snr"],
        "bright_sky": truth["sky_excess_mag"] > t["bright_sky_mag"],
    }
    return np.array([values[name] for name in FLAG_NAMES], dtype=np.uint8)


def make_frame(job: tuple) -> dict:
    """Render and label frame ``index`` of the dataset (``job`` = run dir, obs id, ...)."""
    from models.quality.features import frame_inputs
    from models.quality.frames import render_in_memory

    run_dir, obs_id, size, seed, index = job
    frames = _run_frames(run_dir, size)
    rng = np.random.default_rng([seed, index, 0x9A])
    # No rare faults: the quality model's labels do not describe them, and the anomaly
    # model must find them without having seen them.
    spec, rate = perturb(replace(frames.spec(obs_id), faults=()), rng)
    options = replace(frames.options, defocus_model=DEFOCUS_MODEL)
    frame = render_in_memory(spec, options, trail_rate_per_hour_deg2=rate)
    _image, side = frame_inputs(frame.data_adu, frame.header)
    out = labels(spec, frame, frames.telescopes[spec.telescope.name])
    header = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else float(v))
              for k, v in frame.header.items()}  # fmt: skip
    out.update(image=frame.data_adu, side=side, header=header, site=spec.site,
               telescope=spec.telescope.name)  # fmt: skip
    return out


# --- the whole set -----------------------------------------------------------------------


def frame_jobs(plans: list[RunPlan], run_dirs: dict[int, Path], n: int, size: int, seed: int
               ) -> tuple[list[tuple], list[str]]:  # fmt: skip
    """``n`` (run, exposure) picks, split by :data:`SPLIT_FRACTIONS`; returns jobs, splits."""
    import pandas as pd

    rng = np.random.default_rng([seed, 0x10B])
    pools: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    for i, plan in enumerate(plans):
        obs = pd.read_parquet(run_dirs[i] / "observations.parquet", columns=["obs_id", "site"])
        at_unseen = obs["site"] == UNSEEN_SITE
        keep = at_unseen if plan.split == "unseen" else ~at_unseen
        pools[plan.split] += [(str(run_dirs[i]), int(o)) for o in obs["obs_id"][keep]]
    counts = np.floor(np.asarray(SPLIT_FRACTIONS) * n).astype(int)
    counts[0] += n - counts.sum()
    jobs, splits = [], []
    for split, count in zip(SPLITS, counts, strict=True):
        pool = pools[split]
        if not pool:
            raise RuntimeError(f"no exposures for split {split!r}: the runs observed nothing")
        picks = rng.choice(len(pool), size=count, replace=count > len(pool))
        for p in picks:
            jobs.append((*pool[p], size, seed, len(jobs)))
            splits.append(split)
    return jobs, splits


def write_shard(out: Path, k: int, rows: list[dict], splits: list[str]) -> dict:
    name = f"shard_{k:03d}"
    np.savez_compressed(
        out / f"{name}.npz",
        image=np.stack([r["image"] for r in rows]).astype(np.uint16),
        side=np.stack([r["side"] for r in rows]).astype(np.float16),
        score=np.array([r["score"] for r in rows], np.float32),
        seeing=np.array([r["seeing"] for r in rows], np.float32),
        flags=np.stack([r["flags"] for r in rows]).astype(np.uint8),
        truth=np.array([[r["truth"][t] for t in TRUTH_NAMES] for r in rows], np.float32),
        split=np.array([SPLITS.index(s) for s in splits], np.uint8),
    )  # fmt: skip
    meta = [{"site": r["site"], "telescope": r["telescope"], "header": r["header"]} for r in rows]
    (out / f"{name}.headers.json").write_text(json.dumps(meta))
    return {"file": f"{name}.npz", "n": len(rows)}


def build_dataset(out: str | Path, n: int, size: int = 256, seed: int = 0,
                  processes: int = 2, progress: bool = True,
                  runs_per_split: dict[str, int] | None = None,
                  scenarios: tuple[str, ...] | None = None) -> dict:  # fmt: skip
    """Generate the dataset into ``out`` (see the module docstring); returns the index.

    ``runs_per_split`` and ``scenarios`` (tests) replace :data:`RUNS_PER_SPLIT` and the
    scenario lists of :func:`run_plans`.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[2]
    t0 = time.perf_counter()
    plans = run_plans(seed, runs_per_split, scenarios)
    run_dirs = make_runs(plans, out, repo)
    jobs, splits = frame_jobs(plans, run_dirs, n, size, seed)
    t_runs = time.perf_counter() - t0
    shards, rows, counts = [], [], {s: np.zeros(len(FLAG_NAMES), int) for s in SPLITS}
    meta: dict[str, dict] = {s: {} for s in SPLITS}
    bar = tqdm(total=len(jobs), unit="frame", desc="quality dataset", disable=not progress)
    pool = ProcessPoolExecutor(processes) if processes > 1 else None
    results = pool.map(make_frame, jobs, chunksize=8) if pool else map(make_frame, jobs)
    try:
        for i, row in enumerate(results):
            rows.append(row)
            counts[splits[i]] += row["flags"]
            key = f"{row['site']}/{row['telescope']}"
            meta[splits[i]][key] = meta[splits[i]].get(key, 0) + 1
            bar.update(1)
            if len(rows) == SHARD_SIZE or i == len(jobs) - 1:
                start = i + 1 - len(rows)
                shards.append(write_shard(out, len(shards), rows, splits[start : i + 1]))
                rows = []
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)
    index = {
        "model": "quality", "n": len(jobs), "size": size, "seed": seed,
        "command": f"skytwin models dataset quality --out {out} --n {n} --size {size} "
        f"--seed {seed}",
        "splits": {s: int(sum(1 for x in splits if x == s)) for s in SPLITS},
        "flag_names": list(FLAG_NAMES), "truth_names": list(TRUTH_NAMES),
        "flag_positives": {s: dict(zip(FLAG_NAMES, map(int, c), strict=True))
                           for s, c in counts.items()},
        "frames_by_site_telescope": meta, "unseen_site": UNSEEN_SITE, "thresholds": THRESHOLDS,
        "defocus_model": DEFOCUS_MODEL, "runs": [p.__dict__ for p in plans], "shards": shards,
        "seconds": {"runs": round(t_runs, 1), "total": round(time.perf_counter() - t0, 1)},
        "python": sys.version.split()[0], "processes": processes, "cpu_count": os.cpu_count(),
    }  # fmt: skip
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


# --- what is derived from the stored frames (cached beside each shard) ---------------

EXTRA_VERSION = "extra-2"
SEEING_SAMPLES = 30  # samples across the FWHM when measuring the drawn PSF


def run_telescopes(data: Path) -> dict[str, object]:
    """The telescopes of the dataset's runs by name (from each run's ``scenario.yaml``)."""
    from twin.ops.world import World
    from twin.scenario import load_scenario

    telescopes: dict[str, object] = {}
    seen: set[str] = set()
    for path in sorted((Path(data) / "runs").glob("*/scenario.yaml")):
        name = path.parent.name.rsplit("_", 1)[0]
        if name in seen:
            continue
        seen.add(name)
        world = World(load_scenario(path))
        telescopes.update({t.name: t.telescope for t in world.telescopes})
    return telescopes


def image_fwhm_label(header: dict, telescope) -> float:
    """The FWHM (″) of the PSF the frame was drawn with, tracking left out: the seeing label.

    Atmosphere ⊗ optics ⊗ the *annulus* defocus the frames are drawn with
    (:func:`twin.imaging.psf.psf_for`), measured as :func:`twin.imaging.psf.fwhm_arcsec`
    does. ``spec.image_fwhm_arcsec`` (seeing ⊕ defocus in quadrature) is the FWHM of a
    Gaussian defocus; with the annulus it overstates a defocused frame's FWHM (0.6″ seeing
    with 1″ defocus: 1.17″ in quadrature, 1.07″ drawn) and leaves out the Airy core
    (+0.02-0.05″ on a sharp frame). Truth cards are read here: this is a label.
    """
    from types import SimpleNamespace

    from twin.imaging.psf import fwhm_arcsec, psf_for

    seeing, defocus = float(header["SEEING"]), float(header["DEFOCUS"])
    spec = SimpleNamespace(telescope=telescope, band=str(header["FILTER"]),
                           seeing_fwhm_arcsec=seeing, defocus_fwhm_arcsec=defocus,
                           tracking_error_arcsec=0.0, tracking_pa_deg=0.0)  # fmt: skip
    guess = max(math.hypot(seeing, defocus), 0.05)
    scale = guess / SEEING_SAMPLES
    n = 4 * SEEING_SAMPLES + 1
    image = psf_for(spec, defocus_model=DEFOCUS_MODEL).drawImage(nx=n, ny=n, scale=scale,
                                                                  method="no_pixel")  # fmt: skip
    return fwhm_arcsec(image.array, scale)


def shard_extras(data: Path, shard_file: str, images: np.ndarray, meta: list[dict],
                 telescopes: dict | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Classical features and the drawn-PSF seeing label of one shard (cached on disk).

    Kept in ``shard_NNN.EXTRA_VERSION.npz`` beside the shard; a changed
    :data:`EXTRA_VERSION` recomputes them. Returns ``classical`` (N × N_CLASSICAL) and
    ``seeing_psf`` (N).
    """
    from models.quality.classical import N_CLASSICAL, classical_features

    path = Path(data) / shard_file.replace(".npz", f".{EXTRA_VERSION}.npz")
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            if len(z["seeing_psf"]) == len(images):
                return {"classical": z["classical"], "seeing_psf": z["seeing_psf"]}
    telescopes = telescopes if telescopes is not None else run_telescopes(data)
    classical = np.zeros((len(images), N_CLASSICAL), np.float32)
    seeing = np.zeros(len(images), np.float32)
    for i, (image, m) in enumerate(zip(images, meta, strict=True)):
        classical[i] = classical_features(image, m["header"])
        seeing[i] = image_fwhm_label(m["header"], telescopes[m["telescope"]])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, classical=classical, seeing_psf=seeing)
    tmp.replace(path)
    return {"classical": classical, "seeing_psf": seeing}


def load_split(data: str | Path, split: str | None = None) -> dict[str, np.ndarray | list]:
    """Arrays of every shard (optionally one split), plus ``headers``, ``site``, ``telescope``.

    ``seeing`` is the drawn-PSF FWHM of :func:`image_fwhm_label` (the stored quadrature
    value stays as ``seeing_quadrature``); ``classical`` holds the
    :mod:`models.quality.classical` features, and ``side`` the header features followed
    by them (what the network takes).
    """
    from models.quality.features import robust_sky, side_features

    data = Path(data)
    index = json.loads((data / "index.json").read_text())
    parts: dict[str, list] = {}
    telescopes = None
    for shard in index["shards"]:
        with np.load(data / shard["file"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads((data / shard["file"].replace(".npz", ".headers.json")).read_text())
        cache = Path(data) / shard["file"].replace(".npz", f".{EXTRA_VERSION}.npz")
        if telescopes is None and not cache.exists():
            telescopes = run_telescopes(data)
        extras = shard_extras(data, shard["file"], arrays["image"], meta, telescopes)
        arrays["seeing_quadrature"] = arrays.pop("seeing")
        arrays["seeing"] = extras["seeing_psf"]
        arrays["classical"] = extras["classical"]
        keep = np.ones(len(arrays["split"]), bool)
        if split is not None:
            keep = arrays["split"] == SPLITS.index(split)
        for k, v in arrays.items():
            parts.setdefault(k, []).append(v[keep])
        for key in ("header", "site", "telescope"):
            parts.setdefault(key + "s", []).extend(
                m[key] for m, k in zip(meta, keep, strict=True) if k
            )
    out: dict = {
        k: np.concatenate(v)
        for k, v in parts.items()
        if k not in ("headers", "sites", "telescopes")
    }
    out.update(headers=parts["headers"], sites=parts["sites"], telescopes=parts["telescopes"])
    # The side features are recomputed from the stored headers and pixels (cheap), so a
    # change of features.py needs no new render; the shards' ``side`` is what it was then.
    pairs = zip(out["headers"], out["image"], strict=True)
    header_side = np.stack([side_features(h, *robust_sky(im)) for h, im in pairs])
    out["side"] = np.concatenate([header_side, out["classical"]], axis=1).astype(np.float32)
    return out
