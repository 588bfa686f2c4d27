"""The learned fusion: proper coadd, minus what inconsistent frames put in, with σ and flags.

Design (issue 13, item 3). The proper coadd is optimal where the frames agree with their
headers, so the network does not make the image: it decides, per frame and pixel, how
much of each frame to take *out* of it. With the terms of :mod:`.consistency` (base
image ``R``, each frame's difference against the others ``D_j`` and removal term
``C_j``, all in units of the coadd's sky σ):

    fused = R − Σ_j g_j ⊙ C_j,       g_j ∈ [0, 1] per frame and pixel
    σ²    = V_proper · exp(s)

so where no gate opens the fused image *is* the proper coadd (its PSF and flux scale),
and where frame j's gate is 1 it is the others' estimate of the same image. The gate is
its own head, trained by the image loss (Huber on ``(fused − truth) / σ_proper``) and
pulled towards the inconsistency labels by a BCE term. A first version used the flag
probability itself as the gate (labels only): its small baseline probability times the
large removal term of a bright star cost 5× the proper coadd's error on consistent
stacks (held-out, 10 epochs); the image loss teaches the gate where taking a frame out
pays. ``s`` (log-variance ratio to the proper coadd's exact variance) is trained by
Gaussian NLL on the residual, so σ covers what the gates leave or add (heteroscedastic,
calibrated). The flags are separate heads: "any inconsistency" (sigmoid) and the kind
given one (softmax over :data:`~models.fusion.inputs.KINDS`).

Network (:class:`FusionNet`, ~63 k parameters at width 16): a DeepSets-style U-net, so
it is permutation-invariant over frames and takes any number of them. Each frame gets
the same encoder on its channels — ``asinh D_j``, ``asinh(C_j / 3)`` — plus the shared
ones — ``asinh(R / 3)``, ``log V`` — and its metadata broadcast
(:mod:`.inputs`); after each scale (1, ½, ¼) the frame features are concatenated with
their mean and max over the stack's frames (the "others" a frame is judged against) and
mixed by a 1 × 1 convolution. Heads per frame and pixel: one logit per kind, one for
"any", one for the gate; from the frames' pooled features, the shared log-variance ratio.

Weights load with ``torch.load(path, weights_only=True)`` (no pickle).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.fusion.inputs import KINDS, N_META

N_HEADS = len(KINDS) + 2  # the kinds (softmax among them), "any", the gate
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_NAME = "fusion.pt"
FRAME_CHANNELS = 2
SHARED_CHANNELS = 2
LOG_VAR_LIMIT = 6.0  # the variance head's ratio is kept within e^±6


def _conv(c_in: int, c_out: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True)
    )


class FrameExchange(nn.Module):
    """Each frame's features with the mean and max over the stack's valid frames, mixed."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mix = nn.Sequential(nn.Conv2d(3 * width, width, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, n = valid.shape
        f = x.view(b, n, *x.shape[1:])
        w = valid.view(b, n, 1, 1, 1).to(x.dtype)
        mean = (f * w).sum(1) / w.sum(1).clamp_min(1.0)
        peak = f.masked_fill(w == 0, float("-inf")).amax(1)
        pooled = torch.cat([mean, peak], 1).unsqueeze(1).expand(b, n, -1, -1, -1)
        return self.mix(torch.cat([f, pooled], 2).reshape(b * n, -1, *x.shape[2:]))


