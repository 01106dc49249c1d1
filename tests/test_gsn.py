"""The generative stochastic network: its mixture against torch.distributions, its chain, its view."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from genviz.config import RunConfig
from genviz.models.base import ViewContext
from genviz.models.gsn import GSN, Mixture, sample_raw
from genviz.train import Trainer
from genviz.views.layers import Heatmap, Paths


def covariances(mixture: Mixture) -> torch.Tensor:
    """Σ = [[s₁², ρ s₁ s₂], [ρ s₁ s₂, s₂²]] per component: (..., 2, 2)."""
    s1, s2 = mixture.log_sd.exp().unbind(-1)
    off = mixture.rho * s1 * s2
    return torch.stack([torch.stack([s1**2, off], -1), torch.stack([off, s2**2], -1)], -2)


def test_mixture_log_prob_matches_torch_distributions() -> None:
    generator = torch.Generator().manual_seed(3)
    raw = torch.randn(64, 5, 6, generator=generator, dtype=torch.float64) * 1.5
    centre = torch.randn(64, 2, generator=generator, dtype=torch.float64)
    mixture = Mixture.from_raw(raw, centre)
    reference = MixtureSameFamily(
        Categorical(logits=mixture.logits), MultivariateNormal(mixture.means, covariances(mixture))
    )
    z = centre + torch.randn(64, 2, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(mixture.log_prob(z), reference.log_prob(z))


def test_gaussian_sample_has_the_components_moments() -> None:
    torch.manual_seed(0)
    n = 200_000
    raw = torch.tensor([0.0, 0.5, -1.0, math.log(0.7), math.log(1.8), 1.2], dtype=torch.float64)
    component = Mixture.from_raw(raw.expand(n, 6), torch.zeros(n, 2, dtype=torch.float64))
    draws = component.gaussian_sample()
    mean, cov = draws.mean(0), torch.cov(draws.T)
    sigma = covariances(component)[0]
    torch.testing.assert_close(mean, component.means[0], atol=4 * math.sqrt(sigma.diag().max() / n), rtol=0)
    torch.testing.assert_close(cov, sigma, atol=0.03, rtol=0.01)


def test_chain_draws_components_by_their_weights() -> None:
    """Far-apart components with weights ⅛, ⅜, ½: `sample_raw`'s Gumbel-max pick matches them."""
    torch.manual_seed(1)
    n = 40_000
    logits = torch.tensor([1.0, 3.0, 4.0]).log()
    raw = torch.zeros(n, 3, 6)
    raw[..., 0] = logits
    raw[..., 1] = torch.tensor([-20.0, 0.0, 20.0])
    raw[..., 3:5] = math.log(0.1)
    draws = sample_raw(raw, torch.zeros(n, 2))
    shares = torch.stack([(draws[:, 0] < -10).float(), draws[:, 0].abs().lt(10).float(), (draws[:, 0] > 10)])
    torch.testing.assert_close(shares.float().mean(1), logits.softmax(0), atol=0.01, rtol=0)


def test_mean_displacement_is_the_mean_of_reconstructions() -> None:
    """Σ_k w_k μ_k against the mean of many Gumbel-max draws from a lopsided, far-off mixture."""
    torch.manual_seed(2)
    model = GSN(components=4)
    model.fit_data(torch.randn(2000, 2) * torch.tensor([3.0, 0.5]) + 1.0)
    with torch.no_grad():
        last = model.net[-1]
        last.weight.normal_(0, 0.2)
        bias = last.bias.view(4, 6)
        bias[:, 0] = torch.tensor([0.0, 1.0, -1.0, 2.0])  # component weights
        bias[:, 1:3] = torch.randn(4, 2)  # offsets of about the data's sd
    x_tilde = torch.tensor([[0.0, 1.0], [4.0, -1.0]])
    n = 50_000
    draws = model.standardize.inverse(model.reconstruct(model.standardize(x_tilde.repeat(n, 1))))
    by_draws = draws.view(n, 2, 2).mean(0) - x_tilde
    torch.testing.assert_close(model.mean_displacement(x_tilde), by_draws, atol=0.03, rtol=0)


def test_sample_is_the_last_state_of_the_walk() -> None:
    model = GSN(chain_steps=5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        states = model.walk(300, 5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        samples = model.sample(300)
    assert states.shape == (10, 300, 2)
    torch.testing.assert_close(samples, model.standardize.inverse(states[-1]))


def test_training_brings_the_chain_to_the_data() -> None:
    """The sample-based KL estimate falls: the untrained chain wanders around the start law."""
    trainer = Trainer(RunConfig(target="8gaussians", model="gsn", steps=400, n_test=2000, device="cpu"))
    before = trainer.record().kl
    trainer.train()
    after = trainer.record().kl
    assert before.kind == after.kind == "estimate"
    assert after.value < 0.5 * before.value and after.value < 0.5


@pytest.fixture(scope="module")
def context() -> tuple[GSN, ViewContext]:
    trainer = Trainer(RunConfig(target="moons", model="gsn", steps=30, n_test=500, device="cpu"))
    trainer.train()
    return trainer.model, ViewContext(trainer.data.box, trainer.data.test.float(), seed=7)


@pytest.mark.parametrize("steps", [1, 50])
def test_view_draws_the_walk(context: tuple[GSN, ViewContext], steps: int) -> None:
    model, base = context
    view = ViewContext(base.box, base.data, {"steps": steps}, seed=base.seed)
    drawn = model.view(view)
    paths = [layer for layer in drawn.layers if isinstance(layer, Paths) and layer.name.startswith("chain")]
    assert len(paths) == 3
    for path in paths:  # one path of 2·steps states, corrupted and clean alternating
        assert path.paths.shape == (1, 2 * steps, 2)
    corrupted = drawn.layer("corrupted x̃")
    assert corrupted.xy.shape == (3 * steps, 2)
    np.testing.assert_array_equal(corrupted.xy[0::3], paths[0].paths[0, 0::2])  # chain 1, every step
    heat = next(layer for layer in drawn.layers if isinstance(layer, Heatmap))
    assert np.isfinite(heat.z).all()
    assert pickle.dumps(model.view(view)) == pickle.dumps(drawn)
