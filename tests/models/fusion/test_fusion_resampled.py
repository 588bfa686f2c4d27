"""Frames that point differently, put on one grid with ``reproject``: fluxes still right."""

from __future__ import annotations

import numpy as np
import pytest

from models.fusion import METHODS
from models.fusion.photometry import psf_flux
from models.fusion.twin_stack import base_spec, render_stack, resampled, truth_flux
from twin.imaging.psf import isolated_stars

# (seeing arcsec, pointing error RA·cos dec, Dec arcsec): sub-pixel and multi-pixel offsets.
POINTINGS = ((1.0, 0.0, 0.0), (1.7, 1.3, -0.7), (2.2, -2.9, 1.6))


@pytest.fixture(scope="module")
def offset_stack():
    specs = [
        base_spec(
            size=224,
            seed=20 + i,
            seeing_fwhm_arcsec=s,
            pointing_error_ra_arcsec=dra,
            pointing_error_dec_arcsec=ddec,
        )
        for i, (s, dra, ddec) in enumerate(POINTINGS)
    ]
    stack = render_stack(specs, noise_seed=21, galaxies=False)
    grid = stack[0].wcs
    return [resampled(s, grid, s.frame.shape) for s in stack]


@pytest.mark.parametrize("method", ["ivw", "proper"])
def test_star_fluxes_survive_resampling(offset_stack, method):
    noiseless = METHODS[method]([s.noiseless for s in offset_stack])
    full = (1 << len(offset_stack)) - 1
    stars = isolated_stars(offset_stack[0].truth, 224, 224, 15.0)  # frame 0 is the grid
    h = 10

    def box(x, y):
        return noiseless.frames_in[round(y) - h : round(y) + h + 1, round(x) - h : round(x) + h + 1]

    stars = stars[
        [(box(x, y) == full).all() for x, y in zip(stars["x_pix"], stars["y_pix"], strict=True)]
    ]
    assert len(stars) >= 2
    flux = [
        psf_flux(noiseless.image, noiseless.psf, x, y)
        for x, y in zip(stars["x_pix"], stars["y_pix"], strict=True)
    ]
    assert np.array(flux) / truth_flux(stars) == pytest.approx(1.0, abs=0.02)
