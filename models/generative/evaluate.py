"""Evaluate the generator against held-out real HDF galaxies, with the parametric profiles beside.

Sets with the same conditioning as the held-out real galaxies:

- **real**: the held-out HDF stamps (never trained on), noise and all;
- **diffusion**: the model's raw samples (noise included, as the real stamps carry it)
  asked for each held-out stamp's own half-light radius, ellipticity, position angle,
  S/N and the "real" token;
- **parametric**: the twin's bulge + disk + knots profile (shapes as the catalogue draws
  them) with that half-light radius, axis ratio and angle, at the HDF's resolution,
  scaled to the real stamp's flux with Gaussian noise of its measured level added.

Every held-out galaxy's conditioning is sampled :data:`SAMPLES_PER_GALAXY` times (and as
many parametric stamps drawn), and beside both sets stands a third: the **real training
galaxies**, measured the same way. Its distance to the
held-out set is the *floor* of the measurement: what a generator indistinguishable from
real galaxies would score with this many held-out stamps (172 for the shipped set: a
Wasserstein distance between two finite samples of one distribution is not 0). With
four samples a galaxy the generated sets (4 × 172) are the training set's size (687),
so the three columns compare like with like.

Morphology is measured independently with statmorph (Rodriguez-Gomez et al. 2019) on
each stamp with the same segmentation (:func:`~models.generative.dataset.object_mask`
at the stamp's noise) and a constant weight map of its noise: half-light radius
(``rhalf_circ``), ellipticity (``ellipticity_centroid``), Sérsic index, concentration,
asymmetry, smoothness, Gini and M20. Per statistic: the Wasserstein-1 distance between
the generated and the real distribution in units of the real set's standard deviation
(``scipy.stats.wasserstein_distance``; statmorph ``flag`` ≤ 1, and a converged Sérsic
fit for the index).

Also:
- **conditioning**: the half-light radius and ellipticity measured on each sample
  (:func:`~models.generative.dataset.measure`, as the training conditioning was
  measured) against those requested: Pearson r and scatter;
- **memorisation**: each sample's nearest neighbour among the training real stamps
  (all eight rotations/flips, L2 in the network's domain) against the same distance for
  the held-out real stamps, with a one-sided Mann-Whitney test (H1: samples are closer)
  and the fraction of samples closer than the held-out's 5th percentile; beside it a
  control for noise (:func:`memorisation`) and the stamps' noise levels.

``skytwin models evaluate generative`` writes ``OUT/evaluation.json`` and
``OUT/evaluation.png`` and, for the shipped weights, the figures into their manifest.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from models.generative.dataset import (
    DEFAULT_OUT,
    HDF_PSF_FWHM_PX,
    STAMP,
    dihedral,
    from_model,
    load,
    measure,
    object_mask,
)
from models.generative.diffusion import DEFAULT_STEPS
from models.generative.generator import WEIGHTS_DIR, border_noise

STATISTICS = ("rhalf_circ", "ellipticity_centroid", "sersic_n", "concentration",
              "asymmetry", "smoothness", "gini", "m20")  # fmt: skip
TARGET_W1 = 0.1
SAMPLES_PER_GALAXY = 4
SEED_STRIDE = 7_919_111
"""Seeds of a galaxy's k-th sample lie ``k * SEED_STRIDE`` past its first (apart from
every other held-out galaxy's: their indices differ by less than the stride)."""
FLOOR = "real_training"
"""The real training galaxies' column: the measurement's floor."""


