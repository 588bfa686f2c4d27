"""One frame's noise-free image: the fast renderer against plain GalSim, and the noise floor.

A 2048 × 2048 frame of the 1-m preset (0.389"/pix, 13.3') at galactic latitude 12°, r band,
60 s, 1.0" seeing, 0.2" defocus: some 2,500 stars and 2,700 galaxies above m5 + 1.5. The
same catalogue is drawn three ways, each timed in this process:

- ``fast``: :func:`twin.imaging.render.render_expected` (``method="fast"``), best of
  ``--repeats``;
- ``plain GalSim``: every source with GalSim's ``drawImage`` on its natural stamp of the
  full frame (``method="plain"``), timed once;
- ``numpy noise floor``: what any renderer must at least spend: ``rng.poisson`` of the
  expected image plus Gaussian read noise.

Ratios are against the fast path. Agreement, so that speed is never bought with accuracy:
the total source flux (image minus sky) of fast over plain, and the median ratio of the
FWHM of isolated bright stars (half-maximum area, :func:`twin.imaging.psf.star_fwhm_arcsec`)
measured on both images. ``galsim full-frame bounds`` is the cost per source of the literal
alternative (``drawImage`` onto the whole frame, which makes GalSim FFT a grid twice the
frame), measured on two sources and scaled to the frame's count.

    .venv/bin/python benchmarks/frames.py [--quick] [--size 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import galsim
import numpy as np
from _common import best_of, report
from astropy.coordinates import SkyCoord

import twin  # noqa: F401  (offline astropy)
from twin.imaging.catalog import TrailModel, sky_catalog
from twin.imaging.galaxies import galaxy_profile
from twin.imaging.psf import expected_fwhm_arcsec, isolated_stars, star_fwhm_arcsec
from twin.imaging.render import render_expected
from twin.imaging.spec import FrameSpec
from twin.world.telescope import TELESCOPE_PRESETS


def bench_spec(size: int, galactic_b_deg: float = 12.0, seed: int = 7) -> FrameSpec:
    """The benchmark exposure: 1-m preset, r band, 60 s, at (l, b) = (60°, b)."""
    centre = SkyCoord(l=60.0, b=galactic_b_deg, unit="deg", frame="galactic").icrs
    return FrameSpec(
        obs_id=1, site="bench", site_height_m=2200.0, telescope=TELESCOPE_PRESETS["1m"],
        band="r", exptime_s=60.0, mjd_start=61000.0, ra_deg=float(centre.ra.deg),
        dec_deg=float(centre.dec.deg), pointing_error_ra_arcsec=2.0,
        pointing_error_dec_arcsec=-1.5, airmass=1.2, alt_deg=56.0, az_deg=180.0,
        sky_mag_arcsec2=21.0, seeing_fwhm_arcsec=1.0, defocus_fwhm_arcsec=0.2,
        tracking_error_arcsec=0.1, tracking_pa_deg=90.0, transparency=1.0, throughput=1.0,
        n_hot_pixels=0, n_bad_columns=0, moon_illum=0.0,
        moon_sep_deg=90.0, seed=seed, nx=size, ny=size,
    )  # fmt: skip


def noise_floor(image: np.ndarray, read_noise_e: float, rng: np.random.Generator) -> np.ndarray:
    return rng.poisson(image) + rng.normal(0.0, read_noise_e, image.shape)


def fwhm_agreement(fast, plain, spec: FrameSpec) -> tuple[float, float, int]:
    """Median FWHM ratio fast/plain on isolated bright stars, their median FWHM, count."""
    scale = spec.pixel_scale_arcsec
    radius = 12
    stars = isolated_stars(fast.truth, spec.nx, spec.ny, 2.0 * radius, min_flux_e=2e4)
    ratios, fwhms = [], []
    for x, y in stars[["x_pix", "y_pix"]].to_numpy():
        f = star_fwhm_arcsec(fast.image_e, x, y, scale, fast.sky_e_per_pix, radius)
        p = star_fwhm_arcsec(plain.image_e, x, y, scale, plain.sky_e_per_pix, radius)
        ratios.append(f / p)
        fwhms.append(p)
    if not ratios:
        return float("nan"), float("nan"), 0
    return float(np.median(ratios)), float(np.median(fwhms)), len(ratios)


def full_bounds_seconds_per_source(fast, spec: FrameSpec, n: int = 2) -> float:
    """Seconds per source of GalSim ``drawImage`` onto the whole frame (the literal way)."""
    full = galsim.ImageD(spec.nx, spec.ny, xmin=0, ymin=0, scale=spec.pixel_scale_arcsec)
    rows = fast.truth[fast.truth["type"] == "galaxy"].head(n).to_dict("records")
    t0 = time.perf_counter()
    for row in rows:
        obj = galsim.Convolve(galaxy_profile(row), fast.psf)
        obj.drawImage(image=full, add_to_image=True,
                      center=galsim.PositionD(row["x_pix"], row["y_pix"]))  # fmt: skip
    return (time.perf_counter() - t0) / max(len(rows), 1)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 512 × 512 frame (the test's)")
    parser.add_argument("--size", type=int, default=None, help="frame side, default 2048")
    parser.add_argument("--repeats", type=int, default=None, help="fast-path runs, best kept")
    parser.add_argument("--galactic-b", type=float, default=12.0)
    args = parser.parse_args(argv)
    size = args.size or (512 if args.quick else 2048)
    repeats = args.repeats or (1 if args.quick else 3)
    spec = bench_spec(size, args.galactic_b)

    t0 = time.perf_counter()
    catalog = sky_catalog(spec, trails=TrailModel(rate_per_hour_deg2=0.0))
    catalog_s = time.perf_counter() - t0
    render_expected(spec.resized(64, 64), catalog=catalog)  # warm-up: imports, tables
    fast = render_expected(spec, catalog=catalog)
    fast_s = best_of(lambda: render_expected(spec, catalog=catalog), repeats)
    t0 = time.perf_counter()
    plain = render_expected(spec, catalog=catalog, method="plain")
    plain_s = time.perf_counter() - t0
    rng = np.random.default_rng(spec.seed)
    read_noise = spec.telescope.detector.read_noise_e
    noise_s = best_of(lambda: noise_floor(fast.image_e, read_noise, rng), max(repeats, 2))

    in_frame = fast.truth[fast.truth["in_frame"]]
    counts = in_frame["type"].value_counts().to_dict()
    n_sources = len(fast.truth)
    full_bounds_s = full_bounds_seconds_per_source(fast, spec) * n_sources
    source_flux = float((fast.image_e - fast.sky_e_per_pix).sum())
    flux_ratio = source_flux / float((plain.image_e - plain.sky_e_per_pix).sum())
    fwhm_ratio, fwhm_plain, n_fwhm = fwhm_agreement(fast, plain, spec)

    def row(case: str, seconds: float) -> dict:
        return {"case": case, "seconds": seconds, "vs_fast": seconds / fast_s}

    rows = [row("fast (render_expected)", fast_s), row("plain GalSim drawImage", plain_s),
            row("numpy noise floor (Poisson + read)", noise_s),
            row("catalogue (sky_catalog, once)", catalog_s),
            row("galsim full-frame bounds (extrapolated)", full_bounds_s)]  # fmt: skip
    print(f"{size}x{size} frame, 1-m preset, r 60 s, b = {args.galactic_b} deg: "
          f"{counts.get('star', 0)} stars, {counts.get('galaxy', 0)} galaxies in the frame "
          f"({n_sources} drawn with the margin); vs_fast = seconds / fast seconds")  # fmt: skip
    print(f"flux fast/plain = {flux_ratio:.5f}; FWHM fast/plain = {fwhm_ratio:.5f} "
          f"(median of {n_fwhm} isolated stars, plain FWHM {fwhm_plain:.3f}\"; "
          f"expected with pixel {expected_fwhm_arcsec(spec, include_pixel=True):.3f}\", "
          f"spec image FWHM {spec.image_fwhm_arcsec:.3f}\")")  # fmt: skip
    return report(
        "frames_quick" if args.quick else "frames",
        rows,
        {"size": size, "stars_in_frame": int(counts.get("star", 0)),
         "galaxies_in_frame": int(counts.get("galaxy", 0)), "sources_drawn": n_sources,
         "faint_mag": catalog.faint_mag, "flux_ratio_fast_over_plain": flux_ratio,
         "fwhm_ratio_fast_over_plain": fwhm_ratio, "fwhm_stars": n_fwhm,
         "fwhm_plain_arcsec": fwhm_plain,
         "expected_fwhm_with_pixel_arcsec": expected_fwhm_arcsec(spec, include_pixel=True),
         "image_fwhm_arcsec": spec.image_fwhm_arcsec, "repeats": repeats,
         "speedup_plain_over_fast": plain_s / fast_s},
    )  # fmt: skip


if __name__ == "__main__":
    main()
