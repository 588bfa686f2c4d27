"""Shared pieces: a fake generator (deterministic blobs, no torch) for the renderer's tests."""

from __future__ import annotations

import numpy as np
import pytest


class BlobGenerator:
    """Stands in for :class:`models.generative.generator.GalaxyGenerator`: an elliptical
    Gaussian per stamp, with the requested size and shape and a seeded knot."""

    size = 32
    steps = 3
    sha256 = "f" * 64

    def __init__(self) -> None:
        self.manifest = {"render": {"log_snr": 2.0, "hlr_px_range": [1.2, 4.7]}}
        self.calls = 0

    def stamps(self, cond, seeds):
        self.calls += 1
        yy, xx = np.mgrid[: self.size, : self.size] - self.size // 2
        out = np.zeros((len(cond), self.size, self.size))
        for i, (c, seed) in enumerate(zip(cond, seeds, strict=True)):
            rng = np.random.default_rng(int(seed))
            sigma = np.exp(c[0]) / 1.177
            eps, theta = np.hypot(c[1], c[2]), 0.5 * np.arctan2(c[2], c[1])
            u = xx * np.cos(theta) + yy * np.sin(theta)
            v = -xx * np.sin(theta) + yy * np.cos(theta)
            img = np.exp(-0.5 * (u**2 + (v / max(1 - eps, 0.1)) ** 2) / sigma**2)
            kx, ky = rng.integers(-3, 4, 2)
            img[self.size // 2 + ky, self.size // 2 + kx] += 0.3 * img.max()
            out[i] = img / img.sum()
        return out.astype(np.float32), np.ones(len(cond), bool)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks are fastest on one thread (and a shared machine's cores stay free)."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def blob_generator():
    return BlobGenerator()
