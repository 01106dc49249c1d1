"""The Trainer: one object that steps any model on any data, for the page, the CLI and benchmarks.

trainer = Trainer(RunConfig(target="moons", model="nsf", seconds=30))
while not trainer.done:
    trainer.train(max_seconds=1.0)
    print(trainer.record().kl.text())
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from genviz.config import ConfigError, RunConfig
from genviz.cost import live_resolution, plan_evaluation, profile_of
from genviz.data import DataSource, config_target, log_prob_grid
from genviz.estimators import binned_kde, kde_method
from genviz.grid import DEFAULT_RESOLUTION, Grid
from genviz.lesson import LikelihoodProduct, likelihood_products
from genviz.metrics import (
    KDE_SAMPLES,
    REVERSE_KL_SAMPLES,
    Result,
    density_log_prob,
    entropy_result,
    held_out_nll,
    kl_monte_carlo,
    kl_quadrature,
    kl_reverse,
    log_q_at,
    other_nlls,
    private_samples,
    reverse_kl_unavailable,
)
from genviz.models import MODELS, GenerativeModel
from genviz.models.kinds import DENSITY_KINDS
from genviz.targets import Target

SNAPSHOT_EVERY = 25  # steps between saved good states for rollback
LR_CUT = 0.5  # learning-rate factor after each rollback
MAX_ROLLBACKS = 12  # after this many, training stops and says it diverged
MIN_LR_FACTOR = 0.02  # the cosine schedule decays to this fraction of the base rate
INIT_POINTS = 4096  # points given to `fit_data`
GRAD_CLIP = 1e3  # a guard against a blow-up, not a regulariser: well above normal gradient norms
# Nats of held-out NLL by which an evaluation at the end of training may trail the best before a family
# that keeps its best state (`keeps_best`) goes back to it; well under the noise of one training run.
KEEP_MARGIN = 0.02
State = tuple[int, dict, dict]  # a step, the model's state dict, the optimisers' state dicts


def resolve_device(choice: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cuda' without a GPU is a user error."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for, but no CUDA GPU is available here")
    return torch.device(choice)


@dataclass(frozen=True)
class Evaluation:
    """One point of the learning curve: labelled metrics at a step."""

    step: int
    seconds: float
    loss: float | None  # mean training loss since the previous evaluation
    lr: float
    nll: Result
    kl: Result
    entropy: Result
    others: tuple[Result, ...] = ()  # further NLLs a family reports (an ELBO, an IWAE bound)
    live: bool = False  # made while training, on subsets of a costly family's points (see the methods)
    reverse_kl: Result | None = None  # KL(q ‖ p) over fresh samples of q, where it is computable
    # Π q(xᵢ) in float32 and float64 beside Σ log q(xᵢ) over the first held-out points (the Theory page)
    products: tuple[LikelihoodProduct, ...] = ()
    kept_from: int | None = None  # this evaluates the state of that step, brought back as the best

    def row(self) -> dict[str, float | int | None]:
        row: dict[str, float | int | None] = {
            "step": self.step,
            "seconds": round(self.seconds, 4),
            "loss": self.loss,
            "lr": self.lr,
            "nll": self.nll.value,
            "nll_se": self.nll.se,
            "kl": self.kl.value,
            "kl_se": self.kl.se,
        }
        # a sample-based estimator's calibrated error: the curves draw it as a band beside the ±2·se
        if self.nll.error is not None:
            row["nll_error"] = self.nll.error
        if self.kl.error is not None:
            row["kl_error"] = self.kl.error
        if self.reverse_kl is not None:
            row |= {"reverse_kl": self.reverse_kl.value, "reverse_kl_se": self.reverse_kl.se}
        if self.kept_from is not None:
            row["kept_from"] = self.kept_from
        # e.g. "NLL via ELBO (bound)": the plots draw every key that starts with "NLL via"
        return row | {f"{other.name} ({other.kind})": other.value for other in self.others}


@dataclass(frozen=True)
class Rollback:
    """A non-finite value was caught at `step`; the model went back to `restored_step`."""

    step: int
    restored_step: int
    what: str
    new_lr: float

    def message(self) -> str:
        return (
            f"step {self.step}: non-finite {self.what}; rolled back to step "
            f"{self.restored_step} and lowered the learning rate to {self.new_lr:.2e}"
        )


class Trainer:
    def __init__(self, config: RunConfig, data: DataSource | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.generator = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)  # model initialisation and model-side noise
        if data is None:
            target = config_target(config)  # a registry target or a typed density
            if target is None:
                raise ConfigError(f"target {config.target!r} needs its points: pass a DataSource")
            data = DataSource.from_target(target, config.n_test, self.generator)
        self.data = data
        self.model: GenerativeModel = MODELS[config.model](**config.model_kwargs()).to(self.device)
        self.model.fit_data(self._init_points().to(self.device))
        self.optimizers = make_optimizers(self.model)
        self.step = 0
        self.train_seconds = 0.0
        self.lr_scale = 1.0
        self.history: list[Evaluation] = []
        self.rollbacks: list[Rollback] = []
        self.stopped: str | None = None  # why training cannot go on, if it cannot
        self._loss_sum, self._loss_count = 0.0, 0
        self._snapshot = self._take_snapshot()
        self._best: tuple[Evaluation, State] | None = None  # for `keeps_best`: its evaluation and state

    # ------------------------------------------------------------------ budget
    @property
    def progress(self) -> float:
        """Fraction of the step or time budget used (0 when there is none)."""
        parts = [0.0]
        if self.config.steps:
            parts.append(self.step / self.config.steps)
        if self.config.seconds:
            parts.append(self.train_seconds / self.config.seconds)
        return min(1.0, max(parts))

    @property
    def done(self) -> bool:
        if self.stopped is not None:
            return True
        out_of_steps = self.config.steps is not None and self.step >= self.config.steps
        out_of_time = self.config.seconds is not None and self.train_seconds >= self.config.seconds
        return out_of_steps or out_of_time

    @property
    def lr(self) -> float:
        factor = 1.0
        if self.config.schedule == "cosine":
            factor = MIN_LR_FACTOR + (1 - MIN_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * self.progress))
        return self.config.learning_rate * self.lr_scale * factor

    # ---------------------------------------------------------------- training
    def train(
        self,
        max_steps: int | None = None,
        max_seconds: float | None = None,
        interrupt: Callable[[], bool] | None = None,
    ) -> int:
        """Train until the budget, `max_steps` or `max_seconds` (wall) runs out, or until `interrupt()`
        (asked before each step) is true; returns steps taken."""
        start, taken = time.perf_counter(), 0
        while not self.done and (max_steps is None or taken < max_steps):
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                break
            if interrupt is not None and interrupt():
                break
            t0 = time.perf_counter()
            self._one_step()
            self.train_seconds += time.perf_counter() - t0
            taken += 1
        return taken

    def _init_points(self) -> torch.Tensor:
        """Points for `fit_data`: training data; for the reverse KL, which never sees samples of p,
        points spread uniformly over the box (the plotting window is all it knows besides log p)."""
        if self.config.objective != "reverse-kl":
            return self.data.batch(INIT_POINTS, self.generator)
        box = self.data.box
        low, high = torch.tensor([box.xmin, box.ymin]), torch.tensor([box.xmax, box.ymax])
        return low + torch.rand(INIT_POINTS, 2, generator=self.generator) * (high - low)

    def _one_step(self) -> None:
        if self.config.objective == "reverse-kl":
            target = self.data.target
            return self._gradient_step(lambda: reverse_kl_loss(self.model, target, self.config.batch_size))
        if self.model.trained_by == "update":
            return self._update_step()
        self._gradient_step(lambda: self.model.train_step(self._batch, self._step_group))

    def _gradient_step(self, take: Callable[[], float | torch.Tensor]) -> None:
        """One gradient step: `take` returns the loss it stepped on, or a loss to step on here."""
        try:
            loss = take()
            if isinstance(loss, torch.Tensor):
                loss = self._step_group("model", loss)
        except NonFinite as problem:
            return self._roll_back(problem.what)
        if not math.isfinite(loss):
            return self._roll_back("loss")
        self._finish_step(loss)

    def _batch(self) -> torch.Tensor:
        """A fresh training batch on the model's device."""
        return self.data.batch(self.config.batch_size, self.generator).to(self.device)

    def _step_group(self, name: str, loss: torch.Tensor) -> float:
        """Backpropagate `loss` and step the optimizer of parameter group `name`."""
        if not torch.isfinite(loss):
            raise NonFinite("loss")
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, GRAD_CLIP)
        if not torch.isfinite(grad_norm):
            raise NonFinite("gradient")
        for group in optimizer.param_groups:
            group["lr"] = self.lr * group["lr_factor"]
        optimizer.step()
        return float(loss.detach())

    def _update_step(self) -> None:
        """A non-gradient step (an EM iteration, a KDE taking points) on the batch the model asks for."""
        size = max(self.config.batch_size, self.model.update_batch_size)
        loss = self.model.update(self.data.batch(size, self.generator).to(self.device))
        if not math.isfinite(loss):
            return self._roll_back("loss")
        self._finish_step(loss)

    def _finish_step(self, loss: float) -> None:
        self.step += 1
        self._loss_sum += loss
        self._loss_count += 1
        if self.step % SNAPSHOT_EVERY == 0 and self._parameters_finite():
            self._snapshot = self._take_snapshot()

    def _parameters_finite(self) -> bool:
        return all(
            bool(torch.isfinite(t).all()) for t in self.model.state_dict().values() if t.is_floating_point()
        )

    def _take_snapshot(self) -> State:
        optimizer_states = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        return self.step, copy.deepcopy(self.model.state_dict()), copy.deepcopy(optimizer_states)

    def _load_snapshot(self, snapshot: State) -> None:
        """The model and the optimisers as they were in `snapshot` (which stays usable again)."""
        _, model_state, optimizer_states = snapshot
        load_state(self.model, model_state)  # copies the values in
        for name, state in copy.deepcopy(optimizer_states).items():
            self.optimizers[name].load_state_dict(state)

    def _roll_back(self, what: str) -> None:
        step = self._snapshot[0]
        self._load_snapshot(self._snapshot)
        self.lr_scale *= LR_CUT
        failed_at, self.step = self.step, step  # the rate after a rollback is the restored step's
        self.rollbacks.append(Rollback(failed_at, step, what, self.lr))
        if len(self.rollbacks) >= MAX_ROLLBACKS:
            count = len(self.rollbacks)
            self.stopped = f"training diverged: {count} non-finite steps despite lowering the learning rate"

    # -------------------------------------------------------------- evaluation
    def record(self, live: bool = False) -> Evaluation:
        """Evaluate on the held-out points and append to the history.

        `live`: the cheaper evaluation for a page that is training. A family whose evaluation is
        costly (a KDE of many centres, an ODE likelihood, an IWAE bound of many draws, a GSN's chains,
        a k-NN estimate) uses subsets sized to take about `cost.LIVE_SECONDS`, and every method says
        so ("… on 2,000 of 10,000 held-out points while training"); other families evaluate in full.
        The default is the full evaluation, for a paused page, the command line and benchmarks.

        A family that keeps its best state (`keeps_best`) has the state of its best held-out NLL
        copied; an evaluation made once training is over (the budget spent, or stopped) that is worse
        than that by more than KEEP_MARGIN brings the best state back, and its evaluation, labelled
        with the step it is from, follows in the history. Returns the evaluation of the model the
        Trainer holds afterwards: the last entry of the history."""
        loss = self._loss_sum / self._loss_count if self._loss_count else None
        self._loss_sum, self._loss_count = 0.0, 0
        evaluation = self._evaluate(live, loss, self._kept_from())
        self.history.append(evaluation)
        return self._keep_best(evaluation) if keeps_best(self.model) else evaluation

    def _evaluate(self, live: bool, loss: float | None, kept_from: int | None) -> Evaluation:
        """The held-out metrics of the model as it is now (see `record`), labelled as the state kept
        from step `kept_from` when it is one."""
        full = plan_evaluation(self.model, len(self.data.test))
        plan = plan_evaluation(self.model, len(self.data.test), live=True) if live else full
        test, log_p = self._held_out(plan.points)
        seed = self.config.seed + self.step
        log_q = log_q_at(self.model, test, self.data.box, seed, plan.samples, plan.partition)
        of, other_of = full.points, full.other_points
        entropy = entropy_result(self.data.target)
        evaluation = Evaluation(
            self.step,
            self.train_seconds,
            loss,
            self.lr,
            held_out_nll(log_q, of, entropy.value),
            kl_monte_carlo(log_p, log_q, self.data.target, of),
            entropy,
            other_nlls(self.model, test[: plan.other_points], other_of),
            live,
            self._reverse_kl(min(plan.points, REVERSE_KL_SAMPLES), seed),
            products=likelihood_products(log_q.values),
        )
        return evaluation if kept_from is None else kept_evaluation(evaluation, kept_from)

    # -------------------------------------------------------------- best state
    def _keep_best(self, evaluation: Evaluation) -> Evaluation:
        """Copy the state when its held-out NLL is the best yet; when training is over and this
        evaluation trails the best by more than KEEP_MARGIN, bring the best back (see `record`)."""
        if evaluation.kept_from is not None:
            return evaluation
        if self._best is None or _nll(evaluation) < _nll(self._best[0]):
            self._best = evaluation, self._take_snapshot()
        elif self.done and _nll(evaluation) > _nll(self._best[0]) + KEEP_MARGIN:
            return self._restore_best(evaluation)
        return evaluation

    def _restore_best(self, last: Evaluation) -> Evaluation:
        """The best state's model and optimisers, evaluated again in full. Still better than `last` by
        more than KEEP_MARGIN, it stays, labelled as kept, and becomes the rollback point; the step,
        the schedule and the history stay as training left them. Otherwise (its figure was a live
        one, on a subset or a coarser grid) the state `last` evaluated comes back as the best."""
        (best, snapshot), current = self._best, self._take_snapshot()
        self._load_snapshot(snapshot)
        kept = self._evaluate(live=False, loss=None, kept_from=best.step)
        if not _nll(kept) < _nll(last) - KEEP_MARGIN:
            self._load_snapshot(current)
            self._best = last, current
            return last
        self._snapshot = self._take_snapshot()
        self.history.append(kept)
        return kept

    def _kept_from(self) -> int | None:
        """The step of the best state brought back, while the model is still that state: the last
        evaluation is of it, at this step (no step taken since; a resumed model file included)."""
        last = self.history[-1] if self.history else None
        return last.kept_from if last is not None and last.step == self.step else None

    def best_note(self) -> str | None:
        """One line for the page about the best state, when it matters: brought back at the end of
        training, or better than the latest evaluation by more than KEEP_MARGIN; else None."""
        if not self.history:
            return None
        last = self.history[-1]
        worse = next((e for e in reversed(self.history) if e.kept_from is None), None)
        if last.kept_from is not None and worse is not None:  # `worse` brought the best state back
            return (
                f"best state kept: step {last.kept_from:,}, {_score(last)}; training since made it worse "
                f"({_score(worse)} at step {worse.step:,}), so the model shown, its numbers and its file "
                f"are step {last.kept_from:,}'s"
            )
        if self._best is not None and _nll(last) > _nll(self._best[0]) + KEEP_MARGIN:
            best = self._best[0]
            return (
                f"best state so far: step {best.step:,}, {_score(best)} (now {_score(last)}); it is kept, "
                "and brought back when training ends if it is still the best"
            )
        return None

    def _reverse_kl(self, n: int, seed: int) -> Result | None:
        """KL(q ‖ p) on as many fresh samples of q as the plan has held-out points, where computable."""
        if reverse_kl_unavailable(self.model, self.data.target) is not None:
            return None
        return kl_reverse(self.model, self.data.target, n, seed)

    def _held_out(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first n held-out points (a random subset: they are drawn independently) and their log p."""
        log_p = None if self.data.log_p_test is None else self.data.log_p_test[:n]
        return self.data.test[:n], log_p

    def live_resolution(self, wanted: int) -> int:
        """Cells per side for a heat map while training: `wanted`, or the family's `live_grid`, halved
        (down to 32) until the grid is estimated to take about `cost.LIVE_SECONDS`."""
        return live_resolution(profile_of(self.model), self.data.box, wanted)

    def density_grid(self, resolution: int = DEFAULT_RESOLUTION) -> tuple[Grid, torch.Tensor]:
        """The model's log density on the data's box grid, (k, m) float64: for a family
        without a density, a KDE of its samples (see `density_title`)."""
        grid = self.data.box.grid(resolution)
        if DENSITY_KINDS[self.model.density_kind].from_samples:
            samples = private_samples(self.model, KDE_SAMPLES, self.config.seed + self.step)
            return grid, binned_kde(samples, grid)
        return grid, grid.reshape(density_log_prob(self.model, grid.points.float(), self.data.box))

    @property
    def density_title(self) -> str:
        """What `density_grid` shows, for a heat map's title."""
        return density_title(type(self.model))

    def target_grid(self, resolution: int = DEFAULT_RESOLUTION) -> tuple[Grid, torch.Tensor] | None:
        """The target's log density on the same grid, when it is known."""
        if self.data.target is None:
            return None
        return log_prob_grid(self.data.target, resolution)

    def kl_by_quadrature(
        self, resolution: int = DEFAULT_RESOLUTION, log_q: torch.Tensor | None = None
    ) -> Result | None:
        """The cross-check: KL by quadrature over the box, independent of the held-out sample.
        For a family without a density it is the smoothed-histogram estimate (an estimate).

        `log_q` is the model's grid from `density_grid(resolution)` when the caller has it."""
        target = self.target_grid(resolution)
        if target is None or not DENSITY_KINDS[self.model.density_kind].quadrature:
            return None  # exp(ELBO) is not a density: its quadrature would mean nothing
        grid, log_p = target
        if log_q is None:
            log_q = self.density_grid(resolution)[1]
        result = kl_quadrature(log_p, log_q, grid)
        if DENSITY_KINDS[self.model.density_kind].from_samples:
            return replace(result, method=f"{result.method}; q by {kde_method(KDE_SAMPLES)}")
        return result

    @torch.no_grad()
    def samples(self, n: int) -> torch.Tensor:
        return self.model.sample(n).float().cpu()


def keeps_best(model: GenerativeModel) -> bool:
    """Whether the family declares `keep_best = True`: its training is not a descent on the held-out
    NLL (an energy model's contrastive loss, an adversarial game), so the Trainer keeps the state of
    its best evaluation and brings it back if training ends worse (see `Trainer.record`)."""
    return bool(getattr(model, "keep_best", False))


def kept_evaluation(evaluation: Evaluation, step: int) -> Evaluation:
    """`evaluation`, of the state kept from `step`, with every model result's method saying so."""
    note = f"the state of step {step:,}, kept as the best held-out evaluation"

    def label(result: Result) -> Result:
        return result if result.value is None else replace(result, method=f"{result.method}; {note}")

    reverse = None if evaluation.reverse_kl is None else label(evaluation.reverse_kl)
    others = tuple(label(other) for other in evaluation.others)
    return replace(
        evaluation,
        nll=label(evaluation.nll),
        kl=label(evaluation.kl),
        others=others,
        reverse_kl=reverse,
        kept_from=step,
    )


def _nll(evaluation: Evaluation) -> float:
    """The held-out NLL to compare states by; one that is missing or not finite is the worst."""
    value = evaluation.nll.value
    return value if value is not None and math.isfinite(value) else math.inf


def _score(evaluation: Evaluation) -> str:
    """'KL 0.710', or 'held-out NLL 3.465' where there is no KL (a user's points)."""
    if evaluation.kl.value is not None:
        return f"KL {evaluation.kl.value:.3f}"
    return f"held-out NLL {_nll(evaluation):.3f}"


def density_title(family: type[GenerativeModel]) -> str:
    """What `Trainer.density_grid` shows for a family, for a heat map's title."""
    return DENSITY_KINDS[family.density_kind].title.format(samples=KDE_SAMPLES)


def reverse_kl_loss(model: GenerativeModel, target: Target, n: int) -> torch.Tensor:
    """KL(q ‖ p) − 0 = E_q[log q − log p] ≈ Σ_i w_i (log q(x_i) − log p(x_i)) over about n
    reparameterised samples of q (`rsample_with_log_prob`): a scalar, in nats, with gradients."""
    draw = model.rsample_with_log_prob(n)
    log_p = target.reverse_kl_log_prob(draw.x.cpu()).to(draw.log_q.device)
    return (draw.weights * (draw.log_q - log_p)).sum()


class NonFinite(Exception):
    """A loss or gradient that is not finite, raised inside a training step to roll it back."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def make_optimizers(model: GenerativeModel) -> dict[str, torch.optim.Optimizer]:
    """One Adam per parameter group; each group remembers its factor on the shared rate.

    A model trained by `update` (EM, a KDE) gets a placeholder, so that rollback is uniform."""
    groups = model.parameter_groups()
    optimizers = {}
    for name, group in groups.items():
        parameters = group.parameters or [torch.zeros(1, requires_grad=True)]
        optimizers[name] = torch.optim.Adam(
            [{"params": parameters, "lr_factor": group.lr_factor}], lr=group.lr_factor, betas=group.betas
        )
    return optimizers


def load_state(model: GenerativeModel, state: dict[str, torch.Tensor]) -> None:
    """Load a state dict, letting buffers change size (a KDE's stored points grow)."""
    for name, value in state.items():
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name) if module_name else model
        if (
            attr in module._buffers
            and module._buffers[attr] is not None
            and module._buffers[attr].shape != value.shape
        ):
            module._buffers[attr] = value.clone().to(module._buffers[attr].device)
    model.load_state_dict(state)
