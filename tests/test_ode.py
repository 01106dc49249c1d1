"""The continuous-time families against independent computations: the RK4 likelihood against a
closed form, the exact divergences against autograd, the DDPM schedules and bound against direct
definitions, the solver's convergence on trained models, and the views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.models.base import ViewContext
from genviz.models.cnf import VelocityField
from genviz.models.diffusion import DDPM, beta, discrete_schedule, log_alpha_bar
from genviz.models.ode import field_and_divergence, ode_log_prob, time_grid
from genviz.train import Trainer
from genviz.views.layers import VectorField, arrays

CONTINUOUS = ["ddpm", "flow-matching", "cnf"]
SMALL = {"ddpm": {"hidden": 32}, "flow-matching": {"hidden": 32}, "cnf": {"hidden": (32, 32)}}


def test_rk4_likelihood_of_a_linear_flow_matches_the_gaussian() -> None:
    """dx/dt = A x carries N(0, I) at t = 0 to N(0, e^A e^Aᵀ) at t = 1."""
    a = torch.tensor([[0.3, -0.8], [0.5, -0.6]], dtype=torch.float64)
    x = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.5
    log_q = ode_log_prob(lambda z, t: z @ a.T, x, time_grid(0.0, 1.0, 16).double())
    m = torch.linalg.matrix_exp(a)
    expected = MultivariateNormal(torch.zeros(2, dtype=torch.float64), m @ m.T).log_prob(x)
    torch.testing.assert_close(log_q, expected, atol=1e-5, rtol=0)


def test_divergence_matches_autograd_on_a_random_mlp() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).double()
    field = lambda z, t: net(torch.cat([z, t.expand(len(z), 1)], 1))  # noqa: E731
    x, t = torch.randn(20, 2, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    v, div = field_and_divergence(field, x, t)
    expected = [torch.autograd.functional.jacobian(lambda p: field(p[None], t)[0], p).trace() for p in x]
    torch.testing.assert_close(v, field(x, t))
    torch.testing.assert_close(div, torch.stack(expected))


@pytest.mark.parametrize(("activation", "frequencies"), [("tanh", 0), ("softplus", 0), ("tanh", 3)])
def test_cnf_forward_mode_jacobian_matches_autograd(activation: str, frequencies: int) -> None:
    torch.manual_seed(1)
    field = VelocityField((16, 16), activation, frequencies).double()
    for p in field.time:  # time terms start at zero; make them matter
        torch.nn.init.normal_(p)
    x, t = torch.randn(10, 2, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64)
    v, jacobian = field.with_jacobian(x, t)
    for i, p in enumerate(x):  # autograd's [j, k] = ∂v_j/∂x_k; ours is [k, j]
        torch.testing.assert_close(
            jacobian[i], torch.autograd.functional.jacobian(lambda q: field(q[None], t)[0], p).T
        )
    torch.testing.assert_close(v, field(x, t))


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_schedules(schedule: str) -> None:
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    h = 1e-6
    finite_difference = -(log_alpha_bar(t + h, schedule) - log_alpha_bar(t - h, schedule)) / (2 * h)
    torch.testing.assert_close(beta(t, schedule), finite_difference, rtol=1e-6, atol=1e-6)
    assert float(log_alpha_bar(torch.tensor(0.0, dtype=torch.float64), schedule)) == pytest.approx(
        0, abs=1e-12
    )
    assert float(log_alpha_bar(torch.tensor(1.0, dtype=torch.float64), schedule)) == pytest.approx(
        -10, abs=0.06
    )
    d = discrete_schedule(20, schedule)
    torch.testing.assert_close(d["alpha_bar"][1:], torch.cumprod(d["alpha"][1:], 0))
    torch.testing.assert_close(d["beta"], 1 - d["alpha"])
    i = torch.arange(2, 21)
    expected = d["beta"][i] * (1 - d["alpha_bar"][i - 1]) / (1 - d["alpha_bar"][i])
    torch.testing.assert_close(d["beta_tilde"][i], expected)


def test_ddpm_bound_equals_the_trajectory_elbo() -> None:
    """The bound (closed-form KLs at random steps) against its definition,
    E_q[log p(x_{0:T}) − log q(x_{1:T} | x_0)], by sampling whole forward trajectories."""
    torch.manual_seed(2)
    model = DDPM(hidden=16, depth=1, frequencies=1, steps=10)
    torch.nn.init.normal_(model.eps.net[-1].weight, std=0.3)  # a network that is not zero
    model.fit_data(torch.randn(1000, 2))
    x0 = torch.tensor([[0.5, -1.0]]).expand(50_000, 2)
    with torch.no_grad():
        bound = model.variational_bound(x0)
        elbo = trajectory_elbo(model, model.standardize(x0)) + model.standardize.log_det()
    se = math.hypot(float(bound.std()), float(elbo.std())) / math.sqrt(len(x0))
    assert float(bound.mean()) == pytest.approx(float(elbo.mean()), abs=4 * se)


def trajectory_elbo(model: DDPM, x0: torch.Tensor) -> torch.Tensor:
    """log p(x_{0:T}) − log q(x_{1:T} | x_0) at one forward trajectory per point. x0: (n, 2) -> (n,)."""

    def normal(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        return -0.5 * (((x - mean) ** 2).sum(1) / var + 2 * torch.log(2 * math.pi * var))

    path, log_q = [x0], torch.zeros(len(x0))
    for i in range(1, model.steps + 1):
        mean = model.alpha[i].sqrt() * path[-1]
        path.append(mean + model.beta[i].sqrt() * torch.randn_like(x0))
        log_q = log_q + normal(path[-1], mean, model.beta[i])
    log_p = normal(path[-1], torch.zeros_like(x0), torch.tensor(1.0))
    for i in range(model.steps, 0, -1):
        variance = model.beta_tilde[i] if i > 1 else model.beta[1]  # the decoder's variance is β_1
        log_p = log_p + normal(path[i - 1], model.reverse_step(path[i], i, noise=False), variance)
    return log_p - log_q


def quick(name: str, steps: int) -> Trainer:
    trainer = Trainer(RunConfig(target="8gaussians", model=name, params=SMALL[name], steps=steps, n_test=500))
    trainer.train()
    return trainer


def log_q_with(model, x: torch.Tensor, steps: int) -> torch.Tensor:
    with torch.enable_grad():
        if hasattr(model, "ode_log_prob"):
            return model.ode_log_prob(x, steps=steps).detach()
        return model.log_prob(x, steps=steps).detach()


@pytest.mark.parametrize("name", CONTINUOUS)
def test_doubling_the_solver_steps_changes_log_q_little(name: str) -> None:
    """The reported density's solver has converged: twice the RK4 steps moves the mean held-out
    log q by under 0.01 nats, on a briefly trained model."""
    trainer = quick(name, 150 if name != "cnf" else 60)
    model, x = trainer.model, trainer.data.test
    steps = model.eval_steps if name == "cnf" else len(model.ode_times()) - 1
    coarse, fine = log_q_with(model, x, steps), log_q_with(model, x, 2 * steps)
    assert torch.isfinite(coarse).all()
    assert float(coarse.mean() - fine.mean()) == pytest.approx(0, abs=0.01)


@pytest.mark.parametrize("name", CONTINUOUS)
def test_views_are_finite_at_every_time(name: str) -> None:
    trainer = quick(name, 5)
    box = Box(-4, 4, -4, 4)
    for t in (0.0, 0.5, 1.0):
        view = trainer.model.view(ViewContext(box=box, data=trainer.data.test, controls={"t": t}, seed=0))
        assert view.layers
        for layer in view.layers:
            for field, values in arrays(layer).items():
                assert np.isfinite(values).all(), f"{layer.name} {field} at t = {t}"
        field = next(layer for layer in view.layers if isinstance(layer, VectorField))
        assert field.vectors.shape == (len(field.y), len(field.x), 2)
