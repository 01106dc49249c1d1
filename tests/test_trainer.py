"""The Trainer: reproducibility, budgets, schedules and the guard against non-finite values."""

from __future__ import annotations

import math

import pytest
import torch

from genviz.config import ConfigError, RunConfig
from genviz.data import DataSource
from genviz.models import MODELS
from genviz.models.base import GenerativeModel, ParameterGroup
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


def test_rollback_reports_the_rate_training_resumes_with() -> None:
    """On a short cosine budget the rate at the failed step and at the restored one differ a lot:
    the message must give the rate the next step takes (the restored step's, halved)."""
    steps = 2 * SNAPSHOT_EVERY
    trainer = Trainer(small_config(steps=steps, lr=1e-2))
    trainer.train(max_steps=2 * SNAPSHOT_EVERY - 2)  # snapshot at SNAPSHOT_EVERY, fail near the end
    real_loss = trainer.model.loss
    trainer.model.loss = lambda x: real_loss(x) * float("nan")
    trainer.train(max_steps=1)
    trainer.model.loss = real_loss
    (rollback,) = trainer.rollbacks
    assert rollback.step == 2 * SNAPSHOT_EVERY - 2 and rollback.restored_step == SNAPSHOT_EVERY
    cosine = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * SNAPSHOT_EVERY / steps))
    assert rollback.new_lr == pytest.approx(trainer.lr) == pytest.approx(1e-2 * 0.5 * cosine)
    assert f"{trainer.lr:.2e}" in rollback.message()
    trainer.train(max_steps=1)
    assert trainer.optimizers["model"].param_groups[0]["lr"] == pytest.approx(rollback.new_lr)


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


class TwoPlayers(GenerativeModel):
    """A toy two-group family: `a` is stepped twice per iteration at a tenth of the rate, then `b`.
    Its loss turns non-finite when `poison` is set, to exercise the rollback."""

    title, density_kind, branch = "two players", "exact", "explicit › test"
    learning_rate = 0.05

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(2))
        self.b = torch.nn.Parameter(torch.zeros(2))
        self.poison = False
        self.calls: list[str] = []

    def parameter_groups(self) -> dict[str, ParameterGroup]:
        return {"a": ParameterGroup([self.a], lr_factor=0.1), "b": ParameterGroup([self.b])}

    def train_step(self, batch, step) -> float:
        for _ in range(2):
            self.calls.append("a")
            step("a", (self.a - batch().mean(0)).square().sum())
        self.calls.append("b")
        loss = (self.b - batch().mean(0)).square().sum()
        return step("b", loss * math.inf if self.poison else loss)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.distributions.MultivariateNormal(self.b, torch.eye(2)).log_prob(x)


def test_parameter_groups_are_stepped_by_the_family(monkeypatch) -> None:
    monkeypatch.setitem(MODELS, "two-players", TwoPlayers)
    trainer = Trainer(RunConfig(target="gaussian", model="two-players", steps=30, n_test=500))
    assert trainer.lr == pytest.approx(0.05)  # the family's own rate when the run sets none
    a_rate = trainer.optimizers["a"].param_groups[0]
    trainer.train(max_steps=1)
    assert trainer.model.calls == ["a", "a", "b"]
    assert a_rate["lr"] == pytest.approx(0.1 * trainer.lr, rel=0.01)
    trainer.train(max_steps=29)
    model = trainer.model
    assert float(model.b.detach().norm()) > 3 * float(model.a.detach().norm()) > 0  # a moves 10× slower


def test_non_finite_family_step_rolls_back(monkeypatch) -> None:
    monkeypatch.setitem(MODELS, "two-players", TwoPlayers)
    trainer = Trainer(RunConfig(target="gaussian", model="two-players", steps=100, n_test=500))
    trainer.train(max_steps=SNAPSHOT_EVERY + 5)
    saved_b = trainer.model.b.detach().clone()
    trainer.model.poison = True
    trainer.train(max_steps=1)
    assert trainer.rollbacks and trainer.rollbacks[-1].what == "loss"
    assert trainer.step == SNAPSHOT_EVERY and torch.isfinite(trainer.model.b).all()
    assert not torch.equal(trainer.model.b.detach(), saved_b)  # back to the snapshot at step 25
