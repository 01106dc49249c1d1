"""One contract test over every registered family: what pages, CLI and metrics rely on."""

from __future__ import annotations

import math

import pytest
import torch

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.metrics import density_log_prob, model_log_prob, private_samples
from genviz.models import MODELS, hyperparameters
from genviz.rundir import load_model, save_model
from genviz.targets import TARGETS
from genviz.train import Trainer

CONTRACT_TARGETS = ["8gaussians", "checkerboard"]
# Small but real configurations so the contract runs fast for every family.
SMALL = {"nsf": {"transforms": 2, "hidden": (32, 32)}, "maf": {"transforms": 2}, "realnvp": {"transforms": 2}}


SAMPLE_AS_DENSITY = {"ddpm": {"sampler": "ODE"}}  # its default sampler is a different model from log_prob
WIDE = Box(-8, 8, -8, 8)  # holds every trained model's mass on 8gaussians (whose box is ±4.5)
# Cells per side on WIDE: several per bin of a piecewise-constant density, fewer for an ODE solve per cell
RESOLUTION = {"ar-softmax": 480}


def trained(model: str, target: str, steps: int = 40, params: dict | None = None) -> Trainer:
    params = SMALL.get(model, {}) | (params or {})
    config = RunConfig(target=target, model=model, params=params, steps=steps, n_test=2000)
    trainer = Trainer(config)
    trainer.train()
    return trainer


@pytest.mark.parametrize("name", MODELS)
def test_family_declares_its_place(name: str) -> None:
    family = MODELS[name]
    assert family.density_kind in {"exact", "bound", "unnormalised", "ode", "none"}
    assert family.branch.startswith(("explicit", "implicit"))
    assert family.title
    for spec in hyperparameters(family):
        assert spec.check(spec.default) == spec.default, "defaults must pass their own validation"


@pytest.mark.parametrize("target", CONTRACT_TARGETS)
@pytest.mark.parametrize("name", MODELS)
def test_contract(name: str, target: str, tmp_path) -> None:
    trainer = trained(name, target)
    model = trainer.model
    x = trainer.data.test[:300]

    if model.density_kind != "none":
        log_q = model_log_prob(model, x)
        assert log_q.shape == (300,) and torch.isfinite(log_q).all()
    samples = model.sample(500)
    assert samples.shape == (500, 2) and torch.isfinite(samples).all() and not samples.requires_grad

    if model.trained_by == "gradient":
        model.zero_grad()
        model.loss(x).backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)

    save_model(tmp_path, trainer.config, model, trainer.data.box)
    _, reloaded, box = load_model(tmp_path)
    assert box == trainer.data.box
    if model.density_kind == "none":  # same state, same random stream: the same samples
        torch.testing.assert_close(private_samples(reloaded, 50, 1), private_samples(model, 50, 1))
    else:
        torch.testing.assert_close(model_log_prob(reloaded, x), model_log_prob(model, x))


@pytest.mark.parametrize("name", MODELS)
def test_every_number_is_labelled(name: str) -> None:
    """The labels follow the density kind: a bound says so, an ODE or sample-based number is an
    estimate with its method, and nothing claims to be exact unless the density is."""
    evaluation = trained(name, "8gaussians", steps=5).record()
    expected = {
        "exact": "exact",
        "unnormalised": "exact",
        "bound": "bound",
        "ode": "estimate",
        "none": "estimate",
    }
    kind = MODELS[name].density_kind
    assert evaluation.nll.kind == evaluation.kl.kind == expected[kind]
    assert math.isfinite(evaluation.nll.value) and math.isfinite(evaluation.kl.value)
    if kind in ("ode", "none", "unnormalised"):
        assert len(evaluation.kl.method) > len("Monte Carlo on 2,000 held-out points; ")
    for other in evaluation.others:
        assert other.kind in ("exact", "bound", "estimate") and other.method and math.isfinite(other.value)


NORMALISED = [n for n, f in MODELS.items() if f.density_kind in ("exact", "ode")]
WITH_DENSITY = [n for n, f in MODELS.items() if f.density_kind in ("exact", "ode", "unnormalised")]


@pytest.mark.parametrize("name", NORMALISED)
def test_density_integrates_to_one(name: str) -> None:
    model = trained(name, "8gaussians").model
    grid = WIDE.grid(RESOLUTION.get(name, 120))
    mass = grid.mass(model_log_prob(model, grid.points.float()))
    assert mass == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_samples_agree_with_log_prob(name: str) -> None:
    """E_q[log q] from the model's own samples equals ∫ q log q by quadrature. An energy model's
    density is normalised on the box, where its samples must then lie."""
    model = trained(name, "8gaussians", params=SAMPLE_AS_DENSITY.get(name)).model
    box = WIDE if model.density_kind != "unnormalised" else TARGETS["8gaussians"].box
    grid = box.grid(RESOLUTION.get(name, 120))
    log_q_grid = density_log_prob(model, grid.points.float(), box)
    by_quadrature = float((log_q_grid.exp() * log_q_grid).sum() * grid.cell_area)
    values = density_log_prob(model, model.sample(10_000), box)
    se = float(values.std()) / math.sqrt(len(values))
    assert float(values.mean()) == pytest.approx(by_quadrature, abs=4 * se + 0.02)


@pytest.mark.parametrize("name", MODELS)
def test_training_lowers_held_out_nll(name: str) -> None:
    config = RunConfig(target="8gaussians", model=name, params=SMALL.get(name, {}), steps=60, n_test=2000)
    trainer = Trainer(config)
    before = trainer.record().nll.value
    trainer.train()
    after = trainer.record().nll.value
    assert after < before