class FusionNet(nn.Module):
    """Per-frame gates/flags and a shared log-variance ratio (module docstring)."""

    def __init__(self, width: int = 16, n_meta: int = N_META) -> None:
        super().__init__()
        c_in = FRAME_CHANNELS + SHARED_CHANNELS + n_meta
        w1, w2 = width, 2 * width
        self.enc1 = nn.Sequential(_conv(c_in, w1), _conv(w1, w1))
        self.x1 = FrameExchange(w1)
        self.enc2 = nn.Sequential(_conv(w1, w2), _conv(w2, w2, dilation=2))
        self.x2 = FrameExchange(w2)
        self.enc3 = nn.Sequential(_conv(w2, w2), _conv(w2, w2, dilation=2))
        self.x3 = FrameExchange(w2)
        self.dec2 = _conv(2 * w2, w1)
        self.dec1 = _conv(2 * w1, w1)
        self.x_out = FrameExchange(w1)
        self.flags = nn.Conv2d(w1, N_HEADS, 1)
        self.log_var = nn.Sequential(_conv(2 * w1 + SHARED_CHANNELS, w1), nn.Conv2d(w1, 1, 1))
        # Inference settings chosen on the validation stacks after training and kept in
        # the manifest (evaluate.calibrate), not weights: see fused_from.
        self.gate_by_flag = False
        self.variance_scale = 1.0

    def forward(
        self, frames: torch.Tensor, shared: torch.Tensor, meta: torch.Tensor, valid: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``frames`` (B, N, 2, H, W), ``shared`` (B, 2, H, W), ``meta`` (B, N, M),
        ``valid`` (B, N) → ``flag_logits`` (B, N, K+2, H, W: the kinds, "any", the
        gate), ``log_var`` (B, H, W).

        H and W must be multiples of 4 (two 2× poolings); :func:`fuse_arrays` pads.
        """
        b, n, _, h, w = frames.shape
        side = shared.unsqueeze(1).expand(b, n, -1, -1, -1)
        info = meta.view(b, n, -1, 1, 1).expand(-1, -1, -1, h, w)
        x = torch.cat([frames, side, info], 2).reshape(b * n, -1, h, w)
        e1 = self.x1(self.enc1(x), valid)
        e2 = self.x2(self.enc2(F.avg_pool2d(e1, 2)), valid)
        e3 = self.x3(self.enc3(F.avg_pool2d(e2, 2)), valid)
        d2 = self.dec2(torch.cat([e2, F.interpolate(e3, scale_factor=2.0)], 1))
        d1 = self.dec1(torch.cat([e1, F.interpolate(d2, scale_factor=2.0)], 1))
        d1 = self.x_out(d1, valid)
        logits = self.flags(d1).view(b, n, N_HEADS, h, w)
        f = d1.view(b, n, -1, h, w)
        wv = valid.view(b, n, 1, 1, 1).to(f.dtype)
        mean = (f * wv).sum(1) / wv.sum(1).clamp_min(1.0)
        peak = f.masked_fill(wv == 0, float("-inf")).amax(1)
        s = self.log_var(torch.cat([mean, peak, shared], 1))[:, 0]
        return {"flag_logits": logits, "log_var": s.clamp(-LOG_VAR_LIMIT, LOG_VAR_LIMIT)}


def network_inputs(difference, removal, base, variance) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's frame (…, N, 2, H, W) and shared (…, 2, H, W) channels, from the
    terms in sky-σ units (tensors or arrays, with or without a batch axis)."""
    d, c, r, v = (
        torch.as_tensor(a, dtype=torch.float32) for a in (difference, removal, base, variance)
    )
    frames = torch.stack([torch.asinh(d), torch.asinh(c / 3.0)], -3)
    shared = torch.stack([torch.asinh(r / 3.0), torch.log(v.clamp_min(1e-3))], -3)
    return frames, shared


def flag_probs(logits: torch.Tensor) -> torch.Tensor:
    """(…, K+2, H, W) logits → (…, K+1, H, W) probabilities: each kind's
    ``p(any) · p(kind | any)``, then ``p(any)``."""
    k = len(KINDS)
    p_any = torch.sigmoid(logits[..., k : k + 1, :, :])
    return torch.cat([p_any * torch.softmax(logits[..., :k, :, :], -3), p_any], -3)


def fused_from(
    out: dict[str, torch.Tensor],
    base,
    removal,
    variance,
    valid,
    *,
    gate_by_flag: bool = False,
    variance_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(fused, variance, gates)`` in sky-σ units from the network's outputs.

    ``gate_by_flag``: multiply each gate by the frame's "any" probability, so a frame is
    taken out only where it is also flagged (the image loss alone also opens the gates
    of sharp frames on clean sky, a shrinkage that lowers pixel noise and biases
    sources). ``variance_scale``: a factor on the variance, fitted on validation stacks.
    Training uses neither.
    """
    logits = out["flag_logits"]
    gates = torch.sigmoid(logits[:, :, -1]) * valid[:, :, None, None].to(base.dtype)
    if gate_by_flag:
        gates = gates * torch.sigmoid(logits[:, :, len(KINDS)])
    fused = base - (gates * removal).sum(1)
    return fused, variance_scale * variance * torch.exp(out["log_var"]), gates


HUBER_SIGMA = 3.0
"""The image loss is quadratic in the residual up to 3 σ and linear beyond, so a cloud
over a bright star (hundreds of σ) still pulls the gate without swamping the batch."""


def loss_terms(
    out, batch: dict[str, torch.Tensor], pos_weight: float = 3.0, gate_weight: float = 0.5
) -> dict[str, torch.Tensor]:
    """The training loss, and its parts:

    - ``image``: Huber loss of ``(fused − truth) / σ_proper`` (the gates learn from it);
    - ``gate``: BCE of the gate against "any inconsistency here" (``gate_weight``): the
      gate starts from the labels, and the image loss moves it only where taking a frame
      out pays (not on a bright star whose removal term is large, say);
    - ``flags``: BCE of "any" (``pos_weight`` for the rare positives) and the kinds'
      cross-entropy on labelled pixels;
    - ``nll``: Gaussian NLL of the (detached) residual for the variance head.
    """
    valid = batch["valid"]
    fused, _, _ = fused_from(out, batch["base"], batch["removal"], batch["variance"], valid)
    logits = out["flag_logits"]
    k = len(KINDS)
    bits = batch["labels"].long()
    anywhere = (bits > 0).float()
    vf = valid[:, :, None, None].float().expand_as(anywhere)

    def masked_bce(z, target, weight):
        per = F.binary_cross_entropy_with_logits(
            z, target, reduction="none", pos_weight=torch.tensor(weight)
        )
        return (per * vf).sum() / vf.sum()

    bce_any = masked_bce(logits[:, :, k], anywhere, pos_weight)
    bce_gate = masked_bce(logits[:, :, k + 1], anywhere, 1.0)
    kinds = torch.stack([((bits >> q) & 1).float() for q in range(k)], 2)
    share = kinds / kinds.sum(2, keepdim=True).clamp_min(1.0)
    log_p = torch.log_softmax(logits[:, :, :k], 2)
    ce_kind = -(share * log_p).sum(2).sum() / anywhere.sum().clamp_min(1.0)
    r = (fused - batch["truth"]) / torch.sqrt(batch["variance"])
    image = F.huber_loss(r, torch.zeros_like(r), delta=HUBER_SIGMA)
    s = out["log_var"]
    nll = 0.5 * ((r.detach() ** 2).clamp(max=1e4) * torch.exp(-s) + s).mean()
    flags = bce_any + ce_kind
    total = image + nll + flags + gate_weight * bce_gate
    return {"image": image, "nll": nll, "flags": flags, "gate": bce_gate, "total": total}


@dataclass(frozen=True)
class LearnedFusion:
    """A learned fusion of one stack: image and σ (coadd flux unit), flags per frame.

    ``flags`` (N, K+1, H, W): probabilities per kind (:data:`KINDS`) and, last, "any";
    ``gates`` (N, H, W): how much of each frame was taken out. ``proper``: the proper
    coadd the learned one starts from.
    """

    image: np.ndarray
    variance: np.ndarray
    flags: np.ndarray
    gates: np.ndarray
    proper: np.ndarray
    proper_variance: np.ndarray

    @property
    def sigma(self) -> np.ndarray:
        return np.sqrt(self.variance)

    def flagged_regions(self, threshold: float = 0.5, min_pix: int = 4) -> list[dict]:
        """Connected regions where a frame's "any" probability exceeds ``threshold``, each
        named by its most probable kind: frame, kind, bounding box, pixels, peak p."""
        from scipy import ndimage

        rows = []
        for j, frame_flags in enumerate(self.flags):
            labels, _ = ndimage.label(frame_flags[-1] > threshold)
            for index, box in enumerate(ndimage.find_objects(labels), start=1):
                here = labels[box] == index
                if here.sum() < min_pix:
                    continue
                kind_p = [float(frame_flags[k][box][here].mean()) for k in range(len(KINDS))]
                rows.append(
                    {
                        "frame": j,
                        "kind": KINDS[int(np.argmax(kind_p))],
                        "y0": box[0].start,
                        "y1": box[0].stop,
                        "x0": box[1].start,
                        "x1": box[1].stop,
                        "n_pix": int(here.sum()),
                        "p_max": float(frame_flags[-1][box][here].max()),
                    }
                )
        return rows


def load_model(weights: str | Path | None = None) -> FusionNet:
    """The shipped (or given) weights in an eval-mode :class:`FusionNet`."""
    path = Path(weights) if weights is not None else WEIGHTS_DIR / WEIGHTS_NAME
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no fusion weights; train them with 'skytwin models train fusion --data DIR'"
        )
    manifest_path = path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    model = FusionNet(width=manifest.get("width", 16))
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    inference = manifest.get("inference", {})
    model.gate_by_flag = bool(inference.get("gate_by_flag", False))
    model.variance_scale = float(inference.get("variance_scale", 1.0))
    return model.eval()


TILE_PIX = 512
HALO_PIX = 48
"""Large images go through the network in ``TILE_PIX``² tiles with a ``HALO_PIX`` margin
(beyond the network's receptive field, ±~36 px: two 3 × 3 convolutions at full
resolution, two and a dilated one at ½, at ¼ and back), so memory stays bounded
(~0.3 GB a tile for 4 frames) and the result is the untiled one."""


def fuse_arrays(
    model: FusionNet, difference, removal, base, variance, meta
) -> dict[str, np.ndarray]:
    """Run ``model`` on one stack's terms (sky-σ units, no batch axis; any H, W), by tiles."""
    n, h, w = np.shape(difference)
    out = {
        "fused": np.zeros((h, w), np.float32),
        "variance": np.zeros((h, w), np.float32),
        "flags": np.zeros((n, N_HEADS - 1, h, w), np.float32),
        "gates": np.zeros((n, h, w), np.float32),
    }
    for y0 in range(0, h, TILE_PIX):
        for x0 in range(0, w, TILE_PIX):
            y1, x1 = min(y0 + TILE_PIX, h), min(x0 + TILE_PIX, w)
            wy0, wx0 = max(y0 - HALO_PIX, 0), max(x0 - HALO_PIX, 0)
            wy1, wx1 = min(y1 + HALO_PIX, h), min(x1 + HALO_PIX, w)
            win = (slice(wy0, wy1), slice(wx0, wx1))
            part = _fuse_window(
                model,
                np.asarray(difference)[:, win[0], win[1]],
                np.asarray(removal)[:, win[0], win[1]],
                np.asarray(base)[win],
                np.asarray(variance)[win],
                meta,
            )
            keep = (slice(y0 - wy0, y1 - wy0), slice(x0 - wx0, x1 - wx0))
            out["fused"][y0:y1, x0:x1] = part["fused"][keep]
            out["variance"][y0:y1, x0:x1] = part["variance"][keep]
            out["flags"][:, :, y0:y1, x0:x1] = part["flags"][:, :, keep[0], keep[1]]
            out["gates"][:, y0:y1, x0:x1] = part["gates"][:, keep[0], keep[1]]
    return out


def _fuse_window(model, difference, removal, base, variance, meta) -> dict[str, np.ndarray]:
    n, h, w = np.shape(difference)
    ph, pw = (-h) % 4, (-w) % 4
    pad = ((0, 0), (0, ph), (0, pw))
    d, c = np.pad(difference, pad), np.pad(removal, pad)
    r, v = np.pad(base, pad[1:]), np.pad(variance, pad[1:], constant_values=1.0)
    frames, shared = network_inputs(d, c, r, v)
    valid = torch.ones(1, n, dtype=torch.bool)
    with torch.inference_mode():
        out = model(frames[None], shared[None], torch.as_tensor(meta)[None], valid)
        fused, var, gates = fused_from(
            out,
            torch.as_tensor(r, dtype=torch.float32)[None],
            torch.as_tensor(c, dtype=torch.float32)[None],
            torch.as_tensor(v, dtype=torch.float32)[None],
            valid,
            gate_by_flag=model.gate_by_flag,
            variance_scale=model.variance_scale,
        )
        probs = flag_probs(out["flag_logits"][0])
    crop = (slice(0, h), slice(0, w))
    return {
        "fused": fused[0].numpy()[crop],
        "variance": var[0].numpy()[crop],
        "flags": probs.numpy()[:, :, :h, :w],
        "gates": gates[0].numpy()[:, :h, :w],
    }


def learned_fusion(
    frames: Sequence, metas: Sequence | None = None, *, model: FusionNet | None = None
) -> LearnedFusion:
    """Fuse :class:`~models.fusion.frame.AlignedFrame` s with the learned model.

    ``metas``: one :class:`~models.fusion.inputs.FrameMeta` per frame (None: defaults).
    """
    from models.fusion.consistency import stack_terms
    from models.fusion.inputs import meta_features

    model = model or load_model()
    terms = stack_terms(frames)
    norm = terms.flux_norm
    out = fuse_arrays(
        model,
        terms.difference,
        terms.removal * norm,
        terms.image * norm,
        terms.variance * norm**2,
        meta_features(frames, metas),
    )
    return LearnedFusion(
        out["fused"] / norm,
        out["variance"] / norm**2,
        out["flags"],
        out["gates"],
        terms.image,
        terms.variance,
    )


def learned_coadd(
    frames: Sequence, metas: Sequence | None = None, *, model: FusionNet | None = None
):
    """The learned fusion as a :class:`~models.fusion.result.Coadd` (method "learned") and
    its :class:`LearnedFusion`: the proper coadd's PSF, kernels, mask and coverage; its
    image and variance where every frame enters (elsewhere the proper coadd's own,
    frames-left values: the network was trained on unmasked stacks)."""
    from models.fusion.proper import proper_coadd

    proper = proper_coadd(frames)
    result = learned_fusion(frames, metas, model=model)
    full = proper.frames_in == (1 << len(proper.kernels)) - 1
    image = np.where(full, result.image, proper.image)
    variance = np.where(full, result.variance, proper.variance)
    return replace(proper, method="learned", image=image, variance=variance), result
