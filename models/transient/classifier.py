"""Real/bogus classifiers of difference-image candidates and the loader of their weights.

Two networks on the triplets of :func:`models.transient.cutouts.candidate_triplets`:

- :class:`TripletNet` (ours, ``arch="triplet"``): three conv blocks (one conv of 16,
  two of 32, one of 64 channels; batch norm, ReLU, 2 × 2 max pooling: 63 → 31 → 15 → 7;
  one conv at full resolution, as a second one there doubled the cost), a 1 × 1 conv to 32
  channels flattened (the candidate sits on the centre pixel, so *where* a structure is
  matters: no global pooling), a 64-unit layer; beside it a two-layer MLP (32 units) of
  the standardised :data:`~models.transient.cutouts.FEATURE_COLUMNS`; concatenated, a
  64-unit layer with dropout and one logit. ~0.14 M parameters, ~18 M multiply-adds per
  candidate. Why the features: ZOGY's Scorr, SNR and the catalogue-star distance carry
  what a 63² crop hides (the source-noise term, a star's true brightness behind its
  masked core) and cost nothing.
- :class:`VGG6` (the baseline, ``arch="vgg6"``), braai (Duev et al. 2019, MNRAS 489,
  3582, Fig. 2): conv 16, conv 16, 2 × 2 pool, dropout 0.25; conv 32, conv 32, 4 × 4
  pool, dropout 0.25; dense 256, dropout 0.5; one output (sigmoid). 3 × 3 kernels,
  ReLU, valid padding; on the triplet only.

Weights files are written by :func:`save_classifier` as a plain dict ``{"state_dict":
tensors, "meta_json": str}`` and read with ``torch.load(weights_only=True)``: nothing
loaded from a file can execute code; a file holding pickled objects is refused.
``meta_json`` holds the architecture, the feature means and σ of the training set, the
version and ``real_threshold``: P(real) at which 1 % of the *validation* set's real
candidates are missed (chosen in :mod:`models.transient.train`, never on the test set).
"""

from __future__ import annotations

import json
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from models.transient.cutouts import CUTOUT_PX, FEATURE_COLUMNS

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_NAME = "realbogus.pt"
BASELINE_NAME = "vgg6.pt"
ARCHS = ("triplet", "vgg6")


