"""Learned fusion, without the shipped weights: the terms it starts from, the network's
shapes and symmetry, a few training steps, run-to-run determinism."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.fusion import proper_coadd  # noqa: E402
from models.fusion.consistency import stack_terms  # noqa: E402
from models.fusion.inputs import N_META, FrameMeta, meta_features  # noqa: E402
from models.fusion.learned import N_HEADS, FusionNet, loss_terms, network_inputs  # noqa: E402

INNER = (slice(30, 98), slice(30, 98))


def toy(gaussian_stack):
    return gaussian_stack((2.0, 3.5, 5.0), (10.0, 14.0, 8.0), (1.0, 0.7, 0.5), seed=3)


def test_terms_image_is_the_proper_coadd_and_differences_are_unit_noise(gaussian_stack):
    noisy, _, _ = toy(gaussian_stack)
    terms = stack_terms(noisy)
    proper = proper_coadd(noisy)
    inside = ~proper.mask
    assert np.allclose(terms.image[inside], proper.image[inside], atol=1e-4 * proper.image.max())
    assert np.allclose(terms.variance[inside], proper.variance[inside], rtol=1e-4)
    for d in terms.difference:  # consistent stack: D_j is white noise of unit variance
        assert np.std(d[INNER]) == pytest.approx(1.0, abs=0.05)


def test_removing_a_consistent_frame_keeps_the_signal(gaussian_stack):
    """λ = 0: the others' estimate of frame j's share is exact on noiseless frames (to
    0.5 % for the sharpest frame, whose finest detail the others barely measure)."""
    _, clean, _ = toy(gaussian_stack)
    terms = stack_terms(clean, regularisation=0.0)
    peak = np.abs(terms.image[INNER]).max()
    for c in terms.removal:
        assert np.abs(c[INNER]).max() < 1e-2 * peak


def test_meta_features_shape_and_relative_depth(gaussian_stack):
    noisy, _, _ = toy(gaussian_stack)
    meta = meta_features(noisy, [FrameMeta(site="sutherland", mjd=61500.0 + j) for j in range(3)])
    assert meta.shape == (3, N_META) and meta.dtype == np.float32
    assert meta[:, 3].max() == 0.0  # depth relative to the deepest frame
    assert meta[:, 4].sum() == pytest.approx(1.0)  # weight shares


def batch(b=2, n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    valid = torch.ones(b, n, dtype=torch.bool)
    valid[0, -1] = False  # a padded frame slot
    base = torch.randn(b, size, size, generator=g)
    removal = 0.3 * torch.randn(b, n, size, size, generator=g)
    labels = (torch.rand(b, n, size, size, generator=g) < 0.1).to(torch.uint8) * 2
    out = {
        "base": base,
        "truth": base - removal[:, 0] * (labels[:, 0] > 0),
        "variance": torch.ones(b, size, size),
        "removal": removal,
        "difference": torch.randn(b, n, size, size, generator=g) + 3.0 * (labels > 0),
        "labels": labels,
        "meta": torch.randn(b, n, N_META, generator=g),
        "valid": valid,
    }
    out["frames"], out["shared"] = network_inputs(
        out["difference"], out["removal"], out["base"], out["variance"]
    )
    return out


def test_shapes_and_frame_permutation_symmetry():
    torch.manual_seed(0)
    model = FusionNet(width=8).eval()
    b = batch()
    out = model(b["frames"], b["shared"], b["meta"], b["valid"])
    assert out["flag_logits"].shape == (2, 3, N_HEADS, 32, 32)
    assert out["log_var"].shape == (2, 32, 32)
    perm = torch.tensor([2, 0, 1])
    i = 1  # the stack with every slot valid
    swapped = model(
        b["frames"][i : i + 1, perm],
        b["shared"][i : i + 1],
        b["meta"][i : i + 1, perm],
        b["valid"][i : i + 1, perm],
    )
    assert torch.allclose(swapped["flag_logits"][0], out["flag_logits"][i, perm], atol=1e-5)
    assert torch.allclose(swapped["log_var"][0], out["log_var"][i], atol=1e-5)


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = FusionNet(width=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    b = batch(size=24)
    losses = []
    for _ in range(15):
        loss = loss_terms(model(b["frames"], b["shared"], b["meta"], b["valid"]), b)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_same_seed_same_weights(tmp_path):
    from models.fusion.dataset import build_dataset
    from models.fusion.learned import WEIGHTS_NAME
    from models.fusion.train import train

    data = tmp_path / "data"
    build_dataset(data, 4, 0, seed=1, progress=False, render_pix=48, crop_pix=32)
    torch.manual_seed(0)  # train() seeds the initialisation this way
    states = [FusionNet(width=4).state_dict()]
    for run in ("a", "b"):
        train(data, tmp_path / run, epochs=1, batch=2, crop=16, width=4, threads=1, progress=False)
        states.append(torch.load(tmp_path / run / WEIGHTS_NAME, weights_only=True))
    _, first, second = states
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(states[0][k], first[k]) for k in first)  # it did train


def test_tiles_give_the_untiled_result(monkeypatch):
    """Large images run by tiles with a halo beyond the receptive field: same numbers."""
    import models.fusion.learned as learned

    torch.manual_seed(0)
    model = FusionNet(width=4).eval()
    rng = np.random.default_rng(0)
    n, size = 3, 72
    args = (
        rng.normal(size=(n, size, size)).astype(np.float32),
        rng.normal(size=(n, size, size)).astype(np.float32),
        rng.normal(size=(size, size)).astype(np.float32),
        np.ones((size, size), np.float32),
        rng.normal(size=(n, N_META)).astype(np.float32),
    )
    whole = learned.fuse_arrays(model, *args)
    monkeypatch.setattr(learned, "TILE_PIX", 16)
    tiled = learned.fuse_arrays(model, *args)
    for key in whole:
        assert np.allclose(whole[key], tiled[key], atol=1e-5), key
