"""Forward against reverse KL: the objective in the configuration, reparameterised samples, targets
whose density a model can be fitted to, the labelled KL(q ‖ p) against closed forms, and the mode
seeking of a reverse-KL fit."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from genviz import cli
from genviz.config import ConfigError, RunConfig, parse_assignment
from genviz.metrics import REVERSE_KL, kl_reverse
from genviz.models import MODELS
from genviz.models.gaussian import raw_from_lower
from genviz.targets import REVERSE_KL_TARGETS, TARGETS
from genviz.train import Trainer, reverse_kl_loss

REPARAMETERISED = [name for name, family in MODELS.items() if family.reparameterised]
TINY = {"transforms": 1, "hidden": (16, 16)}
SMALL = {"nsf": TINY, "maf": TINY, "realnvp": TINY, "gmm": {"fit": "gradient", "components": 3}}


def built(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = MODELS[name](**SMALL.get(name, {}))
    model.fit_data(torch.randn(512, 2) * 2)
    return model


# ------------------------------------------------------------------ configuration


def test_the_offered_pairs() -> None:
    assert REPARAMETERISED == ["nsf", "maf", "realnvp", "gmm", "gaussian"]
    assert set(REVERSE_KL_TARGETS) == {"8gaussians", "25gaussians", "2gaussians", "U1", "U2", "U3", "U4"}


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"target": "moons"}, "known, differentiable log density, not moons: use one of 8gaussians"),
        ({"target": "checkerboard", "model": "gaussian"}, "not checkerboard"),
        ({"model": "kde"}, "cannot train kde (it cannot draw reparameterised samples"),
        ({"model": "gmm"}, "set fit=gradient); it trains nsf, maf, realnvp, gmm (fit=gradient), gaussian"),
        ({"objective": "sideways-kl"}, "objective must be one of forward-kl, reverse-kl"),
    ],
)
def test_reverse_kl_refuses_what_it_cannot_train_in_one_line(changes: dict, said: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        RunConfig(**{"objective": "reverse-kl", **changes})
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_the_objective_travels_through_dicts_links_and_set() -> None:
    config = RunConfig(target="U2", model="gmm", params={"fit": "gradient"}, objective="reverse-kl")
    assert RunConfig.from_dict(json.loads(config.to_json())) == config
    assert config.to_query()["objective"] == "reverse-kl"
    assert RunConfig.from_query(config.to_query()) == config
    assert "objective" not in RunConfig().to_query()  # the default leaves old links as they were
    assert parse_assignment(RunConfig(target="U1"), "objective=reverse-kl").objective == "reverse-kl"
    with pytest.raises(ConfigError, match="not moons"):
        RunConfig.from_query({"target": "moons", "objective": "reverse-kl"})


# ------------------------------------------------------------------ families


@pytest.mark.parametrize("name", REPARAMETERISED)
def test_reparameterised_samples_carry_their_log_q_and_gradients(name: str) -> None:
    model = built(name)
    draw = model.rsample_with_log_prob(60)
    assert draw.x.shape == (len(draw.log_q), 2) and draw.weights.shape == draw.log_q.shape
    weights = draw.weights.detach()
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-5) and bool((weights > 0).all())
    assert torch.allclose(draw.log_q, model.log_prob(draw.x), atol=1e-3)
    (draw.weights * (draw.x.sum(1) + draw.log_q)).sum().backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trained), name
    assert any(float(p.grad.abs().sum()) > 0 for p in trained)


def test_the_mixture_estimate_is_unbiased_with_gradients_for_the_weights() -> None:
    """Σ_i w_i f(x_i) over every component's samples estimates E_q[f]: for f(x) = x it is the mixture
    mean, and its gradient reaches the mixture logits."""
    model = built("gmm")
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
    exact = (model.logits.softmax(0)[:, None] * model.means).sum(0)
    draw = model.rsample_with_log_prob(60_000)
    estimate = (draw.weights[:, None] * draw.x).sum(0)
    assert torch.allclose(estimate, exact, atol=0.03)
    estimate.sum().backward()
    assert float(model.logits.grad.abs().sum()) > 0


# ------------------------------------------------------------------ targets


@pytest.mark.parametrize("name", REVERSE_KL_TARGETS)
def test_offered_targets_are_differentiable_and_finite_where_samples_land(name: str) -> None:
    target = TARGETS[name]
    inside = target.sample(200, torch.Generator().manual_seed(0)).double().requires_grad_()
    log_p = target.reverse_kl_log_prob(inside)
    assert torch.allclose(log_p, target.log_prob(inside))  # the training loss's log p is p's inside
    (grad,) = torch.autograd.grad(log_p.sum(), inside)
    step = 1e-5  # central differences agree with autograd
    shift = torch.tensor([step, 0.0], dtype=torch.float64)
    numeric = (target.log_prob(inside + shift) - target.log_prob(inside - shift)) / (2 * step)
    assert torch.allclose(grad[:, 0], numeric.detach(), rtol=1e-4, atol=1e-4)
    far = torch.tensor([[40.0, -40.0], [-300.0, 7.0], [1e4, 1e4], [0.0, 6.0]], dtype=torch.float64)
    far.requires_grad_()
    log_p_far = target.reverse_kl_log_prob(far)
    (grad_far,) = torch.autograd.grad(log_p_far.sum(), far)
    assert torch.isfinite(log_p_far).all() and torch.isfinite(grad_far).all(), name
    if target.bounded:  # outside the box the gradient points back towards it
        assert float((grad_far[:3] * far[:3].detach()).sum(1).max()) < 0


# ------------------------------------------------------------------ the metric


def gaussian_model(mean: list[float], cov: list[list[float]]) -> torch.nn.Module:
    model = MODELS["gaussian"]()
    with torch.no_grad():
        model.mean.copy_(torch.tensor(mean))
        model.tril_raw.copy_(raw_from_lower(torch.linalg.cholesky(torch.tensor(cov))))
    return model


def test_reverse_kl_matches_the_gaussian_closed_form() -> None:
    target = TARGETS["gaussian"]  # N((0.5, −0.5), Σ) with correlation 0.8
    model = gaussian_model([0.0, 0.0], [[1.5, 0.2], [0.2, 0.5]])
    result = kl_reverse(model, target, 40_000, seed=3)
    p = MultivariateNormal(target.dist.loc.float(), target.dist.covariance_matrix.float())
    exact = float(kl_divergence(model.distribution(), p).detach())
    assert (
        result.name == REVERSE_KL and result.kind == "exact" and "40,000 fresh samples of q" in result.method
    )
    assert abs(result.value - exact) < 4 * result.se + 1e-3, (result.value, exact, result.se)


def test_reverse_kl_on_a_boxed_target_is_that_of_q_restricted_to_the_box() -> None:
    """U1 is zero outside its box, where the unrestricted KL(q ‖ p) is infinite: the label says so."""
    model = gaussian_model([0.0, 0.0], [[9.0, 0.0], [0.0, 9.0]])  # much of its mass outside [−4, 4]²
    result = kl_reverse(model, TARGETS["U1"], 20_000, seed=0)
    assert math.isfinite(result.value) and result.se > 0
    assert "restricted to where p > 0" in result.method and "infinite" in result.method
    # the same number by hand: E_q[log q − log p | inside] − log Q(inside)
    x = model.sample(200_000).double()
    log_p = TARGETS["U1"].log_prob(x)
    inside = torch.isfinite(log_p)
    with torch.no_grad():
        log_q = model.log_prob(x.float()).double()
    by_hand = float((log_q[inside] - log_p[inside]).mean() - inside.double().mean().log())
    assert abs(result.value - by_hand) < 4 * result.se + 0.01


def test_reverse_kl_is_unavailable_without_an_exact_density() -> None:
    torch.manual_seed(0)
    result = kl_reverse(MODELS["gan"](), TARGETS["8gaussians"], 100, seed=0)
    assert result.value is None and result.kind == "unavailable" and "density is none" in result.method
    assert kl_reverse(built("gaussian"), None, 100, seed=0).kind == "unavailable"


# ------------------------------------------------------------------ training


def fit(objective: str, seed: int = 0) -> Trainer:
    config = RunConfig(target="2gaussians", model="gaussian", objective=objective, steps=400, lr=0.05,
                       batch_size=256, n_test=4000, seed=seed)  # fmt: skip
    trainer = Trainer(config)
    trainer.train()
    trainer.record()
    return trainer


@pytest.fixture(scope="module")
def fits() -> dict[str, Trainer]:
    return {objective: fit(objective) for objective in ("forward-kl", "reverse-kl")}


def test_a_reverse_kl_fit_seeks_a_mode_and_a_forward_fit_covers_both(fits: dict[str, Trainer]) -> None:
    """On two far-apart Gaussians (weights 2/3, 1/3) a single Gaussian fitted by maximum likelihood
    straddles both modes; fitted by the reverse KL it sits on the heavier one, where KL(q‖p) = −log 2/3."""
    forward, reverse = (fits[o].history[-1] for o in ("forward-kl", "reverse-kl"))
    assert reverse.kl.value > 5 * forward.kl.value  # missing a mode costs the forward KL dearly
    assert reverse.reverse_kl.value < forward.reverse_kl.value / 5  # covering the gap costs the reverse KL
    assert reverse.reverse_kl.value == pytest.approx(-math.log(2 / 3), abs=0.02)
    assert fits["reverse-kl"].model.mean.detach()[0].item() == pytest.approx(-2.0, abs=0.1)
    for evaluation in (forward, reverse):
        assert evaluation.kl.kind == evaluation.reverse_kl.kind == "exact"
        assert evaluation.kl.value > 0 and evaluation.reverse_kl.value > 0


def test_the_reverse_loss_is_the_reverse_kl(fits: dict[str, Trainer]) -> None:
    trainer = fits["reverse-kl"]
    with torch.no_grad():
        torch.manual_seed(1)
        loss = float(reverse_kl_loss(trainer.model, trainer.data.target, 20_000))
    assert loss == pytest.approx(trainer.history[-1].reverse_kl.value, abs=0.02)


def test_the_reverse_fit_survives_samples_far_outside_a_boxed_target() -> None:
    params = {"fit": "gradient", "components": 4}
    config = RunConfig(
        target="U3", model="gmm", params=params, steps=60, lr=0.05, objective="reverse-kl", n_test=500
    )
    trainer = Trainer(config)
    with torch.no_grad():
        trainer.model.means.mul_(5)  # the samples start far outside [−4, 4]²
    start = trainer.model.means.detach().abs().max().item()
    trainer.train()
    assert trainer.step == 60 and not trainer.rollbacks
    assert trainer.model.means.detach().abs().max().item() < start - 1  # pulled back towards the box
    result = trainer.record().reverse_kl
    assert (result.value is not None and math.isfinite(result.value)) or "fell where p = 0" in result.method


def test_command_line_writes_both_divergences(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--target", "2gaussians", "--model", "gmm", "--objective", "reverse-kl"]
    args += ["--set", "fit=gradient", "--set", "components=2", "--set", "n_test=500"]
    args += ["--steps", "20", "--out", str(out)]
    with redirect_stdout(io.StringIO()) as printed, redirect_stderr(io.StringIO()):
        assert cli.main(args) == 0
    assert "KL(q‖p) = " in printed.getvalue()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["objective"] == "reverse-kl" and metrics["config"]["objective"] == "reverse-kl"
    assert metrics["kl_kind"] == metrics["reverse_kl_kind"] == "exact"
    assert "held-out" in metrics["kl_method"] and "fresh samples of q" in metrics["reverse_kl_method"]
    assert metrics["reverse_kl"] > 0 and "reverse_kl" in metrics["history"][-1]


def test_command_line_refuses_a_pair_in_one_line(tmp_path: Path) -> None:
    with redirect_stderr(io.StringIO()) as said:
        status = cli.main(["train", "--target", "moons", "--objective", "reverse-kl", "--out", str(tmp_path)])
    assert status == 2 and said.getvalue().count("\n") == 1 and "use one of 8gaussians" in said.getvalue()
