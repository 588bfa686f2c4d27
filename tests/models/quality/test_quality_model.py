"""The network: outputs finite and in range, a few steps lower the loss, runs repeat."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: threads only add contention

from models.quality.features import normalise_image  # noqa: E402
from models.quality.model import N_FLAGS, N_INPUT_SIDE, QualityNet, loss_terms  # noqa: E402


def test_outputs_finite_and_in_range():
    torch.manual_seed(0)
    out = QualityNet().eval()(torch.randn(3, 1, 64, 64) * 5, torch.randn(3, N_INPUT_SIDE))
    assert out["score"].shape == (3,) and out["logits"].shape == (3, N_FLAGS)
    for v in out.values():
        assert torch.isfinite(v).all()
    assert ((out["score"] >= 0) & (out["score"] <= 100)).all() and (out["seeing"] > 0).all()


def test_normalisation_is_finite_on_flat_and_saturated_frames():
    for frame in (np.full((32, 32), 1000, np.uint16), np.full((32, 32), 65535, np.uint16)):
        assert np.isfinite(normalise_image(frame)).all()


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = QualityNet()
    x, s = torch.randn(8, 1, 24, 24), torch.randn(8, N_INPUT_SIDE)
    score, seeing = torch.rand(8) * 100, 0.5 + torch.rand(8) * 2
    flags = (torch.rand(8, N_FLAGS) < 0.3).float()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = loss_terms(model(x, s), score, seeing, flags)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_same_seed_same_weights(tiny_dataset, tmp_path):
    from models.quality.train import train

    data, _ = tiny_dataset
    states = []
    for k in range(2):
        train(data, tmp_path / f"w{k}", epochs=1, seed=11, batch=2, progress=False, threads=1)
        states.append(torch.load(tmp_path / f"w{k}" / "quality.pt", weights_only=True))
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_resume_continues_from_the_checkpoint(tiny_dataset, tmp_path):
    from models.quality.train import train

    data, _ = tiny_dataset
    train(data, tmp_path, epochs=1, seed=2, batch=2, progress=False, threads=1)
    result = train(data, tmp_path, epochs=2, seed=2, batch=2, progress=False, threads=1,
                   resume=True)  # fmt: skip
    assert [h["epoch"] for h in result["history"]] == [1, 2]
