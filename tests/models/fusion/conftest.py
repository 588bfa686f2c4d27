"""Shared stacks: twin frames of one field at three conditions, and Gaussian toys."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from models.fusion.frame import AlignedFrame
from models.fusion.stamps import gaussian_psf

# (seeing FWHM arcsec, transparency, sky mag/arcsec²): a good, a hazy and a bright-sky site.
CONDITIONS = ((0.9, 0.9, 20.8), (1.6, 0.7, 20.2), (2.4, 1.0, 21.2))


@pytest.fixture(scope="session")
def twin_stack():
    """Three 192² twin frames of one field (see :mod:`models.fusion.twin_stack`)."""
    from models.fusion.twin_stack import base_spec, render_stack

    specs = [
        base_spec(size=192, seed=i, seeing_fwhm_arcsec=s, transparency=t, sky_mag_arcsec2=m)
        for i, (s, t, m) in enumerate(CONDITIONS)
    ]
    return render_stack(specs, noise_seed=11)


@pytest.fixture(scope="session")
def star_stack():
    """The same three conditions on a star-only field (no galaxy light under the stars)."""
    from models.fusion.twin_stack import base_spec, render_stack

    specs = [
        base_spec(size=256, seed=i, seeing_fwhm_arcsec=s, transparency=t, sky_mag_arcsec2=m)
        for i, (s, t, m) in enumerate(CONDITIONS)
    ]
    return render_stack(specs, noise_seed=12, galaxies=False)


@pytest.fixture
def gaussian_stack():
    """The toy-stack factory :func:`make_gaussian_stack`."""
    return make_gaussian_stack


def make_gaussian_stack(fwhms_pix, sigmas_e, scales_e, *, size=128, flux=1000.0, seed=0):
    """Point sources of ``flux`` on a grid, Gaussian PSFs, white noise: exact-maths toys.

    Returns (noisy frames, noiseless frames, positions as (x, y) pairs).
    """
    rng = np.random.default_rng(seed)
    sky = np.zeros((size, size))
    positions = [(x, y) for y in range(40, size - 39, 24) for x in range(40, size - 39, 24)]
    for x, y in positions:
        sky[y, x] = flux
    noisy, clean = [], []
    for fwhm, sigma, scale in zip(fwhms_pix, sigmas_e, scales_e, strict=True):
        psf = gaussian_psf(fwhm, 41)
        image = scale * signal.fftconvolve(sky, psf, mode="same")
        kw = dict(
            variance_e2=np.full(sky.shape, sigma**2),
            mask=np.zeros(sky.shape, bool),
            psf=psf,
            flux_scale_e=scale,
        )
        noisy.append(AlignedFrame(image + rng.normal(0.0, sigma, sky.shape), **kw))
        clean.append(AlignedFrame(image, **kw))
    return noisy, clean, positions
