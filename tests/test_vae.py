"""The VAE's marginal by quadrature, its bounds and its view, checked against independent computations."""

from __future__ import annotations

import functools
import math
import pickle

import pytest
import torch

from genviz.config import RunConfig
from genviz.cost import estimate
from genviz.grid import Box
from genviz.models.base import ViewContext
from genviz.models.vae import VAE, quadrature_nodes
from genviz.train import Trainer

LATENTS = [1, 2]


@functools.cache
def trained(latent: int, steps: int = 600) -> Trainer:
    """A VAE trained briefly on 8gaussians (shared by the tests: about 2.5 s of CPU each)."""
    config = RunConfig(target="8gaussians", model="vae", params={"latent": latent}, steps=steps, n_test=2000)
    trainer = Trainer(config)
    trainer.train()
    return trainer


def held_out(latent: int, n: int) -> torch.Tensor:
    return trained(latent).data.test[:n]


def brute_force_log_marginal(model: VAE, x: torch.Tensor, draws: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log (1/S) Σ_s p(x | z_s), z_s ~ N(0, I), with torch.distributions, and the delta-method se
    of that log. x: (n, 2) data units -> (n,), (n,)."""
    z = torch.randn(draws, model.latent, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        mean, std = model.decode(z)  # standardised units
    scale = model.standardize.scale.double()
    shift = model.standardize.shift.double()
    likelihood = torch.distributions.Independent(
        torch.distributions.Normal(mean.double() * scale + shift, std.double() * scale), 1
    )
    log_terms = likelihood.log_prob(x.double()[:, None, :])  # (n, S)
    log_mean = torch.logsumexp(log_terms, 1) - math.log(draws)
    relative = (log_terms - log_mean[:, None]).exp()  # terms / their mean
    return log_mean, relative.std(1) / math.sqrt(draws)


@pytest.mark.parametrize("latent", LATENTS)
def test_marginal_integrates_to_one(latent: int) -> None:
    """Σ q ΔA on a midpoint grid over a box far wider than the data holds all of the mass."""
    model = trained(latent).model
    grid = Box(-8, 8, -8, 8).grid(64 if latent == 2 else 128)  # cells of 0.25 or 0.125, σ(z) ≈ 0.35
    with torch.no_grad():
        mass = grid.mass(model.log_prob(grid.points.float()))
    assert mass == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("latent", LATENTS)
def test_marginal_matches_brute_force_monte_carlo(latent: int) -> None:
    """The quadrature marginal equals ∫ p(x|z) p(z) dz by 200,000 prior draws on a few points."""
    model = trained(latent).model
    x = held_out(latent, 8)
    with torch.no_grad():
        quadrature = model.log_prob(x).double()
    monte_carlo, se = brute_force_log_marginal(model, x, 200_000)
    assert (quadrature - monte_carlo).abs().max() < 4 * se.max() + 1e-3
    assert se.max() < 0.02, "the check must be sharp enough to fail"


@pytest.mark.parametrize("latent", LATENTS)
def test_bounds_are_ordered_below_the_marginal(latent: int) -> None:
    """ELBO ≤ IWAE_64 ≤ IWAE_2048 ≤ log p(x) on held-out points (means, up to Monte Carlo error),
    and IWAE closes on log p as K grows."""
    model = trained(latent).model
    x = held_out(latent, 300)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        log_p = model.log_prob(x).double()
        elbo = model.elbo(x, 16, generator).double()
        iwae_64 = model.iwae(x, 64, generator).double()
        iwae_big = model.iwae(x, 2048, generator).double()

    def se(values: torch.Tensor) -> float:
        return float(values.std()) / math.sqrt(len(values))

    assert float((iwae_64 - elbo).mean()) > -4 * se(iwae_64 - elbo)
    assert float((iwae_big - iwae_64).mean()) > -4 * se(iwae_big - iwae_64)
    assert float((log_p - iwae_big).mean()) > -4 * se(log_p - iwae_big)
    assert float((log_p - iwae_big).mean()) < float((log_p - elbo).mean())
    assert float((log_p - iwae_big).abs().mean()) < 0.05


@pytest.mark.parametrize("latent", LATENTS)
def test_doubling_the_nodes_changes_log_p_by_little(latent: int) -> None:
    model = trained(latent).model
    x = held_out(latent, 200)
    nodes, log_w = quadrature_nodes(latent, 2 * model.nodes_per_axis + 1)
    with torch.no_grad():
        finer = model.marginal(model.standardize(x), nodes, log_w)
        assert (model.log_prob(x) - finer).abs().max() < 1e-3


def test_reported_bounds_are_labelled_and_leave_training_noise_alone() -> None:
    model = trained(1).model
    x = held_out(1, 100)
    torch.manual_seed(5)
    expected = torch.randn(3)
    torch.manual_seed(5)
    others = model.other_log_likelihoods(x)
    assert torch.equal(torch.randn(3), expected)
    assert [o.kind for o in others] == ["bound", "bound"]
    assert all(o.values.shape == (100,) and torch.isfinite(o.values).all() for o in others)
    torch.testing.assert_close(model.other_log_likelihoods(x)[1].values, others[1].values)


@pytest.mark.parametrize("latent", LATENTS)
def test_view_draws_the_latent_and_its_image(latent: int) -> None:
    trainer = trained(latent)
    context = ViewContext(trainer.data.box, trainer.data.test[:1000], {}, seed=4)
    view = trainer.model.view(context)
    names = " ".join(getattr(layer, "name", "") for layer in view.layers)
    assert "m(x)" in names and ("μ(z)" in names if latent == 1 else "μ(latent grid)" in names)
    assert pickle.dumps(view) == pickle.dumps(trainer.model.view(context))
    encoded = next(layer for layer in view.layers if "m(x)" in layer.name and layer.values is not None)
    assert len(encoded.xy) == len(encoded.values) == 1000  # every held-out point
    assert len(view.panels) == latent and view.colour is not None


@pytest.mark.parametrize("objective", ["iwae", "elbo"])
def test_the_training_loss_bounds_the_held_out_nll(objective: str) -> None:
    """Minus the training loss is a lower bound on log p: its mean over held-out points stays below
    the mean log p by quadrature, and the IWAE objective's K = 4 draws bound it more tightly than
    the ELBO averaged over as many draws."""
    model, x = trained(2).model, held_out(2, 1000)
    torch.manual_seed(11)
    with torch.no_grad():
        log_p = float(model.log_prob(x).double().mean())
        try:
            model.objective = objective  # the shared model's own is "iwae"
            bounds = torch.stack([-model.loss(x) for _ in range(8)]).double()
        finally:
            model.objective = "iwae"
    assert float(bounds.mean()) < log_p + 4 * float(bounds.std()) / math.sqrt(len(bounds))
    if objective == "iwae":
        torch.manual_seed(11)
        with torch.no_grad():
            elbo = float(model.elbo(x, model.train_samples).mean())
        assert float(bounds.mean()) > elbo


@pytest.mark.parametrize("objective", ["iwae", "elbo"])
def test_a_short_training_run_lowers_the_exact_nll(objective: str) -> None:
    """300 steps take the held-out NLL by quadrature well below the untrained model's, and
    every reported figure is labelled: the marginal exact, the ELBO and the IWAE bound bounds."""
    config = RunConfig(
        target="8gaussians", model="vae", params={"objective": objective}, steps=300, n_test=2000
    )
    trainer = Trainer(config)
    before = trainer.record()
    trainer.train()
    after = trainer.record()
    assert after.nll.value < before.nll.value - 0.5
    assert after.nll.kind == "exact" and "quadrature on 161² = 25,921 latent nodes" in after.nll.method
    assert [other.kind for other in after.others] == ["bound", "bound"]
    assert all(other.value + 3 * other.se >= after.nll.value - 3 * after.nll.se for other in after.others)


def test_a_training_step_is_priced_by_its_draws() -> None:
    """The cost check counts a decoder pass per training draw of z."""
    one, many = (estimate(RunConfig(model="vae", params={"train_samples": k})) for k in (1, 16))
    assert many.step_seconds > 4 * one.step_seconds
    assert many.memory_parts["working memory"] >= one.memory_parts["working memory"]


@pytest.mark.slow
def test_defaults_fit_8gaussians() -> None:
    """About 30 s of training (7,000 steps on one thread) reach a held-out KL below 0.1 nats
    (0.03 measured), where one Gaussian stays at 1.42 and the former 1-D ELBO defaults at 0.35."""
    trainer = Trainer(RunConfig(target="8gaussians", model="vae", steps=7_000, device="cpu"))
    trainer.train()
    evaluation = trainer.record()
    assert evaluation.kl.value < 0.1
    elbo, iwae = evaluation.others  # NLLs from bounds, on a subset of the held-out points
    assert elbo.value + 3 * elbo.se >= iwae.value
    assert iwae.value + 3 * iwae.se >= evaluation.nll.value - 3 * evaluation.nll.se
