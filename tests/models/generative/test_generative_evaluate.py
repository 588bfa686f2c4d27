"""The generator's evaluation: distances in units of the real spread, the samples' seeds,
and the real-vs-real floor beside the generated columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.generative.dataset import STAMP, measured_conditioning, to_model
from models.generative.evaluate import (
    FLOOR,
    SEED_STRIDE,
    STATISTICS,
    evaluate,
    format_table,
    sample_seeds,
    w1_in_sd,
)


def test_w1_is_the_shift_in_units_of_the_real_spread():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({s: rng.normal(0.0, 2.0, 20_000) for s in STATISTICS})
    shifted = pd.DataFrame({s: rng.normal(1.0, 2.0, 20_000) for s in STATISTICS})
    w1 = w1_in_sd(real, shifted)
    assert all(w1[s] == pytest.approx(0.5, abs=0.03) for s in STATISTICS)
    # Two finite samples of one distribution are not at 0: the floor the evaluation shows.
    small = [w1_in_sd(real.sample(172, random_state=k), real.sample(172, random_state=k + 99))
             for k in range(20)]  # fmt: skip
    mean_small = np.mean([np.mean(list(w.values())) for w in small])
    assert 0.05 < mean_small < 0.2


def test_sample_seeds_keep_the_first_block_and_never_repeat():
    held = np.array([3, 17, 860, 4858])
    seeds = sample_seeds(held, seed=2, per_galaxy=4)
    assert seeds.shape == (16,) and len(set(seeds.tolist())) == 16
    np.testing.assert_array_equal(seeds[:4], 2 * 1_000_003 + held)
    np.testing.assert_array_equal(seeds[4:8] - seeds[:4], SEED_STRIDE)


def _blob(rng, hlr_px, q, theta, noise):
    yy, xx = np.mgrid[:STAMP, :STAMP] - STAMP // 2
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    img = 100.0 * np.exp(-0.5 * (u**2 + (v / q) ** 2) / (hlr_px / 1.177) ** 2)
    return img + rng.normal(0.0, noise, img.shape)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A stand-in data set: noisy elliptical blobs, 4 held out and 10 to train on."""
    rng = np.random.default_rng(5)
    n, noise = 14, 1.0
    images = np.stack([_blob(rng, rng.uniform(1.5, 3.5), rng.uniform(0.4, 0.9),
                             rng.uniform(0, np.pi), noise) for _ in range(n)])  # fmt: skip
    noises = np.full(n, noise)
    real = np.ones(n)
    out = tmp_path_factory.mktemp("gen-data")
    np.savez_compressed(out / "generative.npz", images=images.astype(np.float32),
                        x=to_model(images), cond=measured_conditioning(images, noises, real),
                        noise=noises, real=real,
                        split=np.array(["test"] * 4 + ["train"] * 10))  # fmt: skip
    return out


def test_evaluation_measures_the_floor_beside_the_generated_sets(tiny_data):
    result = evaluate(tiny_data, _shipped(), steps=2, limit=3, per_galaxy=2, progress=False)
    _, cond_k, samples, _, _ = result.pop("_figure")
    # Each galaxy's conditioning asked twice, with other seeds: other galaxies.
    np.testing.assert_array_equal(cond_k[:3], cond_k[3:])
    assert all(not np.array_equal(samples[i], samples[i + 3]) for i in range(3))
    assert result["n_held_out"] == 3 and result["samples_per_galaxy"] == 2
    # Quick looks (--limit) cut the floor's set to as many stamps as the generated ones.
    assert result["n_floor"] == 6
    assert set(result["w1_over_sd"]) == {"diffusion", "parametric", FLOOR}
    assert 3 < result["conditioning"]["diffusion"]["n"] <= 6  # every sample, not one a galaxy
    assert result["measured"]["diffusion"] <= 6 and result["measured"][FLOOR] <= 6
    table = format_table(result)
    assert "real training (floor)" in table and len(table.splitlines()) == 2 + len(STATISTICS) + 1


def test_per_galaxy_must_be_positive(tiny_data):
    with pytest.raises(ValueError, match="per_galaxy"):
        evaluate(tiny_data, _shipped(), steps=2, limit=2, per_galaxy=0, progress=False)


def _shipped():
    from models.generative.generator import WEIGHTS_DIR

    return WEIGHTS_DIR
