"""Anomaly autoencoder: a tiny one learns, training is deterministic and resumable, the
shipped weights load without code execution and the stage ranks each fault above normal."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.anomaly.dataset import FRAME_SIZE, INPUT_SIZE, preprocess, render_window  # noqa: E402
from models.anomaly.evaluate import precision_at_k, roc_auc  # noqa: E402
from models.anomaly.model import FEATURES, ConvAutoencoder, anomaly_score, features  # noqa: E402
from models.anomaly.train import WEIGHTS_DIR, fit  # noqa: E402
from twin.imaging.faults import FAULT_KINDS  # noqa: E402

WEIGHTS = Path(WEIGHTS_DIR)


def toy_frames(n: int = 12, seed: int = 0, size: int = 32) -> torch.Tensor:
    """Noise plus a few point sources, like preprocessed frames (sky at 0); small, as the
    network is fully convolutional (any multiple of 16)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.1, (n, 1, size, size)).astype(np.float32)
    for img in x:
        for _ in range(3):
            i, j = rng.integers(2, size - 2, 2)
            img[0, i - 1 : i + 2, j - 1 : j + 2] += 1.0
    return torch.from_numpy(x)


def state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_autoencoder_loss_falls():
    torch.manual_seed(0)
    model = ConvAutoencoder(width=4, latent=4)
    out = fit(model, toy_frames(), toy_frames(4, seed=1), epochs=6, batch=2, lr=3e-3,
              progress=False)  # fmt: skip
    losses = [h["train_loss"] for h in out["history"]]
    assert losses[-1] < 0.95 * losses[0]  # toy noise (variance 0.01) is the floor


def test_training_is_deterministic_and_resumes_to_the_same_weights(tmp_path):
    def run(checkpoint=None, stop_after=None):
        torch.manual_seed(0)
        return fit(ConvAutoencoder(width=4, latent=4), toy_frames(8), toy_frames(4, 1),
                   epochs=3, batch=4, seed=3, checkpoint=checkpoint, stop_after=stop_after,
                   progress=False)  # fmt: skip

    a, b = run(), run()
    assert state_equal(a["best_state"], b["best_state"])
    ck = tmp_path / "checkpoint.pt"
    run(checkpoint=ck, stop_after=2)  # "killed" after two epochs...
    # ...resumed in a fresh process (a fresh model, whatever its initial weights)
    torch.manual_seed(123)
    c = fit(ConvAutoencoder(width=4, latent=4), toy_frames(8), toy_frames(4, 1), epochs=3,
            batch=4, seed=3, checkpoint=ck, resume=True, progress=False)  # fmt: skip
    assert [h["train_loss"] for h in c["history"]] == [h["train_loss"] for h in a["history"]]
    assert state_equal(a["best_state"], c["best_state"])


def test_metrics_helpers():
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert precision_at_k(np.array([5.0, 0.5]), np.array([1.0, 2.0]), 2) == 0.5


def test_preprocess_and_features_shapes():
    raw = np.random.default_rng(0).normal(1500, 20, (FRAME_SIZE, FRAME_SIZE)).astype(np.uint16)
    x = preprocess(raw)
    assert x.shape == (INPUT_SIZE, INPUT_SIZE) and x.dtype == np.float32
    assert abs(float(np.median(x))) < 0.05
    t = torch.from_numpy(x)[None, None]
    f, heat = features(t, torch.zeros_like(t))
    assert f.shape == (1, len(FEATURES)) and heat.shape == (1, INPUT_SIZE, INPUT_SIZE)
    ones = torch.ones(len(FEATURES))
    assert anomaly_score(f, f[0], ones).item() == 0.0
    assert anomaly_score(f, f[0] - 2.0, ones).item() == pytest.approx(2.0)
    # one-sided: a frame quieter than normal on every feature is not anomalous
    assert anomaly_score(f, f[0] + 2.0, ones).item() == pytest.approx(-2.0)


def _feature(x: np.ndarray, name: str) -> float:
    t = torch.from_numpy(x.astype(np.float32))[None, None]
    return float(features(t, torch.zeros_like(t))[0][0, FEATURES.index(name)])


