"""The diffusion model: a tiny one learns in a few steps, training is deterministic and
resumable, the sampler is deterministic for a seed, and the shipped weights load as data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.generative.dataset import COND_NAMES, conditioning, to_model  # noqa: E402
from models.generative.diffusion import ddim_sample, stamp_noise  # noqa: E402
from models.generative.generator import WEIGHTS_DIR, GalaxyGenerator  # noqa: E402
from models.generative.model import GalaxyUNet  # noqa: E402
from models.generative.train import fit  # noqa: E402
from models.generative.train import main as train_main  # noqa: E402

WIDTHS = (8, 8, 16)


def toy_data(n: int = 24, size: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Round Gaussian blobs of a few sizes, as a data set of the real layout."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size // 2
    hlr = rng.uniform(1.0, 3.0, n)
    images = np.exp(-0.5 * (xx**2 + yy**2)[None] / (hlr[:, None, None] / 1.177) ** 2)
    cond = conditioning(hlr, np.zeros(n), np.zeros(n), 2.0, 1.0)
    split = np.where(np.arange(n) < n - 4, "train", "test")
    return {"x": to_model(images), "cond": cond, "real": np.ones(n), "split": split}


def tiny_model(seed: int = 0) -> GalaxyUNet:
    torch.manual_seed(seed)
    return GalaxyUNet(n_cond=len(COND_NAMES), widths=WIDTHS, emb_dim=16)


def states_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_unet_shape():
    model = tiny_model()
    out = model(torch.zeros(3, 1, 16, 16), torch.rand(3), torch.zeros(3, len(COND_NAMES)))
    assert out.shape == (3, 1, 16, 16)


def test_loss_falls_and_training_is_deterministic():
    data = toy_data()
    kwargs = {"steps": 60, "batch": 16, "lr": 3e-3, "seed": 1, "progress": False,
              "eval_every": 20, "warmup_steps": 5}  # fmt: skip
    a = fit(tiny_model(), data, **kwargs)
    b = fit(tiny_model(), data, **kwargs)
    assert states_equal(a["model"], b["model"]) and states_equal(a["ema"], b["ema"])
    first, last = a["history"][0]["train_loss"], a["history"][-1]["train_loss"]
    assert last < 0.7 * first
    assert a["history"][-1]["val_loss"] < a["history"][0]["val_loss"]


def test_resumed_training_equals_unbroken(tmp_path):
    data = toy_data()
    kwargs = {"steps": 12, "batch": 8, "seed": 2, "progress": False, "checkpoint_every": 4}
    whole = fit(tiny_model(), data, **kwargs)
    ck = tmp_path / "checkpoint.pt"
    fit(tiny_model(), data, checkpoint=ck, stop_after=8, **kwargs)
    resumed = fit(tiny_model(), data, checkpoint=ck, resume=True, **kwargs)
    assert states_equal(whole["model"], resumed["model"])
    assert states_equal(whole["ema"], resumed["ema"])


def test_training_ships_the_weights_asked_for(tmp_path):
    data_dir, run = tmp_path / "data", tmp_path / "run"
    data_dir.mkdir()
    np.savez_compressed(data_dir / "generative.npz", **toy_data())
    (data_dir / "generative.json").write_text(json.dumps({"seed": 0, "n_parametric": 0}))
    common = ["--data", str(data_dir), "--out", str(run), "--steps", "6", "--batch", "4",
              "--widths", "8,8,16", "--seed", "3"]  # fmt: skip
    train_main([*common, "--weights", str(tmp_path / "ema")])
    train_main([*common, "--export", "--ship", "model", "--weights", str(tmp_path / "last")])
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    for name, key in (("ema", "ema"), ("last", "model")):
        shipped = torch.load(tmp_path / name / "generative.pt", weights_only=True)
        assert shipped.keys() == ck[key].keys()
        assert all(torch.equal(shipped[k], ck[key][k]) for k in shipped)
    manifest = json.loads((tmp_path / "last" / "manifest.json").read_text())
    assert "--ship model" in manifest["command"] and "--export" not in manifest["command"]
    assert manifest["train"]["ship"] == "model"
    ema, last = (
        torch.load(tmp_path / n / "generative.pt", weights_only=True) for n in ("ema", "last")
    )
    assert not all(torch.equal(ema[k], last[k]) for k in ema)


def test_sampler_is_deterministic_for_a_seed():
    model = tiny_model().eval()
    for p in model.parameters():  # an untrained net outputs zeros: give it something to do
        p.data.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(3))
    cond = torch.from_numpy(conditioning([2.0, 3.0], [0.1, 0.4], [0, 30], 2.0, 1.0))
    a = ddim_sample(model, cond, stamp_noise([5, 6], 16), steps=4)
    b = ddim_sample(model, cond, stamp_noise([5, 6], 16), steps=4)
    c = ddim_sample(model, cond, stamp_noise([5, 7], 16), steps=4)
    assert torch.equal(a, b) and not torch.equal(a[1], c[1])
    assert torch.equal(stamp_noise([5], 16)[0], stamp_noise([9, 5], 16)[1])


def test_shipped_weights_load_as_data_and_sample(monkeypatch):
    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    path = Path(WEIGHTS_DIR) / manifest["weights"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest["sha256"]
    assert path.stat().st_size < 8 * 2**20
    assert "skytwin models train generative" in manifest["command"]
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    gen = GalaxyGenerator(steps=3)
    assert calls == [True]
    cond = conditioning([2.5, 4.0], [0.2, -0.3], [10.0, 80.0], manifest["render"]["log_snr"], 1.0)
    a, ok_a = gen.stamps(cond, [11, 12])
    b, _ = gen.stamps(cond, [11, 12])
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, gen.size, gen.size) and ok_a.all()
    np.testing.assert_allclose(a.sum(axis=(1, 2)), 1.0, rtol=1e-5)
