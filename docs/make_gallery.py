"""Render the README's gallery: one field under six conditions, as raw frames.

    .venv/bin/python docs/make_gallery.py      # writes docs/gallery.png (~10 s)

Dark vs moonlit (sky 21.2 vs 18.6 mag/arcsec² in r), clear vs cloudy (transparency 1.0 vs
0.35), in focus vs drifted (defocus 0 vs 2.5" FWHM with a 3" tracking trail), all from
the same 1-m telescope spec; the frames are the raw ADU a camera would write (bias, flat,
dark, hot pixels, cosmic rays included).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from twin.imaging.fits import read_frame
from twin.imaging.frames import render_frame
from twin.imaging.preview import write_gallery
from twin.imaging.spec import FrameSpec
from twin.world.telescope import get_telescope

OUT = Path(__file__).resolve().parent / "gallery.png"


def base_spec() -> FrameSpec:
    tel = get_telescope("1m")
    return FrameSpec(
        obs_id=1, site="cerro-pachon", site_height_m=2700.0, telescope=tel, band="r",
        exptime_s=120.0, mjd_start=61500.2, ra_deg=201.4, dec_deg=-43.0,  # near Cen A
        pointing_error_ra_arcsec=2.0, pointing_error_dec_arcsec=1.0, airmass=1.1,
        alt_deg=65.0, az_deg=180.0, sky_mag_arcsec2=21.2, seeing_fwhm_arcsec=1.0,
        defocus_fwhm_arcsec=0.0, tracking_error_arcsec=0.0, tracking_pa_deg=30.0,
        transparency=1.0, throughput=0.95,
        n_hot_pixels=40, n_bad_columns=1, moon_illum=0.0, moon_sep_deg=90.0, seed=11,
        nx=768, ny=768,
    )  # fmt: skip


CASES = [
    ("dark, clear, in focus", {}),
    ("moonlit (sky 18.6)", {"sky_mag_arcsec2": 18.6, "moon_illum": 0.95, "moon_sep_deg": 35.0}),
    ("cloudy (T = 0.35)", {"transparency": 0.35}),
    ('drifted focus (2.5")', {"defocus_fwhm_arcsec": 2.5}),
    ('tracking fault (3" trail)', {"tracking_error_arcsec": 3.0}),
    ('poor seeing (2.2")', {"seeing_fwhm_arcsec": 2.2}),
]


def main() -> Path:
    base = base_spec()
    paths, titles = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (title, changes) in enumerate(CASES):
            spec = dataclasses.replace(base, **changes)
            path = render_frame(spec, Path(tmp) / f"case{k}.fits")
            read_frame(path)  # the FITS must read back
            paths.append(path)
            titles.append(title)
        write_gallery(paths, titles, OUT, ncols=3)
    print(f"gallery: {OUT}")
    return OUT


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
