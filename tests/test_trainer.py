"""The Trainer: reproducibility, budgets, schedules, the guard against non-finite values and the
best state a family may keep."""

from __future__ import annotations

import copy
import math
import queue
from dataclasses import replace

import pytest
import torch

from genviz.config import ConfigError, RunConfig
from genviz.data import DataSource
from genviz.engine import Snapshot
from genviz.limits import HostLimits
from genviz.models import MODELS
from genviz.models.base import GenerativeModel, ParameterGroup
from genviz.rundir import export_run, import_run
from genviz.train import KEEP_MARGIN, SNAPSHOT_EVERY, Evaluation, Trainer, resolve_device
from genviz.worker import Worker

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


# ------------------------------------------------------------------ best state

EBM_SMALL = {"hidden": (32, 32), "chains": 128}


def set_back(trainer: Trainer, best_at: int) -> tuple[Evaluation, dict[str, torch.Tensor]]:
    """Train to `best_at` and evaluate; then a setback training cannot undo at a tiny rate (random
    weights added to every parameter), and training on to the budget. -> (the evaluation at
    `best_at`, the state it evaluated)."""
    trainer.train(max_steps=best_at)
    best = trainer.record()
    state = copy.deepcopy(trainer.model.state_dict())
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(torch.randn(p.shape, generator=generator))
    trainer.config = trainer.config.with_changes(lr=1e-5)
    trainer.train()
    return best, state


def test_best_state_is_brought_back_when_training_ends_worse() -> None:
    """An energy model keeps its best state: the run ends worse, so the best state comes back, with
    the same parameters and the same NLL; the history keeps what training did, then the kept state."""
    trainer = Trainer(RunConfig(target="moons", model="ebm", params=EBM_SMALL, steps=40, n_test=1000))
    best, state = set_back(trainer, 20)
    kept = trainer.record()
    worse = trainer.history[-2]
    assert (worse.step, worse.kept_from) == (40, None) and worse.nll.value > best.nll.value + KEEP_MARGIN
    assert trainer.history[-1] is kept and (kept.step, kept.kept_from) == (40, 20)
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert kept.nll.value == pytest.approx(best.nll.value, abs=1e-9)
    assert kept.kl.value == pytest.approx(best.kl.value, abs=1e-9)
    assert "the state of step 20, kept as the best" in kept.nll.method and kept.row()["kept_from"] == 20
    note = trainer.best_note()
    assert note.startswith(f"best state kept: step 20, KL {best.kl.value:.3f}; training since made it worse")
    assert f"KL {worse.kl.value:.3f} at step 40" in note
    again = trainer.record()  # the same state again: labelled as kept, nothing more brought back
    assert again.kept_from == 20 and again.nll.value == pytest.approx(best.nll.value, abs=1e-9)
    assert trainer.best_note() == note


def test_best_state_so_far_is_reported_while_training() -> None:
    trainer = Trainer(RunConfig(target="moons", model="ebm", params=EBM_SMALL, steps=40, n_test=1000))
    best, _ = set_back(trainer, 20)
    trainer.config = trainer.config.with_changes(steps=60)  # not over: reported, not brought back
    now = trainer.record()
    assert now.kept_from is None and not trainer.done
    assert trainer.best_note().startswith(f"best state so far: step 20, KL {best.kl.value:.3f} (now KL")


def test_a_family_that_does_not_keep_its_best_state_ends_as_trained() -> None:
    trainer = Trainer(small_config(steps=40))
    best, state = set_back(trainer, 20)
    last = trainer.record()
    assert last.kept_from is None and last.nll.value > best.nll.value + KEEP_MARGIN
    assert trainer.best_note() is None
    name, value = next(trainer.model.named_parameters())
    assert not torch.equal(value, state[name])


def test_kept_state_survives_export_and_resume() -> None:
    """The model file holds the kept state and the history; resumed, it says so and trains on."""
    trainer = Trainer(RunConfig(target="moons", model="ebm", params=EBM_SMALL, steps=40, n_test=1000))
    set_back(trainer, 20)
    kept = trainer.record()
    resumed = import_run(export_run(trainer))
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[name]), name
    assert [e.row() for e in resumed.history] == [e.row() for e in trainer.history]
    assert resumed.best_note() == trainer.best_note()
    assert resumed.record().nll.value == pytest.approx(kept.nll.value, abs=1e-9)
    resumed.config = resumed.config.with_changes(steps=50)
    assert resumed.train() == 10 and math.isfinite(resumed.record().nll.value)


def test_a_best_figure_not_confirmed_in_full_brings_nothing_back() -> None:
    """A best held-out figure from a live evaluation (a subset, a coarser grid) is checked in full
    before its state comes back: here the 'best' state is the current one, so nothing changes."""
    trainer = Trainer(RunConfig(target="moons", model="ebm", params=EBM_SMALL, steps=20, n_test=1000))
    trainer.train()
    live = trainer.record(live=True)
    flattering = replace(live.nll, value=live.nll.value - 1.0)
    trainer._best = replace(live, nll=flattering), trainer._take_snapshot()
    state = copy.deepcopy(trainer.model.state_dict())
    last = trainer.record()
    assert trainer.history[-1] is last and last.kept_from is None and trainer.best_note() is None
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_the_page_hears_which_state_it_shows() -> None:
    """Through the worker: training has reached its budget worse than its best, the paused model's
    full evaluation brings the best back, and the page's snapshot carries the kept evaluation and
    the note that says so."""
    outbox: queue.SimpleQueue = queue.SimpleQueue()
    worker = Worker(outbox, HostLimits())
    config = RunConfig(target="moons", model="ebm", params=EBM_SMALL, steps=40, n_test=1000)
    worker.handle(("build", "page", 1, (config, None, None)))
    best, _ = set_back(worker.runs["page"].trainer, 20)
    worker.handle(("run", "page", 2, (True,)))  # at its budget: it stays paused, evaluated in full
    while worker.busy:
        worker.work()
    snapshot = Snapshot()
    while not outbox.empty():
        snapshot = snapshot.merged(outbox.get_nowait(), None)
    assert [(e.step, e.kept_from) for e in snapshot.history] == [(0, None), (20, None), (40, None), (40, 20)]
    assert snapshot.history[-1].nll.value == pytest.approx(best.nll.value, abs=1e-9)
    assert snapshot.best_note.startswith(f"best state kept: step 20, KL {best.kl.value:.3f}")
    assert snapshot.done and not snapshot.running and snapshot.density.step == 40