def test_features_are_in_units_of_the_frame_noise_and_see_stripes_and_streaks():
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 0.1, (INPUT_SIZE, INPUT_SIZE))
    # per-frame normalisation: three times the noise, the same frame (but the raw MSE)
    for name in ("local", "stripes", "lowfreq"):
        assert _feature(3 * noise, name) == pytest.approx(_feature(noise, name), abs=1e-4)
    assert _feature(3 * noise, "mean") > _feature(noise, "mean") + 2.0
    # white noise: the stripe statistic is ~1 (log ~0); row offsets of 0.5 σ: far above
    assert abs(_feature(noise, "stripes")) < 1.0
    banded = noise + rng.normal(0.0, 0.05, (INPUT_SIZE, 1))
    assert _feature(banded, "stripes") > _feature(noise, "stripes") + 2.0
    # a short bright streak: local, not stripes
    streak = noise.copy()
    for k in range(12):
        streak[40 + k, 60 + k] += 1.0
    assert _feature(streak, "local") > _feature(noise, "local") + 2.0
    assert _feature(streak, "stripes") < _feature(noise, "stripes") + 0.5


def test_a_reconstructed_gradient_is_still_a_fault_a_reconstructed_star_is_not():
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, 0.1, (INPUT_SIZE, INPUT_SIZE))
    yy, xx = np.mgrid[0:INPUT_SIZE, 0:INPUT_SIZE] / INPUT_SIZE
    gradient = 0.2 * (xx + yy)  # a vignetting-like slope, 4 σ corner to corner
    star = np.zeros_like(noise)
    star[60:63, 70:73] = 2.0

    def feats(x, recon):
        t = lambda a: torch.from_numpy(a.astype(np.float32))[None, None]  # noqa: E731
        f, _ = features(t(x), t(recon))
        return dict(zip(FEATURES, f[0].tolist(), strict=True))

    clean = feats(noise + star, star)  # the star reconstructed: a normal frame
    slope = feats(noise + star + gradient, star + gradient)  # the slope reconstructed too
    assert slope["stripes"] > clean["stripes"] + 2.0  # measured against the point sources
    assert abs(slope["local"] - clean["local"]) < 0.5
    unrecon = feats(noise + star, np.zeros_like(star))  # the star left in the residual
    assert unrecon["local"] > clean["local"] + 2.0


# --- the shipped weights ------------------------------------------------------------------------


shipped = pytest.mark.skipif(
    not (WEIGHTS / "manifest.json").is_file(),
    reason="no shipped weights (skytwin models train anomaly)",
)


@shipped
def test_shipped_weights_load_with_weights_only_and_match_the_manifest():
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    path = WEIGHTS / manifest["weights"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    assert path.stat().st_size < 5_000_000
    state = torch.load(path, weights_only=True)
    ConvAutoencoder(**manifest["config"]).load_state_dict(state)
    assert "skytwin models train anomaly" in manifest["command"]
    assert "data_seed" in manifest


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from twin.ops.run import run_scenario
    from twin.scenario import load_scenario

    scenario = load_scenario("scenarios/global-3site.yaml", start="2027-02-01", nights=1, seed=9)
    out = tmp_path_factory.mktemp("anomalyrun")
    run_scenario(scenario, out, "greedy", progress=False, plots=False)
    return out


@shipped
def test_stage_scores_each_fault_above_the_same_frame_without_it(run_dir):
    import pandas as pd

    from models.anomaly.stage import AnomalyStage
    from twin.pipeline.stage import PipelineStage

    stage = AnomalyStage()
    assert isinstance(stage, PipelineStage) and stage.name == "anomaly"
    obs = pd.read_parquet(run_dir / "observations.parquet")["obs_id"]
    for obs_id in (int(obs.iloc[10]), int(obs.iloc[len(obs) // 2])):
        normal, _, _ = render_window(run_dir, obs_id)
        base = stage.score(normal)
        assert math.isfinite(base)
        for kind in FAULT_KINDS:
            faulted, header, _ = render_window(run_dir, obs_id, (kind,))
            assert header["FAULTS"] == kind
            assert stage.score(faulted) > base, (obs_id, kind)
    heat = stage.heat_map(np.tile(normal, (2, 1)))
    assert heat.shape == (2 * INPUT_SIZE, INPUT_SIZE)
