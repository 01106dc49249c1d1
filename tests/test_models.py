"""One contract test over every registered family: what pages, CLI and metrics rely on."""

from __future__ import annotations

import math

import pytest
import torch

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.metrics import model_log_prob
from genviz.models import MODELS, hyperparameters
from genviz.persist import load_model, save_model
from genviz.train import Trainer

CONTRACT_TARGETS = ["8gaussians", "checkerboard"]
# Small but real configurations so the contract runs fast for every family.
SMALL = {"nsf": {"transforms": 2, "hidden": (32, 32)}, "maf": {"transforms": 2}, "realnvp": {"transforms": 2}}


def trained(model: str, target: str, steps: int = 40) -> Trainer:
    config = RunConfig(target=target, model=model, params=SMALL.get(model, {}), steps=steps, n_test=2000)
    trainer = Trainer(config)
    trainer.train()
    return trainer


@pytest.mark.parametrize("name", MODELS)
def test_family_declares_its_place(name: str) -> None:
    family = MODELS[name]
    assert family.density_kind in {"exact", "bound", "unnormalised", "none"}
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

    log_q = model.log_prob(x)
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
    torch.testing.assert_close(model_log_prob(reloaded, x), model_log_prob(model, x))


@pytest.mark.parametrize("name", [n for n, f in MODELS.items() if f.density_kind == "exact"])
def test_exact_density_integrates_to_one(name: str) -> None:
    model = trained(name, "8gaussians").model
    grid = Box(-12, 12, -12, 12).grid(240)
    mass = grid.mass(model_log_prob(model, grid.points.float()))
    assert mass == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", [n for n, f in MODELS.items() if f.density_kind == "exact"])
def test_samples_agree_with_log_prob(name: str) -> None:
    """E_q[log q] from the model's own samples equals ∫ q log q by quadrature."""
    model = trained(name, "8gaussians").model
    grid = Box(-12, 12, -12, 12).grid(240)
    log_q_grid = model_log_prob(model, grid.points.float())
    by_quadrature = float((log_q_grid.exp() * log_q_grid).sum() * grid.cell_area)
    values = model_log_prob(model, model.sample(10_000))
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