def morphology(images: np.ndarray, noise: np.ndarray) -> pd.DataFrame:
    """statmorph's statistics per stamp (NaN where it could not measure)."""
    import statmorph

    rows = []
    for img, sigma in zip(images, noise, strict=True):
        img = np.asarray(img, float)
        seg = object_mask(img, sigma).astype(int)
        row = {s: np.nan for s in STATISTICS} | {"flag": 4, "flag_sersic": 4}
        if seg.sum() >= 5:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    m = statmorph.source_morphology(img, seg, weightmap=np.full(img.shape,
                                                    float(sigma)), verbose=False)[0]  # fmt: skip
                    row = {s: float(getattr(m, s)) for s in STATISTICS}
                    row |= {"flag": int(m.flag), "flag_sersic": int(m.flag_sersic)}
                except Exception:  # statmorph gives up on some shapes: count them as unmeasured
                    pass
        rows.append(row)
    table = pd.DataFrame(rows)
    bad = table["flag"] > 1
    table.loc[bad, list(STATISTICS)] = np.nan
    table.loc[table["flag_sersic"] != 0, "sersic_n"] = np.nan
    return table


def w1_in_sd(real: pd.DataFrame, other: pd.DataFrame) -> dict[str, float]:
    from scipy.stats import wasserstein_distance

    out = {}
    for s in STATISTICS:
        a, b = real[s].dropna().to_numpy(), other[s].dropna().to_numpy()
        sd = float(np.std(a))
        ok = len(a) > 2 and len(b) > 2 and sd > 0
        out[s] = float(wasserstein_distance(a, b) / sd) if ok else float("nan")
    return out


def sample_seeds(held: np.ndarray, seed: int, per_galaxy: int) -> np.ndarray:
    """One seed per generated stamp, galaxy by galaxy within each of ``per_galaxy``
    blocks; the first block is the one-sample-a-galaxy evaluation's seeds."""
    base = seed * 1_000_003 + np.asarray(held, dtype=np.int64)
    return np.concatenate([base + k * SEED_STRIDE for k in range(per_galaxy)])


def parametric_like(cond: np.ndarray, flux: np.ndarray, noise: np.ndarray, seed: int = 0
                    ) -> np.ndarray:  # fmt: skip
    """Twin profiles with the held-out stamps' size, shape and angle, flux and noise."""
    import galsim

    from twin.imaging.catalog import _galaxy_attributes
    from twin.imaging.galaxies import galaxy_profile

    rng = np.random.default_rng([seed, 0xE7A])
    attrs = _galaxy_attributes(rng, rng.uniform(17.0, 24.0, len(cond)))
    psf = galsim.Gaussian(fwhm=HDF_PSF_FWHM_PX)
    out = np.empty((len(cond), STAMP, STAMP))
    for k, c in enumerate(cond):
        g = {key: v[k] for key, v in attrs.items()}
        hlr, eps = float(np.exp(c[0])), float(np.hypot(c[1], c[2]))
        theta = 0.5 * float(np.degrees(np.arctan2(c[2], c[1])))
        bt = float(g["bulge_frac"])
        ratio = hlr / ((1 - bt) * g["hlr_disk_arcsec"] + bt * g["hlr_bulge_arcsec"])
        g |= {"hlr_disk_arcsec": g["hlr_disk_arcsec"] * ratio,
              "hlr_bulge_arcsec": g["hlr_bulge_arcsec"] * ratio, "flux_e": float(flux[k]),
              "q_disk": float(np.clip(1.0 - eps, 0.05, 1.0)), "pa_deg": theta - 90.0}  # fmt: skip
        image = galsim.Convolve(galaxy_profile(g), psf).drawImage(
            nx=STAMP, ny=STAMP, scale=1.0, offset=(0.5, 0.5)).array  # fmt: skip
        out[k] = image + rng.normal(0.0, float(noise[k]), image.shape)
    return out


