"""The model-family protocol and the hyperparameter introspection the UI and CLI share.

A family is an `nn.Module` subclass with keyword-only, annotated hyperparameters:

    class MAF(GenerativeModel):
        def __init__(self, *, transforms: Annotated[int, Range(1, 12)] = 5) -> None: ...

`hyperparameters(MAF)` turns that signature into widget specs; `Family()` with no
arguments must train sensibly.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args, get_origin

import torch
from torch import nn

if TYPE_CHECKING:
    from genviz.grid import Box
    from genviz.views.layers import View

# What `log_prob` returns: "exact" — a normalised log density (closed form, or quadrature the
# family does itself, named in `density_method`); "bound" — a lower bound on log q (an ELBO);
# "unnormalised" — log q up to a constant the metrics find by quadrature on the box; "ode" —
# log q of a continuous-time flow, integrated numerically; "none" — no density (samples only).
DensityKind = Literal["exact", "bound", "unnormalised", "ode", "none"]
TrainedBy = Literal["gradient", "update"]
# What the training loss a step reports is: the batch's negative log-likelihood, an upper bound
# on it (a −ELBO), or another objective (adversarial, contrastive, a regression).
TrainingLoss = Literal["nll", "bound", "other"]
Batch = Callable[[], torch.Tensor]  # draws a fresh (batch_size, 2) training batch on the model's device
Step = Callable[[str, torch.Tensor], float]  # step(group, loss): one optimizer step on that group


@dataclass(frozen=True)
class ParameterGroup:
    """Parameters the Trainer steps with one Adam optimizer; `lr_factor` scales the shared rate."""

    parameters: list[nn.Parameter]
    lr_factor: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class LogLikelihood:
    """A per-point log-likelihood a family reports besides `log_prob` (an ELBO, an IWAE bound).

    values: (n,) on the CPU or the model's device; `kind` says what −mean(values) is for the NLL.
    """

    name: str  # e.g. "ELBO", "IWAE, K = 64"
    values: torch.Tensor
    kind: Literal["exact", "bound", "estimate"]
    method: str


@dataclass(frozen=True)
class EvaluationCost:
    """What a family's work costs, in forward passes of all its networks per point, for the
    budget check in `genviz.cost`. The defaults fit a network evaluated once per point."""

    density_passes: float = 1.0  # per point of `log_prob` (an ODE: 4 per RK4 step, ×3 for the divergence)
    other_passes: float = 0.0  # per point of `other_log_likelihoods` (a VAE: a decoder pass per draw)
    sample_passes: float = 1.0  # per sample drawn (a GSN: one per chain step)
    train_passes: float = 3.0  # per batch point of a training step: forward and backward
    step_passes: float = 0.0  # per training step whatever the batch (an EBM's Langevin chains)
    pairs: float = 0.0  # (point, stored item) pairs per point of `log_prob`: a KDE's centres, a VAE's nodes
    train_pairs: float = 0.0  # pairs per batch point of a training step (a KDE adding points, EM)
    working_bytes: float = 0.0  # the family's own largest temporary while evaluating (blocks of pairs)


@dataclass(frozen=True)
class Reparameterised:
    """Samples of q drawn with gradients, their exact log q, and the weights of an unbiased
    estimate E_q[f] ≈ Σ_i weights_i f(x_i) (1/n each for plain samples; π_k/m for m samples from
    each of a mixture's components, so that the mixture weights get gradients too).

    x: (n, 2); log_q: (n,); weights: (n,), summing to one."""

    x: torch.Tensor
    log_q: torch.Tensor
    weights: torch.Tensor


@dataclass(frozen=True)
class ViewControl:
    """A slider of a family view, e.g. the time t of a diffusion's vector field."""

    name: str
    label: str
    low: float
    high: float
    default: float
    step: float | None = None
    help: str = ""


@dataclass(frozen=True)
class ViewContext:
    """What a family view may use besides the model itself."""

    box: Box  # the data's evaluation box
    data: torch.Tensor  # (n, 2) held-out data points, CPU float32
    controls: dict[str, float] = field(default_factory=dict)  # ViewControl name -> value
    seed: int = 0


MAX_TUPLE_LENGTH = 8  # entries of a tuple hyperparameter whose Range sets no `max_length`


@dataclass(frozen=True)
class Range:
    """Bounds for a numeric hyperparameter (inclusive); `log` asks for a log-scale widget.

    For a tuple (layer widths) the bounds hold for every entry and `max_length` caps the number
    of entries: `Annotated[tuple[int, ...], Range(4, 1024, max_length=8)]`."""

    low: float
    high: float
    log: bool = False
    max_length: int | None = None


class GenerativeModel(nn.Module):
    """Base class of every family.

    Contract (x is a (n, 2) float tensor on the model's device):
    - `loss(x)`: scalar to minimise, in nats per sample where it is a likelihood;
    - `log_prob(x)`: (n,) log density of the kind `density_kind` declares;
    - `sample(n)`: (n, 2) detached samples;
    - `fit_data(x)`: called once with a training sample before the first step;
    - `update(x)`: one non-gradient step (EM, adding points), for `trained_by == "update"`;
    - `parameter_groups()` and `train_step(batch, step)`: multi-part training (a GAN's two
      players, an energy model's sampling chains); the defaults take one step on `loss`;
    - `other_log_likelihoods(x)`: bounds or estimates shown beside the NLL (a VAE's ELBO);
    - `view(context)`: the family's own view as data, with `view_controls` as its sliders.
    """

    title: ClassVar[str]  # human name, e.g. "Neural spline flow"
    density_kind: ClassVar[DensityKind]
    branch: ClassVar[str]  # place in the taxonomy, e.g. "explicit · tractable · change of variables"
    summary: ClassVar[str] = ""
    update_batch_size: ClassVar[int] = 0  # smallest batch an `update` step wants (EM: a large one)
    learning_rate: ClassVar[float] = 3e-3  # the family's base rate, used unless a run sets its own
    # How `log_prob` is computed when that is more than a closed form, for the metric labels,
    # e.g. "probability-flow ODE, exact divergence, RK4 with 64 steps".
    density_method: ClassVar[str] = ""
    eval_points: ClassVar[int | None] = None  # held-out points per evaluation, for a costly density
    # Cells per side of the live heat map and cross-check, for a density that costs an ODE solve
    # per point; None: the app's defaults. Files written by the command line keep full resolution.
    live_grid: ClassVar[int | None] = None
    view_title: ClassVar[str] = ""
    view_controls: ClassVar[tuple[ViewControl, ...]] = ()
    # What `train_step` reports (see TrainingLoss), and its name: whether minus the training loss
    # is the mean log-likelihood of the training batches (the Theory page shows it only then).
    training_loss: ClassVar[TrainingLoss] = "nll"
    loss_name: ClassVar[str] = "negative log-likelihood of the batch"
    # Draws samples with gradients and their exact log q (`rsample_with_log_prob`), so that it
    # can minimise the reverse KL E_q[log q − log p] of a target's density.
    reparameterised: ClassVar[bool] = False
    reverse_kl_settings: ClassVar[str] = ""  # hyperparameters the reverse KL needs, e.g. "fit=gradient"

    @property
    def trained_by(self) -> TrainedBy:
        return "gradient"

    @property
    def device(self) -> torch.device:
        tensors = [*self.parameters(), *self.buffers()]
        return tensors[0].device if tensors else torch.device("cpu")

    def fit_data(self, x: torch.Tensor) -> None:
        """Initialise from data (standardisation, k-means seeding). Default: nothing."""

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(x).mean()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def update(self, x: torch.Tensor) -> float:
        """One non-gradient training step on x; returns the training loss."""
        raise NotImplementedError(f"{type(self).__name__} is trained by gradient")

    def parameter_groups(self) -> dict[str, ParameterGroup]:
        """Named groups, each stepped by its own optimizer. Default: every trainable parameter."""
        return {"model": ParameterGroup([p for p in self.parameters() if p.requires_grad])}

    def train_step(self, batch: Batch, step: Step) -> float:
        """One training iteration; returns the loss to report. `step(group, loss)` backpropagates
        `loss` and steps that group's optimizer (the Trainer clips, checks and schedules)."""
        return step("model", self.loss(batch()))

    def other_log_likelihoods(self, x: torch.Tensor) -> list[LogLikelihood]:
        """Further per-point log-likelihoods shown beside the NLL. x: (n, 2)."""
        return []

    def rsample_with_log_prob(self, n: int) -> Reparameterised:
        """About n samples of q with gradients, their exact log q and estimator weights."""
        raise NotImplementedError(f"{type(self).__name__} draws no reparameterised samples")

    @classmethod
    def reverse_kl_refusal(cls, params: dict[str, Any]) -> str | None:
        """Why this family, with these hyperparameters, cannot minimise the reverse KL; None if it can."""
        if cls.reparameterised:
            return None
        return "it cannot draw reparameterised samples with their exact log q"

    def view(self, context: ViewContext) -> View | None:
        """The family's own view, as data (`genviz.views.layers`): what makes it different. None: no view."""
        return None

    def evaluation_cost(self) -> EvaluationCost:
        """What evaluating and training cost, for `genviz.cost`; it must read only plain attributes
        (the check builds the family on torch's "meta" device, whose tensors hold no values)."""
        return EvaluationCost()


class Standardize(nn.Module):
    """Affine map z = (x − shift) / scale fitted to data; its log|det| is −Σ log scale.

    Models see data of unit scale whatever the target's units, which makes one
    set of defaults (learning rate, initialisation) work on every target.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(2))
        self.register_buffer("scale", torch.ones(2))

    def fit(self, x: torch.Tensor) -> None:
        self.shift.copy_(x.mean(0))
        self.scale.copy_(x.std(0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale + self.shift

    def log_det(self) -> torch.Tensor:
        """log |dz/dx|, to add to log q_z(z)."""
        return -self.scale.log().sum()

    def vectors_to_data(
        self, field: Callable[[torch.Tensor], torch.Tensor]
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A field of standardised points and vectors as one of data points and data-unit vectors:
        x ↦ scale · field(z(x)), evaluated on this module's device (dx/dt = scale · dz/dt)."""
        return lambda x: field(self(x.to(self.scale.device))) * self.scale


# ---------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Hyperparameter:
    """One keyword-only constructor argument of a family, ready for a widget or `--set`."""

    name: str
    kind: type  # int, float, bool, str or tuple (of ints)
    default: Any
    choices: tuple[Any, ...] | None = None
    range: Range | None = None
    help: str = ""

    def parse(self, text: str) -> Any:
        """Convert command-line text to a checked value; never evaluates code."""
        text = text.strip()
        try:
            if self.kind is bool:
                value = _parse_bool(text)
            elif self.kind is tuple:
                value = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
            else:
                value = self.kind(text)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}: cannot read {text!r} as {self.describe()}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Validate a value; raises ValueError with a message a user can act on."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is tuple and isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise ValueError(f"{self.name} must be {self.describe()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.choices))}")
        if self.kind is tuple and len(value) > self.max_length:
            raise ValueError(f"{self.name} takes at most {self.max_length} entries, got {len(value):,}")
        if self.kind is tuple and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{self.name} must be {self.describe()}, got {value!r}")
        numbers = value if self.kind is tuple else (value,)
        for number in numbers if self.range else ():
            if not (self.range.low <= number <= self.range.high) or not math.isfinite(number):
                raise ValueError(
                    f"{self.name} must lie in [{self.range.low:g}, {self.range.high:g}], got {value!r}"
                )
        if self.kind is tuple and not value:
            raise ValueError(f"{self.name} needs at least one entry")
        return value

    @property
    def max_length(self) -> int:
        """The most entries a tuple hyperparameter takes (layers of a network)."""
        if self.range is not None and self.range.max_length is not None:
            return self.range.max_length
        return MAX_TUPLE_LENGTH

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        names = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
        return names.get(self.kind, "comma-separated integers, e.g. 64,64")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def hyperparameters(family: type[GenerativeModel]) -> list[Hyperparameter]:
    """The keyword-only arguments of `family.__init__`, in order, with types and bounds."""
    hints = typing.get_type_hints(family.__init__, include_extras=True)
    result = []
    for param in inspect.signature(family.__init__).parameters.values():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        result.append(_describe(param.name, hints[param.name], param.default))
    return result


def _describe(name: str, hint: Any, default: Any) -> Hyperparameter:
    bounds, help_text = None, ""
    if get_origin(hint) is Annotated:
        hint, *extras = get_args(hint)
        bounds = next((e for e in extras if isinstance(e, Range)), None)
        help_text = next((e for e in extras if isinstance(e, str)), "")
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        return Hyperparameter(name, type(choices[0]), default, choices, None, help_text)
    kind = tuple if get_origin(hint) is tuple else hint
    return Hyperparameter(name, kind, default, None, bounds, help_text)


def checked_params(family: type[GenerativeModel], params: dict[str, Any]) -> dict[str, Any]:
    """Validate a parameter dict against the family's signature; unknown names are errors."""
    specs = {h.name: h for h in hyperparameters(family)}
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(unknown)}; this model takes {', '.join(specs) or 'none'}"
        )
    return {name: specs[name].check(value) for name, value in params.items()}
