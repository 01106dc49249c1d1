"""The GAN's three games against hand computations, its penalty, its training and its view."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from genviz.config import RunConfig
from genviz.models.base import ViewContext
from genviz.models.gan import ARROW_SHARE, GAN, discriminator_loss, generator_losses, gradient_penalty
from genviz.train import Trainer
from genviz.views.layers import Arrows, Heatmap

LOSSES = ["non-saturating", "least-squares", "wasserstein-gp"]
D_REAL = [0.3, -1.2, 2.0]
D_FAKE = [0.5, 2.0, -0.7]


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def column(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)[:, None]


def test_discriminator_losses_by_hand() -> None:
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    expected = {
        "non-saturating": mean([softplus(-d) for d in D_REAL]) + mean([softplus(d) for d in D_FAKE]),
        "least-squares": 0.5 * (mean([(d - 1) ** 2 for d in D_REAL]) + mean([d**2 for d in D_FAKE])),
        "wasserstein-gp": mean(D_FAKE) - mean(D_REAL),
    }
    for kind, value in expected.items():
        assert float(discriminator_loss(kind, column(D_REAL), column(D_FAKE))) == pytest.approx(
            value, rel=1e-12
        )


def test_generator_losses_by_hand() -> None:
    expected = {
        "non-saturating": [-math.log(1 / (1 + math.exp(-d))) for d in D_FAKE],  # −log D(G(z))
        "least-squares": [0.5 * (d - 1) ** 2 for d in D_FAKE],
        "wasserstein-gp": [-d for d in D_FAKE],
    }
    for kind, values in expected.items():
        losses = generator_losses(kind, column(D_FAKE))
        assert losses.shape == (3,)
        torch.testing.assert_close(losses, torch.tensor(values, dtype=torch.float64))


def test_gradient_penalty_of_linear_critics() -> None:
    """f(x) = w·x + b has ∇f = w everywhere: penalty (‖w‖ − 1)², gradient 2(‖w‖ − 1) w/‖w‖."""
    points = torch.randn(100, 2, dtype=torch.float64)
    critic = nn.Linear(2, 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, -0.8]], dtype=torch.float64))
    assert float(gradient_penalty(critic, points).detach()) == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.2, 1.6]], dtype=torch.float64))  # ‖w‖ = 2
    penalty = gradient_penalty(critic, points)
    penalty.backward()
    assert float(penalty.detach()) == pytest.approx(1.0, rel=1e-12)
    torch.testing.assert_close(critic.weight.grad, torch.tensor([[1.2, 1.6]], dtype=torch.float64))


@pytest.mark.parametrize(
    ("loss", "disc_steps", "expected"), [(LOSSES[0], 0, 1), (LOSSES[2], 0, 5), (LOSSES[2], 3, 3)]
)
def test_discriminator_steps_per_generator_step(loss: str, disc_steps: int, expected: int) -> None:
    """0 asks for the game's usual number; each discriminator step sees a fresh batch."""
    model = GAN(loss=loss, disc_steps=disc_steps)
    model.fit_data(torch.randn(256, 2))
    calls: list[str] = []
    batches: list[int] = []

    def batch() -> torch.Tensor:
        batches.append(1)
        return torch.randn(64, 2)

    def step(group: str, loss_value: torch.Tensor) -> float:
        calls.append(group)
        return float(loss_value.detach())

    model.train_step(batch, step)
    assert calls == ["discriminator"] * expected + ["generator"] and len(batches) == expected


@pytest.mark.parametrize(("loss", "steps"), [(LOSSES[0], 300), (LOSSES[1], 300), (LOSSES[2], 80)])
def test_training_lowers_the_kl_estimate(loss: str, steps: int) -> None:
    """A short run of each game (the Wasserstein one takes 5 critic steps per step) moves the
    generator from its initial blob toward the data."""
    config = RunConfig(
        target="8gaussians", model="gan", params={"loss": loss}, steps=steps, n_test=2000, device="cpu"
    )
    trainer = Trainer(config)
    before = trainer.record().kl
    trainer.train()
    after = trainer.record().kl
    assert before.kind == after.kind == "estimate" and not trainer.rollbacks
    assert after.value < before.value - 0.5


@pytest.mark.parametrize("loss", LOSSES)
def test_generator_push_is_minus_the_loss_gradient(loss: str) -> None:
    torch.manual_seed(0)
    model = GAN(loss=loss).double()
    model.fit_data(torch.randn(500, 2, dtype=torch.float64) * 2)
    x = torch.randn(5, 2, dtype=torch.float64)
    loss_at = lambda p: float(generator_losses(loss, model.critic(p[None])).sum().detach())  # noqa: E731
    h = 1e-6
    by_differences = torch.tensor(
        [
            [(loss_at(p + h * e) - loss_at(p - h * e)) / (2 * h) for e in torch.eye(2, dtype=torch.float64)]
            for p in x
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(model.generator_push(x), -by_differences, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
@pytest.mark.parametrize("loss", LOSSES)
def test_view(loss: str, latent_dim: int) -> None:
    config = RunConfig(
        target="8gaussians",
        model="gan",
        params={"loss": loss, "latent_dim": latent_dim},
        steps=5,
        n_test=500,
        device="cpu",
    )
    trainer = Trainer(config)
    trainer.train()
    model = trainer.model
    context = ViewContext(trainer.data.box, trainer.data.test.float(), seed=3)
    view = model.view(context)
    heat = next(layer for layer in view.layers if isinstance(layer, Heatmap))
    assert np.isfinite(heat.z).all()
    if loss == "non-saturating":
        assert ((heat.z >= 0) & (heat.z <= 1)).all()
    lines = model.warped_grid()
    assert len(lines) == (1 if latent_dim == 1 else 26)
    np.testing.assert_array_equal(view.layer("G(latent").paths, lines)
    z = torch.zeros(1, latent_dim)
    z[0, 0] = -2.5
    if latent_dim > 1:
        z[0, 1] = -2.5
    torch.testing.assert_close(torch.as_tensor(lines[0][0]), model.generate(z)[0].detach())
    arrows = view.layer("−∂L_G/∂x")
    assert (
        isinstance(arrows, Arrows) and np.isfinite(arrows.starts).all() and np.isfinite(arrows.vectors).all()
    )
    longest = np.linalg.norm(arrows.vectors, axis=1).max()
    assert longest == pytest.approx(ARROW_SHARE * (context.box.xmax - context.box.xmin), rel=1e-5)
    assert pickle.dumps(model.view(context)) == pickle.dumps(view)
