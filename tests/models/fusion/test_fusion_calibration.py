"""Flux scale and variance: a star's coadd flux is its truth flux; pulls have unit std."""

from __future__ import annotations

import numpy as np
import pytest

from models.fusion import METHODS
from models.fusion.photometry import psf_flux
from models.fusion.twin_stack import redraw_noise, truth_flux
from twin.imaging.psf import isolated_stars


@pytest.mark.parametrize("method", sorted(METHODS))
def test_star_flux_in_the_coadd_is_the_truth_flux(star_stack, method):
    """Frames of different transparency and zero point; the coadd is in one flux unit."""
    twin_stack = star_stack
    coadd = METHODS[method]([s.frame for s in twin_stack])
    noiseless = METHODS[method]([s.noiseless for s in twin_stack])
    full = (1 << len(twin_stack)) - 1
    stars = isolated_stars(twin_stack[0].truth, 256, 256, 15.0)
    h = 10  # every frame enters the star's whole fitting box

    def box(x, y):
        return coadd.frames_in[round(y) - h : round(y) + h + 1, round(x) - h : round(x) + h + 1]

    inside = [
        (box(x, y) == full).all() for x, y in zip(stars["x_pix"], stars["y_pix"], strict=True)
    ]
    stars = stars[inside]
    assert len(stars) >= 2
    truth = truth_flux(stars)
    xs, ys = stars["x_pix"].to_numpy(), stars["y_pix"].to_numpy()
    clean = [psf_flux(noiseless.image, coadd.psf, x, y) for x, y in zip(xs, ys, strict=True)]
    # The twin draws a faint star's stamp out to 99.5 % of its light, so up to ~0.5 % low.
    assert np.array(clean) / truth == pytest.approx(1.0, abs=0.015)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_variance_map_is_calibrated_on_empty_sky(twin_stack, method):
    """(coadd − noiseless coadd) / σ over six noise draws: std 1 ± 0.05 on empty sky."""
    rng = np.random.default_rng(5)
    truth = METHODS[method]([s.noiseless for s in twin_stack])
    empty = ~truth.mask & (np.abs(truth.image) < 0.05 * np.sqrt(truth.variance))
    pulls = []
    for _ in range(6):
        coadd = METHODS[method]([redraw_noise(s, rng) for s in twin_stack])
        pulls.append(((coadd.image - truth.image) / coadd.sigma)[empty])
    pulls = np.concatenate(pulls)
    assert empty.sum() > 5000
    assert np.std(pulls) == pytest.approx(1.0, abs=0.05)
    assert abs(np.mean(pulls)) < 0.05