def _conv_block(c_in: int, c_out: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for k in range(convs):
        layers += [
            nn.Conv2d(c_in if k == 0 else c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    return [*layers, nn.MaxPool2d(2)]


class TripletNet(nn.Module):
    """Our model: triplet CNN + scalar features → one logit (module docstring)."""

    def __init__(self, n_features: int = len(FEATURE_COLUMNS), size: int = CUTOUT_PX,
                 dropout: float = 0.3) -> None:  # fmt: skip
        super().__init__()
        self.conv = nn.Sequential(
            *_conv_block(3, 16, 1), *_conv_block(16, 32, 2), *_conv_block(32, 64, 1),
            nn.Conv2d(64, 32, 1), nn.ReLU(inplace=True), nn.Flatten(),
        )  # fmt: skip
        side = size // 8
        self.image_head = nn.Sequential(nn.Linear(32 * side * side, 64), nn.ReLU(inplace=True))
        self.features = nn.Sequential(
            nn.Linear(n_features, 32), nn.ReLU(inplace=True), nn.Linear(32, 32),
            nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Linear(64 + 32, 64), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(64, 1)
        )

    def forward(self, triplets: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        image = self.image_head(self.conv(triplets))
        return self.head(torch.cat([image, self.features(features)], dim=1)).squeeze(1)


class VGG6(nn.Module):
    """braai's VGG6 (Duev et al. 2019) on the triplet only → one logit."""

    def __init__(self, size: int = CUTOUT_PX) -> None:
        super().__init__()
        relu = nn.ReLU(inplace=True)
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3), relu, nn.Conv2d(16, 16, 3), relu, nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Conv2d(16, 32, 3), relu, nn.Conv2d(32, 32, 3), relu, nn.MaxPool2d(4),
            nn.Dropout(0.25), nn.Flatten(),
        )  # fmt: skip
        side = ((size - 4) // 2 - 4) // 4
        self.head = nn.Sequential(
            nn.Linear(32 * side * side, 256), relu, nn.Dropout(0.5), nn.Linear(256, 1)
        )

    def forward(self, triplets: torch.Tensor, features: torch.Tensor | None = None):
        return self.head(self.body(triplets)).squeeze(1)


def build_model(arch: str, size: int = CUTOUT_PX,
                n_features: int = len(FEATURE_COLUMNS)) -> nn.Module:  # fmt: skip
    """A fresh network of ``arch`` (:data:`ARCHS`)."""
    if arch == "triplet":
        return TripletNet(n_features=n_features, size=size)
    if arch == "vgg6":
        return VGG6(size=size)
    raise ValueError(f"unknown arch {arch!r}; allowed: {', '.join(ARCHS)}")


class RealBogus:
    """A trained classifier: ``predict_proba(triplets, features)`` → P(real) per candidate.

    ``version`` names the weights (``meta["version"]``); ``real_threshold`` (also
    ``REAL_THRESHOLD``) is the P(real) at 1 % missed-detection rate on validation data.
    Inference runs in eval mode on the CPU in batches: the same inputs give the same
    outputs.
    """

    def __init__(self, model: nn.Module, meta: dict) -> None:
        self.model = model.eval()
        self.meta = meta
        self.version = str(meta.get("version", "untrained"))
        self.arch = str(meta.get("arch", "triplet"))
        self.real_threshold = float(meta.get("real_threshold", 0.5))
        # Raising the network's own alert needs more than being real: the P(real) at the
        # issue's 0.5 % false positives on validation (models.transient.operating).
        self.alert_threshold = float(meta.get("alert_threshold", self.real_threshold))
        self.feature_columns = tuple(meta.get("feature_columns", FEATURE_COLUMNS))
        n = len(self.feature_columns)
        self._mean = np.asarray(meta.get("feature_mean", np.zeros(n)), dtype=np.float32)
        self._std = np.asarray(meta.get("feature_std", np.ones(n)), dtype=np.float32)

    @property
    def REAL_THRESHOLD(self) -> float:
        """The name the pipeline's stage codes against; the same as ``real_threshold``."""
        return self.real_threshold

    def standardise(self, features: pd.DataFrame) -> np.ndarray:
        """The features in the training set's units (mean 0, σ 1), NaN → 0."""
        missing = [c for c in self.feature_columns if c not in features]
        if missing:
            raise ValueError(f"features lack {missing}: build them with candidate_triplets")
        x = features.loc[:, list(self.feature_columns)].to_numpy(np.float32)
        return np.nan_to_num((x - self._mean) / np.where(self._std > 0, self._std, 1.0))

    def logits(self, triplets: np.ndarray, features: pd.DataFrame, batch: int = 256):
        triplets = np.asarray(triplets, dtype=np.float32)
        if triplets.ndim != 4 or triplets.shape[1] != 3:
            raise ValueError(f"triplets must be (n, 3, H, W); got {triplets.shape}")
        if len(features) != len(triplets):
            raise ValueError(f"{len(triplets)} triplets but {len(features)} feature rows")
        side = self.standardise(features)
        out = np.empty(len(triplets), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(triplets), batch):
                t = torch.from_numpy(np.ascontiguousarray(triplets[start : start + batch]))
                f = torch.from_numpy(side[start : start + batch])
                out[start : start + batch] = self.model(t, f).numpy()
        return out

    def predict_proba(self, triplets: np.ndarray, features: pd.DataFrame) -> np.ndarray:
        """P(real) in 0..1 for each candidate (float64, the order of the inputs)."""
        if len(triplets) == 0:
            return np.zeros(0)
        return 1.0 / (1.0 + np.exp(-self.logits(triplets, features).astype(np.float64)))

    def is_real(self, proba: np.ndarray) -> np.ndarray:
        return np.asarray(proba) >= self.real_threshold


def save_classifier(path: str | Path, model: nn.Module, meta: dict) -> Path:
    """Write ``model``'s state dict and ``meta`` (JSON text) as a weights-only file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "meta_json": json.dumps(meta, sort_keys=True)}, path)
    return path


def load_classifier(path: str | Path | None = None) -> RealBogus:
    """The classifier in ``path`` (default: the shipped ``weights/realbogus.pt``).

    Read with ``torch.load(weights_only=True)``: a file holding pickled objects other
    than tensors and plain containers is refused with :class:`ValueError`.
    """
    path = Path(path) if path is not None else WEIGHTS_DIR / WEIGHTS_NAME
    if not path.exists():
        raise FileNotFoundError(
            f"no real/bogus weights at {path}; train them with `skytwin models train "
            f"transient --data DIR` (models/transient/weights/manifest.json has the command)"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path} is not a weights-only file (it holds pickled objects, which could run "
            f"code): refused. Re-save it with models.transient.classifier.save_classifier"
        ) from err
    if not isinstance(blob, dict) or "state_dict" not in blob or "meta_json" not in blob:
        raise ValueError(f"{path} is not a real/bogus weights file (save_classifier writes one)")
    meta = json.loads(blob["meta_json"])
    columns = meta.get("feature_columns", FEATURE_COLUMNS)
    model = build_model(meta.get("arch", "triplet"), int(meta.get("cutout_px", CUTOUT_PX)),
                        len(columns))  # fmt: skip
    model.load_state_dict(blob["state_dict"])
    operating = path.parent / "operating_points.json"  # models.transient.operating writes it
    if operating.exists():
        points = json.loads(operating.read_text())
        if points.get("weights") == path.name and points.get("version") == meta.get("version"):
            meta = {**meta, "alert_threshold": float(points["alert_threshold"])}
    return RealBogus(model, meta)


@lru_cache(maxsize=1)
def _shipped() -> RealBogus:
    return load_classifier()


def __getattr__(name: str):
    """``REAL_THRESHOLD``: read from the shipped weights' metadata, not written here."""
    if name == "REAL_THRESHOLD":
        return _shipped().real_threshold
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
