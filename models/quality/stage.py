"""``QualityStage``: the shipped quality CNN as the twin's ``quality`` pipeline stage.

Loads ``weights/quality.pt`` with ``torch.load(weights_only=True)`` (a state dict: no
code runs on load), checks its sha256 against ``weights/manifest.json``, and on each
frame takes the central :data:`INPUT_SIZE` × :data:`INPUT_SIZE` pixels (the size it was
trained at; a smaller frame is used whole), normalises them and measures the classical
side inputs on the same pixels (:func:`models.quality.features.model_inputs`; the WCS of
the header is shifted to the crop) and runs the network on one CPU thread.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from twin.pipeline.stage import FLAG_NAMES, Frame, StageResult

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
INPUT_SIZE = 256


def central_crop(data: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    y0, x0 = crop_origin(data.shape, size)
    return data[y0 : y0 + size, x0 : x0 + size]


def crop_origin(shape: tuple[int, int], size: int = INPUT_SIZE) -> tuple[int, int]:
    ny, nx = shape
    return max((ny - size) // 2, 0), max((nx - size) // 2, 0)


def crop_header(header, shape: tuple[int, int], size: int = INPUT_SIZE) -> dict:
    """The header with its WCS reference pixel moved to the central crop's origin."""
    y0, x0 = crop_origin(shape, size)
    out = dict(header)
    if (x0 or y0) and "CRPIX1" in out:
        out["CRPIX1"] = float(out["CRPIX1"]) - x0
        out["CRPIX2"] = float(out["CRPIX2"]) - y0
    return out


def load_model(weights_dir: str | Path = WEIGHTS_DIR, check: bool = True):
    """The network with the weights of ``weights_dir`` (eval mode) and its manifest."""
    import torch

    from models.quality.model import QualityNet
    from models.quality.train import WEIGHTS_NAME, sha256

    weights_dir = Path(weights_dir)
    path = weights_dir / WEIGHTS_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `skytwin models train quality` "
                                "(see models/quality/weights/manifest.json)")  # fmt: skip
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if check and manifest.get("sha256") and manifest["sha256"] != sha256(path):
        raise ValueError(f"{path} does not match the sha256 of {manifest_path}; retrain or "
                         "restore the shipped weights")  # fmt: skip
    model = QualityNet(stem_stride=int(manifest.get("stem_stride", 2)))
    model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return model.eval(), manifest


class QualityStage:
    """The quality CNN as a :class:`~twin.pipeline.stage.PipelineStage` (``quality``)."""

    name = "quality"

    def __init__(self, weights_dir: str | Path = WEIGHTS_DIR, threads: int | None = 1) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self.model, manifest = load_model(weights_dir)
        self.version = str(manifest.get("version", "quality-cnn"))

    def predict(self, data_adu: np.ndarray, header) -> dict[str, np.ndarray]:
        """Raw outputs for one frame: score, seeing (″) and flag probabilities."""
        from models.quality.features import model_inputs

        data = np.asarray(data_adu)
        image, side = model_inputs(central_crop(data), crop_header(header, data.shape))
        torch = self._torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(image)[None, None], torch.from_numpy(side)[None])
        return {"score": out["score"].numpy()[0], "seeing": out["seeing"].numpy()[0],
                "flags": torch.sigmoid(out["logits"]).numpy()[0]}  # fmt: skip

    def process(self, frame: Frame) -> StageResult:
        out = self.predict(frame.data_adu, frame.header)
        flags = {name: float(p) for name, p in zip(FLAG_NAMES, out["flags"], strict=True)}
        score, seeing = float(out["score"]), float(out["seeing"])
        return StageResult(stage=self.name, model_version=self.version,
                           score=score if math.isfinite(score) else math.nan,
                           seeing_arcsec=seeing if math.isfinite(seeing) else math.nan,
                           flags=flags)  # fmt: skip
