"""Twin stacks with truth for the learned fusion, some with inconsistent inputs injected.

``skytwin models dataset fusion --out DIR --train N --heldout M --seed S``

How a stack is made (:func:`make_stack`): 3 to 5 frames of one field (random sky
position) are drawn at random conditions — seeing 0.7–2.6″, transparency 0.55–1,
sky 19.5–21.5 mag/″², 30/60/120 s, a site of the global network each, times within a
day — and rendered noiseless by the twin (:func:`models.fusion.twin_stack.render_stack`:
GalSim PSFs, one catalogue for all frames). With probability 1 − :data:`P_CONSISTENT`
one or two inconsistencies (:data:`KINDS`) are injected into random frames, on the
noiseless electrons, before Poisson and read noise are drawn:

| kind        | what the frame gets                                                   |
|-------------|-----------------------------------------------------------------------|
| cloud       | a patch (16–50 % of the crop, soft edge) dimmed by 15–60 %, sky too  |
| trail       | a straight line of the frame's PSF width, peak 2–20 σ per pixel       |
| transient   | a point source (peak 3–30 σ) in this frame and in each other with     |
|             | probability 0.3, never in all                                         |
| focus       | its sources blurred by a further Gaussian of 1.5–4 px FWHM            |
| astrometry  | its sources shifted by 0.5–2 px (bad astrometric solution)            |

The frame keeps what its header claims (PSF, flux scale, sky level), so the coadd
believes it. **Truth**: the proper coadd of the *consistent* noiseless frames
(:func:`models.fusion.consistency.stack_terms`), the image a perfect fusion of these
conditions would make. **Labels**: per frame, pixel and kind, where the injected
change of the noiseless frame exceeds :data:`LABEL_SIGMA` of the frame's sky noise
(after a 1-px Gaussian smoothing), dilated by the frame's PSF FWHM (2–6 px) because the
coadd spreads a pixel's light over its PSF.

Stored (the central :data:`CROP_PIX`² of a :data:`RENDER_PIX`² render, so the crop is
clear of the edges' zero padding; all in units of the coadd's sky σ, ``1 / F_R``):
``base`` (proper coadd), ``variance``, ``truth``, ``difference`` (N_MAX × D_j, float16),
``removal`` (N_MAX × C_j), ``labels`` (N_MAX, bit k for :data:`KINDS` [k]), ``meta``
(N_MAX × :data:`~models.fusion.inputs.N_META`), ``valid`` (which of the N_MAX frame
slots hold a frame), ``injected`` (per frame, the kinds injected) and per stack the
median input seeing. ``shard_NNN.npz`` (no pickle) and ``index.json``.

Splits draw from disjoint seed streams: stack i of split s is
``SeedSequence([seed, SPLIT_IDS[s], i])``; the held-out split is never read by training.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.fusion.frame import AlignedFrame
from models.fusion.inputs import KINDS, SITES, FrameMeta, meta_features, psf_fwhm_pix

N_MAX = 5
RENDER_PIX = 128
CROP_PIX = 96
P_CONSISTENT = 0.4
LABEL_SIGMA = 1.0
SPLIT_IDS = {"train": 1, "heldout": 2}
SHARD_STACKS = 100


@dataclass(frozen=True)
class TwinStack:
    """A stack, its truth and labels (full render, not cropped)."""

    frames: list[AlignedFrame]
    metas: list[FrameMeta]
    truth: np.ndarray  # the coadd flux unit
    labels: np.ndarray  # (N, H, W) uint8, bit k = KINDS[k]
    injected: np.ndarray  # (N,) uint8, bit k = KINDS[k] injected into the frame
    seeing_arcsec: np.ndarray  # (N,) the specs' atmospheric seeing


def draw_specs(rng: np.random.Generator, n_frames: int, size: int) -> list:
    """``n_frames`` specs of one random field at random conditions (module docstring)."""
    from models.fusion.twin_stack import base_spec

    ra, dec = rng.uniform(0.0, 360.0), rng.uniform(-75.0, -10.0)
    specs = []
    for j in range(n_frames):
        specs.append(
            base_spec(
                size=size,
                seed=int(rng.integers(1 << 30)),
                obs_id=j + 1,
                ra_deg=ra,
                dec_deg=dec,
                site=SITES[int(rng.integers(len(SITES)))],
                seeing_fwhm_arcsec=rng.uniform(0.7, 2.6),
                transparency=rng.uniform(0.55, 1.0),
                sky_mag_arcsec2=rng.uniform(19.5, 21.5),
                exptime_s=float(rng.choice([30.0, 60.0, 120.0])),
                airmass=rng.uniform(1.0, 1.8),
                mjd_start=61500.0 + rng.uniform(0.0, 1.0),
            )
        )
    return specs


def _psf_sigma_pix(psf: np.ndarray) -> float:
    return psf_fwhm_pix(psf) / 2.3548


def inject(
    kind: str,
    expected_e: np.ndarray,
    sky_e: float,
    sigma_e: float,
    psf: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """``expected_e`` (sky included) with one inconsistency of ``kind`` (module docstring)."""
    ny, nx = expected_e.shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    lo, hi = 0.2 * nx, 0.8 * nx  # where a trail or transient lands: inside the crop
    sources = expected_e - sky_e
    if kind == "cloud":
        field = ndimage.gaussian_filter(rng.normal(size=expected_e.shape), 10.0)
        field /= field.std()
        soft = np.clip((field - rng.uniform(0.0, 1.0)) / 0.3, 0.0, 1.0)
        return expected_e * (1.0 - rng.uniform(0.15, 0.6) * soft)
    if kind == "trail":
        theta = rng.uniform(0.0, math.pi)
        x0, y0 = rng.uniform(lo, hi, 2)
        distance = np.abs((x - x0) * math.sin(theta) - (y - y0) * math.cos(theta))
        peak = sigma_e * math.exp(rng.uniform(math.log(2.0), math.log(20.0)))
        width = _psf_sigma_pix(psf)
        return expected_e + peak * np.exp(-0.5 * (distance / width) ** 2)
    if kind == "focus":
        extra = rng.uniform(1.5, 4.0) / 2.3548
        return sky_e + ndimage.gaussian_filter(sources, extra, mode="constant")
    if kind == "astrometry":
        r, phi = rng.uniform(0.5, 2.0), rng.uniform(0.0, 2 * math.pi)
        shift = (r * math.sin(phi), r * math.cos(phi))
        return sky_e + ndimage.shift(sources, shift, order=3, mode="constant")
    raise ValueError(f"unknown kind {kind!r}; allowed: {KINDS}")


def add_point(
    expected_e: np.ndarray, psf: np.ndarray, x_pix: int, y_pix: int, peak_e: float
) -> np.ndarray:
    """``expected_e`` plus a point source of peak ``peak_e`` at pixel (x, y)."""
    out = expected_e.copy()
    h = psf.shape[0] // 2
    stamp = psf / psf.max() * peak_e
    ny, nx = out.shape
    y0, y1 = max(y_pix - h, 0), min(y_pix + h + 1, ny)
    x0, x1 = max(x_pix - h, 0), min(x_pix + h + 1, nx)
    sy, sx = y0 - (y_pix - h), x0 - (x_pix - h)
    out[y0:y1, x0:x1] += stamp[sy : sy + y1 - y0, sx : sx + x1 - x0]
    return out


def label_mask(change_e: np.ndarray, sigma_e: float, psf: np.ndarray) -> np.ndarray:
    """Pixels where an injected change matters: > LABEL_SIGMA σ, dilated by the PSF FWHM."""
    strong = np.abs(ndimage.gaussian_filter(change_e, 1.0)) > LABEL_SIGMA * sigma_e
    radius = int(np.clip(round(psf_fwhm_pix(psf)), 2, 6))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return ndimage.binary_dilation(strong, structure=xx**2 + yy**2 <= radius**2)


def make_stack(
    seed,
    *,
    size: int = RENDER_PIX,
    n_frames: int | None = None,
    kinds: list[tuple[int, str]] | None = None,
) -> TwinStack:
    """One stack of ``seed`` (an int or a SeedSequence); ``kinds``: force these (frame, kind)
    injections (``[]``: a consistent stack), else drawn (module docstring)."""
    from models.fusion.consistency import stack_terms
    from models.fusion.twin_stack import render_stack

    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng = np.random.default_rng(ss)
    n = n_frames or int(rng.integers(3, N_MAX + 1))
    specs = draw_specs(rng, n, size)
    rendered = render_stack(specs, noise_seed=int(rng.integers(1 << 30)))
    if kinds is None:
        kinds = []
        if rng.uniform() > P_CONSISTENT:
            for _ in range(1 if rng.uniform() < 0.7 else 2):
                kinds.append((int(rng.integers(n)), KINDS[int(rng.integers(len(KINDS)))]))
    clean = [s.noiseless for s in rendered]
    expected = [f.data_e.copy() for f in clean]
    sigmas = [f.sigma_e for f in clean]
    injected = np.zeros(n, np.uint8)
    labels = np.zeros((n, size, size), np.uint8)
    for j, kind in kinds:
        k = KINDS.index(kind)
        injected[j] |= 1 << k
        if kind == "transient":
            x, y = (int(v) for v in rng.integers(int(0.2 * size), int(0.8 * size), 2))
            others = [i for i in range(n) if i != j and rng.uniform() < 0.3]
            hosts = [j, *others[: n - 2]]
            for i in hosts:
                peak = sigmas[i] * math.exp(rng.uniform(math.log(3.0), math.log(30.0)))
                before = expected[i]
                expected[i] = add_point(before, clean[i].psf, x, y, peak)
                mask = label_mask(expected[i] - before, sigmas[i], clean[i].psf)
                labels[i] |= mask.astype(np.uint8) << k
                injected[i] |= 1 << k
            continue
        before = expected[j]
        expected[j] = inject(kind, before, clean[j].background_e, sigmas[j], clean[j].psf, rng)
        mask = label_mask(expected[j] - before, sigmas[j], clean[j].psf)
        labels[j] |= mask.astype(np.uint8) << k
    frames = []
    for f, e, spec in zip(clean, expected, specs, strict=True):
        read_e = spec.telescope.detector.read_noise_e
        noisy = rng.poisson(np.maximum(e, 0.0)) + rng.normal(0.0, read_e, e.shape)
        frames.append(replace(f, data_e=noisy.astype(np.float64), variance_e2=e + read_e**2))
    metas = [
        FrameMeta(s.transparency, s.sky_mag_arcsec2, s.site, s.mjd_start, s.pixel_scale_arcsec)
        for s in specs
    ]
    truth = stack_terms(clean).image
    seeing = np.array([s.seeing_fwhm_arcsec for s in specs])
    return TwinStack(frames, metas, truth, labels, injected, seeing)


def stack_record(stack: TwinStack, crop: int = CROP_PIX) -> dict[str, np.ndarray]:
    """The stored arrays of one stack (module docstring), central ``crop``² pixels."""
    from models.fusion.consistency import stack_terms

    terms = stack_terms(stack.frames)
    size = stack.truth.shape[0]
    lo = (size - crop) // 2
    win = (slice(lo, lo + crop), slice(lo, lo + crop))
    n = len(stack.frames)
    norm = terms.flux_norm

    def padded(values: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros((N_MAX, *values.shape[1:]), dtype)
        out[:n] = values
        return out

    return {
        "base": (terms.image[win] * norm).astype(np.float32),
        "variance": (terms.variance[win] * norm**2).astype(np.float32),
        "truth": (stack.truth[win] * norm).astype(np.float32),
        "difference": padded(terms.difference[:, win[0], win[1]], np.float16),
        "removal": padded(terms.removal[:, win[0], win[1]] * norm, np.float32),
        "labels": padded(stack.labels[:, win[0], win[1]], np.uint8),
        "meta": padded(meta_features(stack.frames, stack.metas), np.float32),
        "valid": padded(np.ones(n, bool), bool),
        "injected": padded(stack.injected, np.uint8),
        "seeing_median_arcsec": np.float32(np.median(stack.seeing_arcsec)),
    }


def _make_record(job: tuple[int, str, int, int, int]) -> dict[str, np.ndarray]:
    seed, split, i, size, crop = job
    stack = make_stack(np.random.SeedSequence([seed, SPLIT_IDS[split], i]), size=size)
    return stack_record(stack, crop)


def build_dataset(
    out: str | Path,
    n_train: int,
    n_heldout: int,
    seed: int = 0,
    processes: int = 1,
    progress: bool = True,
    command: str = "",
    render_pix: int = RENDER_PIX,
    crop_pix: int = CROP_PIX,
) -> dict:
    """Write the shards and ``index.json`` (resumable: finished shards are kept).

    ``render_pix``, ``crop_pix``: smaller stacks for tests (the shipped set uses the defaults).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shards = []
    plan = [
        (split, start, min(start + SHARD_STACKS, total))
        for split, total in (("train", n_train), ("heldout", n_heldout))
        for start in range(0, total, SHARD_STACKS)
    ]
    pool = ProcessPoolExecutor(processes) if processes > 1 else None
    try:
        for k, (split, start, stop) in enumerate(tqdm(plan, desc="shards", disable=not progress)):
            name = f"shard_{k:03d}.npz"
            shards.append({"file": name, "split": split, "first": start, "n": stop - start})
            if (out / name).exists():
                continue
            jobs = [(seed, split, i, render_pix, crop_pix) for i in range(start, stop)]
            rows = list(pool.map(_make_record, jobs) if pool else map(_make_record, jobs))
            arrays = {key: np.stack([r[key] for r in rows]) for key in rows[0]}
            tmp = out / f".{name}.tmp.npz"
            np.savez(tmp, **arrays)
            tmp.replace(out / name)
    finally:
        if pool:
            pool.shutdown()
    index = {
        "command": command,
        "seed": seed,
        "kinds": list(KINDS),
        "n_max": N_MAX,
        "render_pix": render_pix,
        "crop_pix": crop_pix,
        "label_sigma": LABEL_SIGMA,
        "p_consistent": P_CONSISTENT,
        "splits": {"train": n_train, "heldout": n_heldout},
        "shards": shards,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


def load_split(data: str | Path, split: str) -> dict[str, np.ndarray]:
    """All stacks of ``split`` as arrays stacked along the first axis."""
    data = Path(data)
    index = json.loads((data / "index.json").read_text())
    parts = []
    for shard in index["shards"]:
        if shard["split"] == split:
            with np.load(data / shard["file"], allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
    if not parts:
        raise FileNotFoundError(f"{data}: no {split!r} shards; run skytwin models dataset fusion")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
