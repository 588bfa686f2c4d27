"""The diffusion process: cosine noise schedule, v-prediction loss and a DDIM sampler.

Continuous time ``t`` in [0, 1]; ``x_t = α_t x_0 + σ_t ε`` with the cosine schedule
``α_t = cos(π/2 · (t + s)/(1 + s))``, ``σ_t = √(1 - α_t²)`` (Nichol & Dhariwal 2021,
s = 0.008). The network predicts the velocity ``v = α_t ε - σ_t x_0`` (Salimans & Ho
2022): its scale stays the same at every noise level, and it keeps deterministic DDIM
(Song, Meng & Ermon 2021, η = 0) sharp with few steps, which is what the renderer's
per-cell banks need (:data:`DEFAULT_STEPS` network evaluations per stamp).

Determinism: the sampler's only randomness is its starting noise, passed in or drawn
from a ``torch.Generator`` per stamp (:func:`stamp_noise`), so a stamp depends on its
seed and conditioning only.
"""

from __future__ import annotations

import math

import torch

COSINE_S = 0.008
DEFAULT_STEPS = 12
T_MAX = 0.999
"""Largest time sampled and started from (α never exactly 0)."""
X_CLAMP = (-3.0, 1.2)
"""Range the predicted clean stamp is held to at each step (the data's range)."""


def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.cos(0.5 * math.pi * (t + COSINE_S) / (1.0 + COSINE_S))
    a0 = math.cos(0.5 * math.pi * COSINE_S / (1.0 + COSINE_S))
    a = (a / a0).clamp(0.0, 1.0)
    return a, torch.sqrt((1.0 - a * a).clamp_min(0.0))


def loss_v(model, x0: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None
           ) -> torch.Tensor:  # fmt: skip
    """Mean squared error of the predicted velocity at random times (one per stamp)."""
    n = len(x0)
    t = torch.rand(n, generator=generator, device="cpu").to(x0.device) * T_MAX
    eps = torch.randn(x0.shape, generator=generator, device="cpu").to(x0.device)
    a, s = (v[:, None, None, None] for v in alpha_sigma(t))
    xt = a * x0 + s * eps
    v = a * eps - s * x0
    return torch.mean((model(xt, t, cond) - v) ** 2)


def stamp_noise(seeds, size: int) -> torch.Tensor:
    """Starting noise (n, 1, size, size): stamp ``i`` from its own generator ``seeds[i]``."""
    out = torch.empty(len(seeds), 1, size, size)
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(int(seed) % (2**63))
        out[i] = torch.randn(1, size, size, generator=g)
    return out


@torch.no_grad()
def ddim_sample(model, cond: torch.Tensor, noise: torch.Tensor, steps: int = DEFAULT_STEPS
                ) -> torch.Tensor:  # fmt: skip
    """Deterministic DDIM from ``noise`` (n, 1, s, s) at t = :data:`T_MAX` to t = 0."""
    if not 1 <= steps <= 1000:
        raise ValueError(f"steps = {steps}; allowed 1..1000")
    device = next(model.parameters()).device
    x = noise.to(device)
    cond = cond.to(device)
    times = torch.linspace(T_MAX, 0.0, steps + 1, device=device)
    for i in range(steps):
        t, t_next = times[i], times[i + 1]
        a, s = alpha_sigma(t)
        v = model(x, t.expand(len(x)), cond)
        x0 = (a * x - s * v).clamp(*X_CLAMP)
        eps = (x - a * x0) / s.clamp_min(1e-8)
        a_n, s_n = alpha_sigma(t_next)
        x = a_n * x0 + s_n * eps
    return x.cpu()
