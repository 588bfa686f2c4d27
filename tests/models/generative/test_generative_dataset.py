"""The training data: HDF galaxies cut and cleaned, the twin's profiles on stamps, and the
conditioning measured the same way on both (and consistently under rotations and flips)."""

from __future__ import annotations

import numpy as np
import pytest

from models.generative.dataset import (
    MIN_SNR,
    STAMP,
    conditioning,
    dihedral,
    dihedral_cond,
    from_model,
    hdf_stamps,
    measure,
    measured_conditioning,
    parametric_stamps,
    to_model,
)


def elliptical_gaussian(sigma=2.0, q=0.5, theta_deg=30.0, size=STAMP):
    yy, xx = np.mgrid[:size, :size] - size // 2
    t = np.radians(theta_deg)
    u, v = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
    img = np.exp(-0.5 * (u**2 + (v / q) ** 2) / sigma**2)
    return img / img.sum()


def test_model_domain_round_trip():
    img = elliptical_gaussian()[None]
    x = to_model(img)
    assert x.max() == pytest.approx(1.0) and x.min() >= -1.0 - 1e-6
    np.testing.assert_allclose(from_model(x), img / img.max(), atol=1e-6)


def test_measure_recovers_size_and_shape():
    m = measure(elliptical_gaussian(sigma=2.0, q=0.5, theta_deg=30.0), noise=1e-6)
    # A Gaussian's circular half-light radius: σ √(2 ln 2) √q for axis ratio q (approx.).
    assert m["hlr_px"] == pytest.approx(2.0 * np.sqrt(2 * np.log(2)) * np.sqrt(0.5), rel=0.1)
    assert m["eps"] == pytest.approx(0.5, abs=0.03)
    assert m["theta_deg"] == pytest.approx(30.0, abs=2.0)


@pytest.mark.parametrize("k", range(8))
def test_dihedral_conditioning_matches_a_fresh_measurement(k):
    img = elliptical_gaussian(sigma=2.5, q=0.4, theta_deg=25.0)[None]
    cond = measured_conditioning(img, np.array([1e-6]), np.array([0.0]))
    moved = measured_conditioning(dihedral(img, k), np.array([1e-6]), np.array([0.0]))
    # Shape components exactly; the size within the stamp-edge truncation (a 32² stamp
    # has no central pixel, so rotating it moves the galaxy by a pixel).
    np.testing.assert_allclose(dihedral_cond(cond, k)[:, 1:], moved[:, 1:], atol=0.02)
    np.testing.assert_allclose(dihedral_cond(cond, k)[:, 0], moved[:, 0], atol=0.1)


def test_parametric_stamps_are_unit_flux_twin_profiles():
    stamps, table = parametric_stamps(4, seed=1)
    assert stamps.shape == (4, STAMP, STAMP) and len(table) == 4
    # Unit flux, less the wings of the largest (r½ up to 7 px) beyond the stamp.
    assert np.all(stamps.sum(axis=(1, 2)) <= 1.0 + 1e-6) and np.all(stamps.sum(axis=(1, 2)) > 0.9)
    cond = measured_conditioning(stamps, stamps.max(axis=(1, 2)) * 1e-3, np.zeros(4))
    assert np.all(np.isfinite(cond)) and np.all(cond[:, 4] == 0)


def test_hdf_stamps_are_cut_cleaned_and_documented():
    stamps, table, info = hdf_stamps(seed=0)
    assert stamps.shape[1:] == (STAMP, STAMP) and len(stamps) == len(table) == info["kept"]
    assert 500 <= len(stamps) <= info["detected"]
    assert (table["snr_sep"] >= MIN_SNR).all() and set(table["factor"]) <= {1, 2, 3, 4}
    assert info["noise_rms_adu"] > 0 and "8-bit" in info["jpeg"]
    # The galaxy is at the centre: the central 8x8 holds more light than any corner's.
    c = STAMP // 2
    centre = stamps[:, c - 4 : c + 4, c - 4 : c + 4].sum(axis=(1, 2))
    corner = stamps[:, :8, :8].sum(axis=(1, 2))
    assert np.mean(centre > corner) > 0.95
    again, _, _ = hdf_stamps(seed=0)
    np.testing.assert_array_equal(stamps, again)


def test_conditioning_layout():
    c = conditioning([2.0], [0.5], [45.0], [2.0], [1.0])
    np.testing.assert_allclose(c, [[np.log(2.0), 0.0, 0.5, 2.0, 1.0]], atol=1e-6)
