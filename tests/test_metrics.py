"""Metrics against closed forms and independent computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal, kl_divergence

from genviz.metrics import (
    LogQ,
    Result,
    at_floor,
    entropy_result,
    held_out_nll,
    kl_monte_carlo,
    kl_quadrature,
    model_log_prob,
)
from genviz.models.gaussian import Gaussian, raw_from_lower
from genviz.models.gmm import GMM
from genviz.targets import TARGETS


def gaussian_model(mean: list[float], cov: list[list[float]]) -> Gaussian:
    model = Gaussian()
    with torch.no_grad():
        model.mean.copy_(torch.tensor(mean))
        model.tril_raw.copy_(raw_from_lower(torch.linalg.cholesky(torch.tensor(cov))))
    return model


def test_kl_between_gaussians_matches_closed_form() -> None:
    target = TARGETS["gaussian"]
    model = gaussian_model([0.0, 0.0], [[1.5, 0.2], [0.2, 0.7]])
    x = target.sample(50_000, torch.Generator().manual_seed(1))
    result = kl_monte_carlo(target.log_prob(x), LogQ(model_log_prob(model, x), "exact", ""), target)
    tril = model.distribution().scale_tril.detach().double()
    exact = float(
        kl_divergence(target.dist, MultivariateNormal(model.mean.detach().double(), scale_tril=tril))
    )
    assert result.kind == "exact"
    assert result.value == pytest.approx(exact, abs=4 * result.se)

    grid = target.box.grid(300)
    by_quadrature = kl_quadrature(
        target.log_prob(grid.points), model_log_prob(model, grid.points.float()), grid
    )
    assert by_quadrature.value == pytest.approx(exact, abs=5e-3)


def test_gmm_log_prob_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    model = GMM(components=4)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.1, -0.3, 0.5, 0.0]))
        model.means.copy_(torch.randn(4, 2))
        model.tril_raw.copy_(torch.randn(4, 2, 2) * 0.3)
    weights = torch.softmax(model.logits.detach(), 0)
    tril = model.distribution().component_distribution.scale_tril.detach()
    x = torch.randn(100, 2) * 2
    by_hand = (
        torch.stack(
            [
                weights[k] * MultivariateNormal(model.means[k].detach(), scale_tril=tril[k]).log_prob(x).exp()
                for k in range(4)
            ]
        )
        .sum(0)
        .log()
    )
    reference = MixtureSameFamily(
        Categorical(weights), MultivariateNormal(model.means.detach(), scale_tril=tril)
    )
    torch.testing.assert_close(model.log_prob(x).detach(), by_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.log_prob(x).detach(), reference.log_prob(x), rtol=1e-5, atol=1e-5)


def test_em_never_lowers_the_likelihood_of_its_batch() -> None:
    torch.manual_seed(0)
    x = TARGETS["8gaussians"].sample(4000, torch.Generator().manual_seed(0))
    model = GMM(components=8)
    model.fit_data(x)
    losses = [model.update(x) for _ in range(15)]
    assert all(b <= a + 1e-5 for a, b in zip(losses, losses[1:], strict=False))


def eight_gaussians_as_gmm() -> GMM:
    target = TARGETS["8gaussians"]
    model = GMM(components=8)
    with torch.no_grad():
        model.logits.zero_()
        model.means.copy_(target.centres.float())
        model.tril_raw.copy_(raw_from_lower(torch.eye(2).expand(8, 2, 2) * target.std))
    return model


def test_kl_is_zero_and_nll_is_entropy_when_model_is_target() -> None:
    target = TARGETS["8gaussians"]
    model = eight_gaussians_as_gmm()
    x = target.sample(20_000, torch.Generator().manual_seed(3))
    log_q, log_p = model_log_prob(model, x), target.log_prob(x)
    kl = kl_monte_carlo(log_p, LogQ(log_q, "exact", ""), target)
    assert abs(kl.value) < 1e-4
    nll = held_out_nll(LogQ(log_q, "exact", ""))
    assert nll.value == pytest.approx(target.entropy, abs=4 * nll.se)
    grid = target.box.grid(300)
    quad = kl_quadrature(target.log_prob(grid.points), model_log_prob(model, grid.points.float()), grid)
    assert abs(quad.value) < 1e-4


def test_results_say_what_they_are() -> None:
    text = Result("KL", 0.0412, 0.0031, "exact", "Monte Carlo on 20,000 held-out points").text()
    assert text == "KL = 0.041 ± 0.003 (exact, Monte Carlo on 20,000 held-out points)"
    assert "unavailable" in kl_monte_carlo(torch.zeros(3), LogQ(torch.zeros(3), "exact", ""), None).text()
    bound = held_out_nll(LogQ(torch.zeros(10), "bound", "ELBO"))
    assert bound.kind == "bound" and "ELBO" in bound.method
    upper = kl_monte_carlo(torch.zeros(3), LogQ(torch.zeros(3), "bound", "ELBO"), TARGETS["checkerboard"])
    assert upper.kind == "bound" and "ELBO" in upper.method
    assert entropy_result(None).kind == "unavailable"
    assert entropy_result(TARGETS["checkerboard"]).value == pytest.approx(math.log(32))


def test_a_divergence_estimate_below_zero_is_shown_at_its_floor() -> None:
    noisy = at_floor(Result("KL", -0.004, 0.003, "exact", "Monte Carlo on 1,000 held-out points"))
    assert noisy.value == 0.0 and noisy.se == 0.003 and noisy.kind == "exact"
    assert "-0.004" in noisy.method and "floor" in noisy.method
    fine = Result("KL", 0.02, 0.003, "exact", "m")
    assert at_floor(fine) is fine


def test_the_monte_carlo_kl_of_the_target_itself_is_never_negative() -> None:
    """q = p exactly: the paired differences are all zero or, with a little noise, average either side
    of zero; what is shown never falls below 0."""
    target = TARGETS["8gaussians"]
    x = target.sample(2000, torch.Generator().manual_seed(3))
    log_p = target.log_prob(x)
    for shift in (-1e-3, 0.0, 1e-3):
        noise = shift + 1e-3 * torch.randn(len(x), generator=torch.Generator().manual_seed(4)).double()
        result = kl_monte_carlo(log_p, LogQ(log_p + noise, "exact", ""), target)
        assert result.value is not None and result.value >= 0
