"""The Trainer: reproducibility, budgets, schedules and the guard against non-finite values."""

from __future__ import annotations

import math

import pytest
import torch

from genviz.config import ConfigError, RunConfig
from genviz.data import DataSource
from genviz.train import SNAPSHOT_EVERY, Trainer, resolve_device

SMALL = {"transforms": 1, "hidden": (16,)}


def small_config(**changes) -> RunConfig:
    return RunConfig(model="nsf", params=SMALL, n_test=1000, **changes)


def test_same_seed_same_numbers() -> None:
    runs = []
    for _ in range(2):
        trainer = Trainer(small_config(steps=30, seed=7))
        trainer.train()
        runs.append(trainer.record().row())
    assert runs[0] | {"seconds": 0} == runs[1] | {"seconds": 0}
    other = Trainer(small_config(steps=30, seed=8))
    other.train()
    assert other.record().nll.value != runs[0]["nll"]


def test_step_budget_and_history() -> None:
    trainer = Trainer(small_config(steps=12))
    assert trainer.train() == 12 and trainer.done
    assert trainer.train() == 0
    evaluation = trainer.record()
    assert evaluation.step == 12 and set(evaluation.row()) >= {
        "step",
        "seconds",
        "loss",
        "nll",
        "kl",
        "kl_se",
    }
    assert trainer.history == [evaluation]


def test_cosine_schedule_decays_over_the_budget() -> None:
    trainer = Trainer(small_config(steps=100, lr=1e-2))
    assert trainer.lr == pytest.approx(1e-2)
    trainer.train(max_steps=50)
    assert trainer.lr == pytest.approx(1e-2 * (0.02 + 0.98 * 0.5), rel=1e-6)
    assert Trainer(small_config(schedule="constant", steps=100)).lr == pytest.approx(3e-3)


def test_non_finite_loss_rolls_back_with_a_lower_learning_rate() -> None:
    trainer = Trainer(small_config(steps=200))
    trainer.train(max_steps=SNAPSHOT_EVERY + 5)
    real_loss = trainer.model.loss
    trainer.model.loss = lambda x: real_loss(x) * float("nan")
    lr_before = trainer.lr
    trainer.train(max_steps=1)
    trainer.model.loss = real_loss
    assert len(trainer.rollbacks) == 1
    rollback = trainer.rollbacks[0]
    assert rollback.restored_step == SNAPSHOT_EVERY and trainer.step == SNAPSHOT_EVERY
    assert trainer.lr < lr_before and "rolled back" in rollback.message()
    trainer.train(max_steps=10)
    assert math.isfinite(trainer.record().nll.value)


def test_non_finite_parameters_are_caught_and_undone() -> None:
    trainer = Trainer(small_config(steps=200))
    trainer.train(max_steps=SNAPSHOT_EVERY)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("inf"))
    trainer.train(max_steps=5)
    assert trainer.rollbacks and all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_persistent_divergence_stops_training_with_a_reason() -> None:
    trainer = Trainer(small_config(steps=200))
    trainer.model.loss = lambda x: torch.tensor(float("nan"), requires_grad=True)
    trainer.train(max_steps=50)
    assert trainer.done and trainer.stopped and "diverged" in trainer.stopped


def test_user_points_have_no_kl_but_an_nll() -> None:
    points = torch.randn(500, 2) * torch.tensor([2.0, 0.5])
    source = DataSource.from_points(points, torch.Generator().manual_seed(0))
    trainer = Trainer(small_config(steps=20).with_changes(target="data"), data=source)
    trainer.train()
    evaluation = trainer.record()
    assert evaluation.nll.kind == "exact" and evaluation.kl.value is None
    assert evaluation.entropy.kind == "unavailable"
    assert len(source.test) == 100 and trainer.kl_by_quadrature() is None


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
