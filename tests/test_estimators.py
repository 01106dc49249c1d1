"""Sample-based density estimates against closed forms: they stand in for a density where a
family defines none, so they must be right where the answer is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from genviz.estimators import binned_kde, digamma_int, knn_log_density
from genviz.grid import Box


def gaussian(mean: tuple[float, float], scale: float) -> MultivariateNormal:
    return MultivariateNormal(
        torch.tensor(mean, dtype=torch.float64), scale**2 * torch.eye(2, dtype=torch.float64)
    )


def test_digamma_matches_torch() -> None:
    for k in (1, 2, 5, 10, 30):
        assert digamma_int(k) == pytest.approx(
            float(torch.special.digamma(torch.tensor(float(k), dtype=torch.float64))), abs=1e-12
        )


def test_knn_kl_matches_closed_form_gaussians() -> None:
    """KL(p ‖ q) with log p exact and log q by k-NN from q's samples, against the closed form."""
    torch.manual_seed(0)
    p, q = gaussian((0.0, 0.0), 1.0), gaussian((0.5, 0.0), 1.2)
    x = p.sample((20_000,))
    log_q_hat = knn_log_density(q.sample((20_000,)), x)
    estimate = float((p.log_prob(x) - log_q_hat).mean())
    assert estimate == pytest.approx(float(kl_divergence(p, q)), abs=0.03)


def test_knn_cross_entropy_of_identical_sampler_is_entropy() -> None:
    torch.manual_seed(1)
    p = gaussian((1.0, -1.0), 0.7)
    x = p.sample((10_000,))
    cross_entropy = float(-knn_log_density(p.sample((20_000,)), x).mean())
    assert cross_entropy == pytest.approx(float(p.entropy()), abs=0.03)


def test_binned_kde_is_the_kde_up_to_binning() -> None:
    """On a fine grid, the blurred histogram equals a direct Gaussian KDE with the same bandwidths."""
    torch.manual_seed(2)
    samples = gaussian((0.0, 0.0), 1.0).sample((4000,))
    grid = Box(-5, 5, -5, 5).grid(200)
    log_kde = binned_kde(samples, grid)
    assert grid.mass(log_kde) == pytest.approx(1.0, abs=0.01)
    centres = samples[:1000]  # a direct KDE costs grid × centres
    h = 0.5 * centres.std(0) * len(centres) ** (-1 / 6)
    z = (grid.points[:, None, :] - centres[None, :, :]) / h
    direct = (-0.5 * (z**2).sum(-1)).exp().mean(1) / (2 * math.pi * h.prod())
    sub = binned_kde(centres, grid)
    err = (grid.reshape(direct) - sub.exp()).abs().max() / direct.max()
    assert err < 0.03
    assert torch.isfinite(log_kde).all()
