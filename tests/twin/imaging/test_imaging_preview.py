"""Previews: PNGs are written, non-trivial, marked, and a gallery holds a grid."""

import numpy as np
import pandas as pd
from matplotlib.image import imread

from twin.imaging.detector import apply_detector
from twin.imaging.fits import read_frame, write_frame
from twin.imaging.preview import write_gallery, write_preview
from twin.imaging.spec import FrameSpec
from twin.world.telescope import TELESCOPE_PRESETS


def make_spec(sky_mag: float = 21.0) -> FrameSpec:
    return FrameSpec(
        obs_id=3, site="test", site_height_m=2000.0, telescope=TELESCOPE_PRESETS["2m"],
        band="i", exptime_s=60.0, mjd_start=60000.5, ra_deg=10.0, dec_deg=20.0,
        pointing_error_ra_arcsec=0.0, pointing_error_dec_arcsec=0.0, airmass=1.1,
        alt_deg=65.0, az_deg=10.0, sky_mag_arcsec2=sky_mag, seeing_fwhm_arcsec=1.0,
        defocus_fwhm_arcsec=0.0, tracking_error_arcsec=0.0, tracking_pa_deg=0.0,
        transparency=1.0, throughput=1.0, n_hot_pixels=100,
        n_bad_columns=0, moon_illum=0.0, moon_sep_deg=90.0, seed=1, nx=300, ny=240,
    )  # fmt: skip


def star_field(spec: FrameSpec, sky_e: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 40
    x, y = rng.uniform(5, spec.nx - 5, n), rng.uniform(5, spec.ny - 5, n)
    flux = 10 ** rng.uniform(3.5, 5.5, n)
    yy, xx = np.mgrid[0 : spec.ny, 0 : spec.nx]
    image = np.full((spec.ny, spec.nx), sky_e)
    for xi, yi, fi in zip(x, y, flux, strict=True):
        image += fi / (2 * np.pi * 1.6**2) * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / 5.12)
    kinds = np.where(np.arange(n) % 5 == 0, "galaxy", "star").astype(object)
    kinds[1] = "transient"
    truth = pd.DataFrame({"source_id": [f"s{i}" for i in range(n)], "type": kinds,
                          "x_pix": x, "y_pix": y, "mag": 25 - 2.5 * np.log10(flux),
                          "flux_e": flux})  # fmt: skip
    raw = apply_detector(image, spec, rng)
    return raw, truth


def test_preview_png_written(tmp_path):
    spec = make_spec()
    result, truth = star_field(spec, 800.0)
    fits_path = write_frame(tmp_path / "a.fits", result.raw_adu, spec, truth, detector=result)
    data, header, truth_read = read_frame(fits_path)
    png = write_preview(tmp_path / "a.png", data, header, truth_read, mark_truth=True)
    assert png.exists() and png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(png)
    assert pixels.shape[0] > 400 and pixels[..., :3].std() > 0.05  # not a blank image
    plain = write_preview(tmp_path / "plain.png", data, title="no header")
    assert plain.stat().st_size > 20_000


def test_gallery_is_a_grid(tmp_path):
    paths = []
    for i, sky_e in enumerate([300.0, 6000.0]):  # dark vs moonlit
        spec = make_spec()
        result, truth = star_field(spec, sky_e, seed=i)
        paths.append(write_frame(tmp_path / f"{i}.fits", result.raw_adu, spec, truth))
    single = imread(write_preview(tmp_path / "one.png", read_frame(paths[0])[0]))
    grid = imread(write_gallery(paths, ["dark", "moonlit"], tmp_path / "g.png"))
    assert grid.shape[1] > 1.5 * single.shape[1] * 4.0 / 6.0
    assert grid.shape[1] > grid.shape[0]
