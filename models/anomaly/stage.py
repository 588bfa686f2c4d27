"""The ``anomaly`` pipeline stage: reconstruction error of the shipped autoencoder → score.

For each :data:`~models.anomaly.dataset.FRAME_SIZE`² tile of the frame (one for a
512² window; 64 for a 4k frame) the tile is preprocessed exactly as in training, passed
through the autoencoder, and summarised by the error features of
:func:`~models.anomaly.model.features`; the tile's score is the largest z-score of the
manifest's ``score_features`` against normal validation frames (the calibration in
``manifest.json``), and the frame's :attr:`StageResult.anomaly` the largest over tiles:
about 0-3 for normal frames, more when something looks like nothing in training. A
frame smaller than a tile gets NaN (the model was trained at this pixel scale and size
only).

:meth:`AnomalyStage.heat_map` returns the 5×5-smoothed squared error in units of the
tile's residual noise (≈ 1 where the tile looks normal), tiles in place
(128² per tile), for galleries and for a person to see where the frame is odd.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from models.anomaly.dataset import FRAME_SIZE, INPUT_SIZE, preprocess, tiles
from models.anomaly.train import WEIGHTS_DIR
from twin.pipeline.stage import Frame, StageResult


class AnomalyStage:
    """``PipelineStage`` ``"anomaly"``. ``weights_dir``: a folder with ``manifest.json`` and
    the ``state_dict`` it names (default: the shipped ``models/anomaly/weights``)."""

    name = "anomaly"

    def __init__(self, weights_dir: str | Path = WEIGHTS_DIR, threads: int | None = None) -> None:
        try:
            import torch
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ImportError(
                "the anomaly stage needs torch: pip install 'skytwin[models]'"
            ) from err
        from models.anomaly.model import SCORE_FEATURES, ConvAutoencoder

        weights_dir = Path(weights_dir)
        manifest_path = weights_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{manifest_path}: train first (`skytwin models train anomaly`)"
            )
        self.manifest = json.loads(manifest_path.read_text())
        if threads:
            torch.set_num_threads(threads)
        self.model = ConvAutoencoder(**self.manifest["config"])
        state = torch.load(
            weights_dir / self.manifest["weights"], map_location="cpu", weights_only=True
        )
        self.model.load_state_dict(state)
        self.model.eval()
        cal = self.manifest["calibration"]
        self._mu = torch.tensor(cal["mu"])
        self._sd = torch.tensor(cal["sd"])
        self._use = tuple(self.manifest.get("score_features") or SCORE_FEATURES)
        self.version = f"{self.manifest['version']}-{self.manifest['sha256'][:8]}"

    def score_tiles(self, data_adu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (n_tiles,), heat (n_tiles, 128, 128))`` of the frame's tiles."""
        import torch

        from models.anomaly.model import anomaly_score, features

        windows = tiles(np.asarray(data_adu))
        if not windows:
            return np.full(0, math.nan), np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.float32)
        x = torch.from_numpy(np.stack([preprocess(w) for w in windows]))[:, None]
        with torch.no_grad():
            feats, heat = features(x, self.model(x))
            scores = anomaly_score(feats, self._mu, self._sd, self._use)
        return scores.numpy().astype(float), heat.numpy()

    def heat_map(self, data_adu: np.ndarray) -> np.ndarray:
        """The error map, tiles in place: ``(ny // 512 * 128, nx // 512 * 128)``."""
        _, heat = self.score_tiles(data_adu)
        ny, nx = (s // FRAME_SIZE for s in np.shape(data_adu))
        if not len(heat):
            return np.zeros((0, 0), np.float32)
        return (
            heat.reshape(ny, nx, INPUT_SIZE, INPUT_SIZE)
            .transpose(0, 2, 1, 3)
            .reshape(ny * INPUT_SIZE, nx * INPUT_SIZE)
        )

    def score(self, data_adu: np.ndarray) -> float:
        scores, _ = self.score_tiles(data_adu)
        return float(scores.max()) if len(scores) else math.nan

    def process(self, frame: Frame) -> StageResult:
        anomaly = self.score(frame.data_adu)
        return StageResult(
            stage=self.name,
            model_version=self.version,
            anomaly=anomaly,
        )
