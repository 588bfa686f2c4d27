"""The shipped generator: weights from ``weights/`` and stamps from conditioning and seeds.

:class:`GalaxyGenerator` loads ``manifest.json`` and the ``state_dict`` it names with
``torch.load(weights_only=True)`` (nothing in a file runs code), rebuilds the UNet from
the manifest's ``config`` and samples with DDIM (:func:`models.generative.diffusion.
ddim_sample`). :meth:`GalaxyGenerator.stamps` returns clean, unit-flux stamps: the
network's output back in linear units (:func:`models.generative.dataset.from_model`),
the central object's mask (:func:`models.generative.dataset.object_mask`, at the noise
of the stamp's border) applied so that the sky noise a real HDF cut-out carries does
not become extra light, negatives set to zero, normalised to sum 1.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.generative.dataset import COND_NAMES, from_model, object_mask
from models.generative.diffusion import DEFAULT_STEPS

WEIGHTS_DIR = Path(__file__).parent / "weights"
BATCH = 64
"""Stamps per network call: fixed, so a bank's pixels do not depend on how it is cut."""
THREADS = 1
"""torch threads while sampling, whatever the process's setting: convolutions may sum in
another order on another thread count, and two renderers building the same cell's bank
at once must draw the same pixels."""


def border_noise(images: np.ndarray, width: int = 4) -> np.ndarray:
    """Robust noise (1.4826 MAD) of each stamp's outer ``width`` pixels."""
    s = images.shape[-1]
    edge = np.ones((s, s), bool)
    edge[width:-width, width:-width] = False
    values = images[:, edge]
    mad = np.median(np.abs(values - np.median(values, axis=1, keepdims=True)), axis=1)
    return 1.4826 * mad


def clean_stamps(linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-flux stamps with only their central object, and whether each has one."""
    noise = np.maximum(border_noise(linear), 1e-4)
    out = np.zeros_like(linear)
    ok = np.zeros(len(linear), bool)
    for i, (img, sigma) in enumerate(zip(linear, noise, strict=True)):
        mask = object_mask(img, sigma)
        kept = np.where(mask, np.clip(img, 0.0, None), 0.0)
        total = kept.sum()
        if mask.sum() >= 3 and total > 0:
            out[i], ok[i] = kept / total, True
    return out, ok


class GalaxyGenerator:
    """The diffusion model of ``weights_dir`` (default: the shipped one), on the CPU."""

    def __init__(self, weights_dir: str | Path = WEIGHTS_DIR, steps: int = DEFAULT_STEPS,
                 threads: int = THREADS) -> None:  # fmt: skip
        import torch

        from models.generative.model import GalaxyUNet

        weights_dir = Path(weights_dir)
        path = weights_dir / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: train first (`skytwin models train generative`)")
        self.manifest = json.loads(path.read_text())
        self.threads = int(threads)
        config = dict(self.manifest["config"])
        config["widths"] = tuple(config["widths"])
        self.model = GalaxyUNet(**config)
        state = torch.load(weights_dir / self.manifest["weights"], map_location="cpu",
                           weights_only=True)  # fmt: skip
        self.model.load_state_dict(state)
        self.model.eval()
        self.size = int(self.manifest["stamp"])
        self.steps = int(steps)
        self.sha256 = str(self.manifest["sha256"])

    def sample(self, cond: np.ndarray, seeds) -> np.ndarray:
        """Raw samples in the network's domain, (n, size, size), batch by :data:`BATCH`."""
        import torch

        from models.generative.diffusion import ddim_sample, stamp_noise

        cond = np.asarray(cond, np.float32).reshape(-1, len(COND_NAMES))
        seeds = list(seeds)
        out = np.empty((len(cond), self.size, self.size), np.float32)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for start in range(0, len(cond), BATCH):
                c = torch.from_numpy(cond[start : start + BATCH])
                noise = stamp_noise(seeds[start : start + BATCH], self.size)
                out[start : start + BATCH] = ddim_sample(self.model, c, noise, self.steps)[:, 0]
        finally:
            torch.set_num_threads(before)
        return out

    def stamps(self, cond: np.ndarray, seeds) -> tuple[np.ndarray, np.ndarray]:
        """Clean unit-flux stamps (:func:`clean_stamps`) and which succeeded."""
        return clean_stamps(from_model(self.sample(cond, seeds)))


@lru_cache(maxsize=4)
def shared_generator(weights_dir: str = str(WEIGHTS_DIR), steps: int = DEFAULT_STEPS
                     ) -> GalaxyGenerator:  # fmt: skip
    """One loaded generator per process (frames of a run share it)."""
    return GalaxyGenerator(weights_dir, steps)
