"""The energy-based model: its partition function, density, Langevin sampler and training."""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch
from torch.distributions import MultivariateNormal

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.metrics import model_log_prob
from genviz.models.base import ViewContext
from genviz.models.ebm import EBM, langevin
from genviz.train import Trainer

SMALL = {"hidden": (32, 32), "chains": 128, "langevin_steps": 5}


def fitted(seed: int = 0, **params) -> EBM:
    """An untrained model whose energy is a random (not zeroed) network, fitted to scaled data."""
    torch.manual_seed(seed)
    model = EBM(**params)
    for p in model.net.parameters():
        torch.nn.init.normal_(p, std=0.5)
    model.fit_data(torch.randn(4096, 2) * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -1.0]))
    return model


def test_partition_function_agrees_at_two_resolutions() -> None:
    model = fitted()
    box = Box(-6, 7, -4, 2)
    coarse, fine = (box.grid(r) for r in (128, 384))
    log_z_coarse = coarse.log_mass(model_log_prob(model, coarse.points.float()))
    log_z_fine = fine.log_mass(model_log_prob(model, fine.points.float()))
    assert log_z_coarse == pytest.approx(log_z_fine, abs=2e-3)


def test_zero_network_is_the_confining_gaussian() -> None:
    """With f_θ = 0, q(z) ∝ exp(−λ|z|²) = N(0, I/(2λ)); in data units N(shift, diag(scale²)/(2λ))."""
    model = fitted(confine=0.5)
    for p in model.net.parameters():
        torch.nn.init.zeros_(p)
    shift, scale = model.standardize.shift.double(), model.standardize.scale.double()
    reference = MultivariateNormal(shift, torch.diag(scale**2 / (2 * model.confine)))
    grid = Box(-12, 14, -5, 3).grid(400)
    log_z = grid.log_mass(model_log_prob(model, grid.points.float()))
    x = reference.sample((500,))
    torch.testing.assert_close(model_log_prob(model, x.float()) - log_z, reference.log_prob(x), atol=2e-3, rtol=0)


@pytest.mark.parametrize("noise", [1.0, 0.5])
def test_langevin_samples_a_gaussian_energy(noise: float) -> None:
    """Unadjusted Langevin on E = ½(z − μ)ᵀP(z − μ) gives mean μ and covariance noise²·P⁻¹
    (up to the O(s) discretisation bias)."""
    torch.manual_seed(1)
    mean = torch.tensor([0.5, -1.0])
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
    precision = torch.linalg.inv(cov)
    energy = lambda z: 0.5 * ((z - mean) @ precision * (z - mean)).sum(1)  # noqa: E731
    z = langevin(energy, torch.randn(8000, 2) * 3, steps=300, step_size=0.01, noise=noise)[-1]
    torch.testing.assert_close(z.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), noise**2 * cov, atol=0.06 * noise**2, rtol=0)


def test_sample_follows_the_normalised_grid_density() -> None:
    """Grid samples have the mean that quadrature of q over the sampling box gives."""
    model = fitted()
    grid = model.box().grid(200)
    q = torch.softmax(model_log_prob(model, grid.points.float()), 0)
    expected = (q[:, None] * grid.points).sum(0)
    torch.manual_seed(2)
    x = model.sample(20_000).double()
    se = x.std(0) / math.sqrt(len(x))
    assert ((x.mean(0) - expected).abs() < 4 * se + 1e-3).all()
    assert model.box().contains(x).all()


def test_training_lowers_held_out_nll() -> None:
    config = RunConfig(target="8gaussians", model="ebm", params=SMALL, steps=150, n_test=2000)
    trainer = Trainer(config)
    before = trainer.record()
    trainer.train()
    after = trainer.record()
    assert after.nll.kind == "exact" and "quadrature" in after.nll.method
    assert after.nll.value < before.nll.value - 0.3


def test_short_run_chains_start_from_noise() -> None:
    model = fitted(**SMALL, negatives="short-run")
    model.chains.fill(100.0)  # a persistent chain would start here; short-run ignores it
    low, high = model._z_bounds()
    chains = model.advance_chains()
    assert ((chains >= low) & (chains <= high)).all()


def test_rollback_restores_the_chains() -> None:
    """The chains are buffers: a saved state dict brings them back, and the run goes on identically."""
    config = RunConfig(target="moons", model="ebm", params=SMALL, steps=20, n_test=500)
    trainer = Trainer(config)
    trainer.train(max_steps=10)
    state = copy.deepcopy(trainer.model.state_dict())
    assert {"chains", "trails"} <= set(state)
    saved = state["chains"].clone()
    torch.manual_seed(3)
    trainer.model.advance_chains()
    moved = trainer.model.chains.clone()
    assert not torch.equal(moved, saved)
    trainer.model.load_state_dict(state)
    assert torch.equal(trainer.model.chains, saved)
    torch.manual_seed(3)
    torch.testing.assert_close(trainer.model.advance_chains(), moved)


def test_view_draws_energy_chains_and_trails() -> None:
    model = fitted(**SMALL)
    model.advance_chains()
    context = ViewContext(box=Box(-5, 7, -4, 2), data=torch.randn(300, 2))
    start = time.process_time()
    fig = model.view(context)
    assert time.process_time() - start < 0.2
    kinds = [trace.type for trace in fig.data]
    assert kinds[0] == "heatmap" and "scattergl" in kinds and "scatter" in kinds
    assert fig.data[0].z.max() <= 12.0 and fig.data[0].z.min() == 0.0