def tracking(requested: np.ndarray, images: np.ndarray, noise: np.ndarray) -> dict[str, float]:
    """How the measured half-light radius and ellipticity follow the requested ones."""
    rows = [measure(img, n) for img, n in zip(images, noise, strict=True)]
    hlr = np.array([r["hlr_px"] for r in rows])
    eps = np.array([r["eps"] for r in rows])
    theta = np.array([r["theta_deg"] for r in rows])
    want_hlr, want_eps = np.exp(requested[:, 0]), np.hypot(requested[:, 1], requested[:, 2])
    want_theta = 0.5 * np.degrees(np.arctan2(requested[:, 2], requested[:, 1]))
    ok = np.isfinite(hlr) & np.isfinite(eps)
    log_ratio = np.log(hlr[ok] / want_hlr[ok])
    elongated = ok & (want_eps > 0.3)
    d_theta = (theta[elongated] - want_theta[elongated] + 90.0) % 180.0 - 90.0
    return {
        "n": int(ok.sum()),
        "hlr_pearson_r_log": float(np.corrcoef(np.log(hlr[ok]), np.log(want_hlr[ok]))[0, 1]),
        "hlr_median_ratio": float(np.exp(np.median(log_ratio))),
        "hlr_scatter_dex": float(np.std(log_ratio) / np.log(10)),
        "eps_pearson_r": float(np.corrcoef(eps[ok], want_eps[ok])[0, 1]),
        "eps_bias": float(np.mean(eps[ok] - want_eps[ok])),
        "eps_scatter": float(np.std(eps[ok] - want_eps[ok])),
        "pa_median_abs_err_deg_eps_gt_0.3": float(np.median(np.abs(d_theta)))
        if len(d_theta) else float("nan"),
    }  # fmt: skip


def nearest_train_distance(x: np.ndarray, train: np.ndarray, exclude: np.ndarray | None = None
                           ) -> np.ndarray:  # fmt: skip
    """L2 distance of each stamp of ``x`` to its nearest in ``train`` (all 8 variants);
    ``exclude[i]``: an index of ``train`` that stamp ``i`` may not match (-1: none)."""
    bank = np.concatenate([dihedral(train, k) for k in range(8)]).reshape(8 * len(train), -1)
    bank = bank.astype(np.float64)
    owner = np.tile(np.arange(len(train)), 8)
    b2 = (bank**2).sum(axis=1)
    out = np.empty(len(x))
    flat = x.reshape(len(x), -1).astype(np.float64)
    for start in range(0, len(flat), 256):
        q = flat[start : start + 256]
        d2 = (q**2).sum(axis=1)[:, None] + b2[None, :] - 2.0 * q @ bank.T
        if exclude is not None:
            d2[owner[None, :] == exclude[start : start + 256, None]] = np.inf
        out[start : start + 256] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def memorisation(samples_x: np.ndarray, held_x: np.ndarray, train_x: np.ndarray,
                 seed: int = 0) -> dict:  # fmt: skip
    """The test above, and a control for what L2 distances also measure: noise.

    A sample smoother than the data is nearer to *every* stamp, memorised or not. So,
    besides the test, each stamp's distance to its nearest training stamp is divided by
    that to its nearest held-out stamp (never the one whose conditioning it was drawn
    with, nor itself), the training set cut at random to as many galaxies as the held-out
    set: a memorised sample is much nearer its training twin (ratio well below 1); one
    that is only smooth is near both. The same ratio for the held-out real stamps is the
    reference. ``samples_x[i]`` was drawn with ``held_x[i]``'s conditioning.
    """
    from scipy.stats import mannwhitneyu

    from models.generative.generator import border_noise

    d_gen = nearest_train_distance(samples_x, train_x)
    d_held = nearest_train_distance(held_x, train_x)
    test = mannwhitneyu(d_gen, d_held, alternative="less")
    rng = np.random.default_rng([seed, 0x3E3])
    subset = train_x[rng.choice(len(train_x), min(len(held_x), len(train_x)), replace=False)]
    own = np.arange(len(held_x))
    ratio = nearest_train_distance(samples_x, subset) / nearest_train_distance(
        samples_x, held_x, exclude=own
    )
    ratio_real = nearest_train_distance(held_x, subset) / nearest_train_distance(
        held_x, held_x, exclude=own
    )
    noise = {"samples": float(np.median(border_noise(samples_x))),
             "held_out": float(np.median(border_noise(held_x)))}  # fmt: skip
    return {
        "median_nn_distance_samples": float(np.median(d_gen)),
        "median_nn_distance_held_out": float(np.median(d_held)),
        "fraction_samples_below_held_out_p5": float(np.mean(d_gen < np.percentile(d_held, 5))),
        "mannwhitney_p_samples_closer": float(test.pvalue),
        "control_median_ratio_train_over_held_out": {
            "samples": float(np.median(ratio)),
            "held_out": float(np.median(ratio_real)),
        },
        "control_fraction_ratio_below_0.8": {
            "samples": float(np.mean(ratio < 0.8)),
            "held_out": float(np.mean(ratio_real < 0.8)),
        },
        "median_border_noise_model_domain": noise,
        "distances": {"samples": d_gen.tolist(), "held_out": d_held.tolist()},
    }


