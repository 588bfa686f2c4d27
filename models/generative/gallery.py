"""The README's figures: real HDF stamps, diffusion samples and parametric stamps side by side,
and one twin field drawn with each galaxy source.

    .venv/bin/python -m models.generative.gallery [--out docs]

``generative_gallery.png``: rows of held-out real HDF galaxies; the model's samples asked
for each one's size, shape, angle and S/N; the same asked at the renderer's S/N and
cleaned as the renderer uses them; the twin's parametric profile with the same size,
shape and angle. ``generative_frames.png``: the
same 400″ of sky (1-m preset, r, 120 s, 0.8″ seeing) rendered with
``imaging.galaxies: parametric`` and ``diffusion``, with Poisson noise, and close-ups of
its brightest galaxies.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

N_COLUMNS = 10


def _stretch(image: np.ndarray, sky: float = 0.0) -> np.ndarray:
    s = image - sky
    scale = np.percentile(s, 99.7)
    return np.arcsinh(s / (0.02 * max(scale, 1e-30)))


def stamp_gallery(path: Path, data_dir: Path, seed: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.generative.dataset import from_model, load, measure
    from models.generative.evaluate import parametric_like
    from models.generative.generator import GalaxyGenerator

    data = load(data_dir)
    held = np.flatnonzero((data["split"] == "test") & (data["real"] > 0))
    # Resolved (r½ > 2 px) held-out galaxies with the highest S/N: where morphology shows.
    held = held[np.exp(data["cond"][held, 0]) > 2.0]
    held = held[np.argsort(-data["cond"][held, 3])][:N_COLUMNS]
    cond = data["cond"][held]
    real = data["images"][held]
    gen = GalaxyGenerator()
    seeds = [seed * 1_000_003 + int(i) for i in held]
    raw = from_model(gen.sample(cond, seeds))
    clean_cond = cond.copy()
    clean_cond[:, 3] = gen.manifest["render"]["log_snr"]
    clean, _ = gen.stamps(clean_cond, seeds)
    flux = np.array([measure(img, n)["flux"] for img, n in zip(real, data["noise"][held],
                                                                 strict=True)])  # fmt: skip
    parametric = parametric_like(cond, flux, np.zeros(len(held)), seed)
    rows = [("HDF (held out)", real), ("diffusion", raw),
            ("diffusion,\nas rendered", clean), ("parametric", parametric)]  # fmt: skip
    fig, axes = plt.subplots(len(rows), N_COLUMNS,
                             figsize=(N_COLUMNS * 1.2, len(rows) * 1.25 + 0.3))  # fmt: skip
    for r, (name, images) in enumerate(rows):
        for c in range(N_COLUMNS):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            img = images[c] / max(float(images[c].max()), 1e-30)
            ax.imshow(np.arcsinh(img / 0.03), cmap="magma", origin="lower", vmin=-0.5,
                      vmax=np.arcsinh(1 / 0.03))  # fmt: skip
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle("per column the same size, ellipticity and angle (and S/N, but for the "
                 "renderer's row: its cleanest S/N, masked, unit flux)", fontsize=9)  # fmt: skip
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def frame_gallery(path: Path, size: int = 1024, seed: int = 3) -> Path:
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from frames import bench_spec

    import twin  # noqa: F401
    from models.generative.source import DiffusionGalaxyStamps
    from twin.imaging.catalog import TrailModel, sky_catalog
    from twin.imaging.render import psf_fwhm_px, render_expected

    spec = replace(bench_spec(size, galactic_b_deg=60.0, seed=seed), seeing_fwhm_arcsec=0.8,
                   exptime_s=120.0, defocus_fwhm_arcsec=0.1)  # fmt: skip
    catalog = sky_catalog(spec, trails=TrailModel(rate_per_hour_deg2=0.0))
    fwhm = psf_fwhm_px(spec) * spec.pixel_scale_arcsec
    source = DiffusionGalaxyStamps(fwhm, sky_seed=0)
    frames = {"parametric": render_expected(spec, catalog=catalog),
              "diffusion": render_expected(spec, catalog=catalog, stamp_source=source)}  # fmt: skip
    rng = np.random.default_rng(seed)
    noisy = {k: rng.poisson(v.image_e).astype(float) for k, v in frames.items()}
    truth = frames["diffusion"].truth
    gal = truth[(truth["type"] == "galaxy") & truth["in_frame"]].sort_values("mag")
    banked = gal[np.array([f is not None for f in source.lookup(gal.to_dict("records"))])]
    gal = banked.head(4)
    fig, axes = plt.subplots(2, 5, figsize=(15, 6.8),
                             gridspec_kw={"width_ratios": [2.6, 1, 1, 1, 1]})  # fmt: skip
    for r, (name, image) in enumerate(noisy.items()):
        sky = frames[name].sky_e_per_pix
        ax = axes[r, 0]
        ax.imshow(_stretch(image, sky), cmap="gray", origin="lower", vmin=-1, vmax=6)
        ax.set_title(f"imaging.galaxies: {name}", fontsize=9)
        ax.set_axis_off()
        for x, y in banked[["x_pix", "y_pix"]].to_numpy():
            ax.add_patch(plt.Circle((x, y), 18, fill=False, color="C1", lw=0.6))
        for c, (_, g) in enumerate(gal.iterrows()):
            x, y, h = round(g["x_pix"]), round(g["y_pix"]), 24
            cut = image[max(y - h, 0) : y + h + 1, max(x - h, 0) : x + h + 1]
            ax2 = axes[r, c + 1]
            ax2.imshow(np.arcsinh((cut - sky) / (3 * np.sqrt(sky))), cmap="magma",
                       origin="lower", vmin=-1, vmax=7)  # fmt: skip
            ax2.set_title(f"{spec.band} = {g['mag']:.1f}", fontsize=8)
            ax2.set_axis_off()
    fig.suptitle(f"one {size}² field ({size * spec.pixel_scale_arcsec:.0f}″, 1-m, r 120 s, "
                 "0.8″ seeing), the same catalogue; circled: the galaxies the model draws "
                 "(i < 20), close-ups of the four brightest",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    import torch

    from models.generative.dataset import DEFAULT_OUT

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--data", type=Path, default=DEFAULT_OUT)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(stamp_gallery(args.out / "generative_gallery.png", args.data))
    print(frame_gallery(args.out / "generative_frames.png"))


if __name__ == "__main__":
    main()