def _figure(path: Path, morph: dict[str, pd.DataFrame], track_req, track_img, track_noise,
            mem: dict) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 6, figsize=(16, 5.5))
    colours = {"real": "k", "diffusion": "C3", "parametric": "C0", FLOOR: "0.6"}
    for ax, s in zip(axes.flat[:8], STATISTICS, strict=True):
        values = [morph[k][s].dropna() for k in morph]
        lo, hi = np.nanpercentile(pd.concat(values), [1, 99])
        for k in morph:
            ax.hist(morph[k][s].dropna(), bins=np.linspace(lo, hi, 25), histtype="step",
                    color=colours[k], label=k, density=True)  # fmt: skip
        ax.set_title(s, fontsize=9)
    axes.flat[0].legend(fontsize=7)
    rows = [measure(img, n) for img, n in zip(track_img, track_noise, strict=True)]
    ax = axes.flat[8]
    ax.loglog(np.exp(track_req[:, 0]), [r["hlr_px"] for r in rows], ".", color="C3", ms=3)
    ax.plot([1, 8], [1, 8], "k-", lw=0.8)
    ax.set(xlabel="requested r½ (px)", ylabel="measured r½ (px)")
    ax = axes.flat[9]
    ax.plot(np.hypot(track_req[:, 1], track_req[:, 2]), [r["eps"] for r in rows], ".",
            color="C3", ms=3)  # fmt: skip
    ax.plot([0, 1], [0, 1], "k-", lw=0.8)
    ax.set(xlabel="requested ε", ylabel="measured ε")
    ax = axes.flat[10]
    bins = np.linspace(0, max(max(mem["distances"]["held_out"]), 1e-6) * 1.2, 30)
    ax.hist(mem["distances"]["held_out"], bins=bins, histtype="step", color="k",
            density=True, label="held-out real")  # fmt: skip
    ax.hist(mem["distances"]["samples"], bins=bins, histtype="step", color="C3",
            density=True, label="diffusion")  # fmt: skip
    ax.set(xlabel="nearest training stamp (L2)")
    ax.legend(fontsize=7)
    axes.flat[11].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def evaluate(data_dir: Path, weights_dir: Path, *, steps: int = DEFAULT_STEPS, seed: int = 0,
             limit: int | None = None, progress: bool = True, threads: int = 1,
             per_galaxy: int = SAMPLES_PER_GALAXY) -> dict:  # fmt: skip
    from models.generative.generator import GalaxyGenerator

    if per_galaxy < 1:
        raise ValueError(f"per_galaxy = {per_galaxy}; at least 1 sample a held-out galaxy")
    t0 = time.perf_counter()
    data = load(data_dir)
    held = np.flatnonzero((data["split"] == "test") & (data["real"] > 0))[:limit]
    train_real = np.flatnonzero((data["split"] == "train") & (data["real"] > 0))
    floor_rows = train_real if limit is None else train_real[: limit * per_galaxy]
    cond, real_img, real_noise = data["cond"][held], data["images"][held], data["noise"][held]
    cond_k = np.tile(cond, (per_galaxy, 1))
    gen = GalaxyGenerator(weights_dir, steps, threads=threads)
    t_s = time.perf_counter()
    raw = gen.sample(cond_k, sample_seeds(held, seed, per_galaxy))
    sample_seconds = time.perf_counter() - t_s
    diff_img = from_model(raw)
    diff_noise = np.maximum(border_noise(diff_img), 1e-6)
    flux = np.array([measure(img, n)["flux"] for img, n in zip(real_img, real_noise,
                                                                 strict=True)])  # fmt: skip
    noise_k = np.tile(real_noise, per_galaxy)
    par_img = parametric_like(cond_k, np.tile(flux, per_galaxy), noise_k, seed)
    n_measured = len(held) + 2 * len(raw) + len(floor_rows)
    _say(progress, f"{len(held)} held-out stamps, {len(raw)} samples in {sample_seconds:.1f} s;"
                   f" statmorph on {n_measured} stamps")  # fmt: skip
    morph = {"real": morphology(real_img, real_noise),
             "diffusion": morphology(diff_img, diff_noise),
             "parametric": morphology(par_img, noise_k),
             FLOOR: morphology(data["images"][floor_rows], data["noise"][floor_rows])}  # fmt: skip
    w1 = {k: w1_in_sd(morph["real"], morph[k]) for k in ("diffusion", "parametric", FLOOR)}
    # Memorisation pairs each sample with the held-out galaxy it was conditioned on: the
    # first block.
    mem = memorisation(raw[: len(held)], data["x"][held], data["x"][train_real], seed)
    result = {
        "n_held_out": len(held), "samples_per_galaxy": per_galaxy, "n_floor": len(floor_rows),
        "steps": steps, "weights_sha256": gen.sha256,
        "w1_over_sd": w1,
        "w1_max": {k: float(np.nanmax(list(v.values()))) for k, v in w1.items()},
        "w1_mean": {k: float(np.nanmean(list(v.values()))) for k, v in w1.items()},
        "target_w1": TARGET_W1,
        "measured": {k: int(v[list(STATISTICS)].notna().all(axis=1).sum())
                     for k, v in morph.items()},
        "conditioning": {"diffusion": tracking(cond_k, diff_img, diff_noise),
                         "parametric": tracking(cond_k, par_img, noise_k)},
        "memorisation": {k: v for k, v in mem.items() if k != "distances"},
        "sample_seconds": round(sample_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    result["_figure"] = (morph, cond_k, diff_img, diff_noise, mem)
    return result


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def format_table(result: dict) -> str:
    columns = ("diffusion", "parametric", FLOOR)
    lines = ["| statistic | diffusion W1/σ | parametric W1/σ | real training (floor) W1/σ |",
             "|---|---|---|---|"]  # fmt: skip
    w1 = result["w1_over_sd"]
    for s in STATISTICS:
        lines.append(f"| {s} | " + " | ".join(f"{w1[k][s]:.3f}" for k in columns) + " |")
    lines.append("| mean | " + " | ".join(f"{result['w1_mean'][k]:.3f}" for k in columns) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    import torch

    p = argparse.ArgumentParser(prog="skytwin models evaluate generative",
                                description=__doc__.split("\n")[0])  # fmt: skip
    p.add_argument("--data", type=Path, default=DEFAULT_OUT)
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--out", type=Path, default=Path("outputs/generative/evaluation"))
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="at most N held-out stamps (quick look)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--per-galaxy", type=int, default=SAMPLES_PER_GALAXY,
                   help="samples (and parametric stamps) per held-out galaxy")  # fmt: skip
    args = p.parse_args(argv)
    if args.per_galaxy < 1:
        p.error(f"--per-galaxy {args.per_galaxy}: at least 1")
    torch.set_num_threads(args.threads)
    result = evaluate(
        args.data,
        args.weights,
        steps=args.steps,
        seed=args.seed,
        limit=args.limit,
        threads=args.threads,
        per_galaxy=args.per_galaxy,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    _figure(args.out / "evaluation.png", *result.pop("_figure"))
    (args.out / "evaluation.json").write_text(json.dumps(result, indent=2))
    manifest_path = args.weights / "manifest.json"
    if args.limit is None and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        manifest["metrics"] = result
        manifest_path.write_text(json.dumps(manifest, indent=2))
    print(format_table(result))
    print(json.dumps({k: result[k] for k in ("conditioning", "memorisation")}, indent=1))
