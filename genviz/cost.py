"""What a model will cost before it is built: parameters, memory, and the time of an evaluation.

A shared server must survive any link, slider or `--set`: `check_cost(config, limits)` refuses a
configuration whose estimate is over the host's budget (`HostLimits`), with a message that names
the limit and how far over it is. The estimates:

- parameters: the family built on torch's "meta" device, which allocates nothing; zuko's flows
  compute their masks from real tensors, so for them only the weights go to "meta";
- memory: parameters × (weights, gradients, Adam's two moments, the rollback snapshot of weights
  and moments, and a second snapshot while one is taken), plus the larger of a training step's
  activations and an evaluation's largest temporary;
- time: what an evaluation does (held-out points × network passes per point, the heat map's
  cells, IWAE draws, ODE solver steps, KDE centres, GSN chain steps, k-NN distances), priced by
  constants measured on real evaluations with one torch thread, as the server runs
  (`python -m benchmarks.evaluation` prints the estimates beside new measurements).

A family declares what the generic count (one pass of its networks per point) gets wrong through
`GenerativeModel.evaluation_cost`. The same prices choose the subsets of a live evaluation
(`plan_evaluation`, used by `Trainer.record(live=True)`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from genviz.config import FORMULA, ConfigError, RunConfig
from genviz.estimators import KNN_PAIRS
from genviz.grid import DEFAULT_RESOLUTION, Box
from genviz.limits import HostLimits
from genviz.metrics import (
    EVAL_CHUNK,
    KDE_SAMPLES,
    KNN_EVAL_POINTS,
    KNN_SAMPLES,
    OTHER_POINTS,
    PARTITION_RESOLUTION,
    REVERSE_KL_SAMPLES,
)
from genviz.models import MODELS, GenerativeModel
from genviz.models.base import EvaluationCost
from genviz.targets import TARGETS

# Prices in seconds with one torch thread, fitted to measurements of every family on a 2-core
# x86-64 server (see `benchmarks/evaluation.py`); within about a factor of two of the real time.
SECONDS_PER_PARAMETER = 1.26e-11  # per point and network pass, per parameter: the matrix products
SECONDS_PER_ACTIVATION = 8.2e-10  # per point and pass, per layer output: the elementwise work
SECONDS_PER_LAYER = 1.23e-8  # per point and pass, per layer: its small operations besides the product
SECONDS_PER_PAIR = 3.07e-9  # per (point, stored item) pair: a KDE centre, a VAE node, a mixture component
SECONDS_PER_KNN_PAIR = 5.2e-9  # per (query point, model sample) distance of a k-NN estimate
SECONDS_PER_POINT = 1.9e-8  # per point of any evaluation: standardising, sums, copies
SECONDS_PER_CALL = 1.57e-5  # per layer of a network call on a block of points: Python and dispatch
PARAMETER_COPIES = 10  # weights, gradients, 2 Adam moments, a snapshot of 3, a second while one is taken
FLOAT = 4  # bytes
SESSION_BYTES = 20e6  # what a session holds besides its model: held-out points, grids, history
# A reverse-KL step draws the batch through the flow's inverse and backpropagates through it:
# measured 2.0× (RealNVP), 2.2× (MAF) and 2.9× (NSF, whose spline inverse is costlier) a forward step.
REVERSE_STEP_FACTOR = 3.0

LIVE_RESOLUTION = 128  # cells per side of the page's heat map while training (capped by `live_grid`)
CHECK_RESOLUTION = DEFAULT_RESOLUTION  # cells per side of its cross-check by quadrature
LIVE_SECONDS = 0.1  # what one live evaluation (`Trainer.record(live=True)`) aims to take
MIN_LIVE_POINTS = 500  # held-out points a live evaluation keeps at least
MIN_LIVE_OTHER_POINTS = 200  # points of a family's further bounds a live evaluation keeps at least
MIN_LIVE_SAMPLES = 1000  # model samples behind a live k-NN estimate at least
MIN_LIVE_PARTITION = 64  # cells per side of a live partition-function grid at least


# ---------------------------------------------------------------- what a model is made of


@dataclass(frozen=True)
class Profile:
    """The sizes of one model that its costs follow from."""

    family: type[GenerativeModel]
    parameters: int  # trainable parameters
    buffers: int  # values of its buffers
    activations: int  # layer outputs one network pass computes per point (Σ out_features)
    widest: int  # the widest layer's outputs
    layers: int  # linear layers
    cost: EvaluationCost
    trained_by: str
    eval_points: int | None  # the family's cap on held-out points per evaluation
    live_grid: int | None  # the family's cap on the heat map's and cross-check's cells per side
    counted: str  # how the parameters were counted: "meta", "meta weights" or "rough"

    @property
    def pass_seconds(self) -> float:
        """One network pass for one point."""
        size = SECONDS_PER_PARAMETER * self.parameters + SECONDS_PER_ACTIVATION * self.activations
        return size + SECONDS_PER_LAYER * self.layers

    @property
    def call_seconds(self) -> float:
        """The fixed price of one network call on a block of points."""
        return SECONDS_PER_CALL * (self.layers + 1)

    def density_seconds(self, n: int) -> float:
        """log q at n points, without an energy's partition function."""
        c = self.cost
        per_point = c.density_passes * self.pass_seconds + c.pairs * SECONDS_PER_PAIR + SECONDS_PER_POINT
        blocks = math.ceil(n / EVAL_CHUNK)
        return n * per_point + blocks * c.density_passes * self.call_seconds

    def log_density_seconds(self, n: int, partition: int = PARTITION_RESOLUTION) -> float:
        """What `metrics.density_log_prob` costs at n points: for an energy, also its partition grid."""
        extra = partition * partition if self.family.density_kind == "unnormalised" else 0
        return self.density_seconds(n) + (self.density_seconds(extra) if extra else 0.0)

    def other_seconds(self, n: int) -> float:
        """The family's further bounds (an ELBO, an IWAE bound) at n points."""
        passes = self.cost.other_passes
        if not passes:
            return 0.0
        return n * (passes * self.pass_seconds + SECONDS_PER_POINT) + passes * self.call_seconds

    def sample_seconds(self, n: int) -> float:
        passes = self.cost.sample_passes
        return n * (passes * self.pass_seconds + SECONDS_PER_POINT) + passes * self.call_seconds

    def knn_seconds(self, points: int, samples: int) -> float:
        """A k-NN estimate of log q at `points` from `samples` model samples."""
        return self.sample_seconds(samples) + points * samples * SECONDS_PER_KNN_PAIR

    def step_seconds(self, batch_size: int) -> float:
        """One training step on a batch."""
        c = self.cost
        batch = max(batch_size, self.family.update_batch_size) if self.trained_by == "update" else batch_size
        per_point = c.train_passes * self.pass_seconds + c.train_pairs * SECONDS_PER_PAIR + SECONDS_PER_POINT
        calls = (c.train_passes + (1 if c.step_passes else 0)) * self.call_seconds
        return batch * per_point + c.step_passes * self.pass_seconds + calls


def profile_of(model: GenerativeModel, counted: str = "built") -> Profile:
    """The profile of a model that exists (on any device, "meta" included)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return Profile(
        family=type(model),
        parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        buffers=sum(b.numel() for b in model.buffers()),
        activations=sum(m.out_features for m in linears),
        widest=max((m.out_features for m in linears), default=2),
        layers=len(linears),
        cost=model.evaluation_cost(),
        trained_by=model.trained_by,
        eval_points=model.eval_points,
        live_grid=model.live_grid,
        counted=counted,
    )


class _WeightsOnMeta(TorchFunctionMode):
    """Tensors made by `torch.empty` (every layer's weights) go to "meta"; the rest stay real.

    A torch function mode is local to its thread, so other sessions building models are untouched."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is torch.empty:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


@lru_cache(maxsize=512)
def _profile(model: str, frozen: tuple[tuple[str, Any], ...]) -> Profile:
    family, kwargs = MODELS[model], dict(frozen)
    try:
        with torch.device("meta"):
            return profile_of(family(**kwargs), "meta")
    except (NotImplementedError, RuntimeError):  # an operator with no meta kernel (zuko's masks)
        pass
    try:
        with torch.random.fork_rng(devices=[]), _WeightsOnMeta():  # small real tensors draw numbers
            return profile_of(family(**kwargs), "meta weights")
    except (NotImplementedError, RuntimeError, TypeError):
        return _rough_profile(family, kwargs)


def _rough_profile(family: type[GenerativeModel], kwargs: dict[str, Any]) -> Profile:
    """A guess from the hyperparameters alone, for a family that cannot be built without memory:
    an MLP of the given widths (per flow layer, for a stack of them)."""
    widths = [w for v in kwargs.values() if isinstance(v, tuple) for w in v]
    widths = widths or [int(kwargs.get("hidden", 64))]
    widths = widths * int(kwargs.get("depth", 1))
    copies = int(kwargs.get("transforms", 1))
    sizes = [2, *widths, 2]
    parameters = copies * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return Profile(
        family=family,
        parameters=parameters,
        buffers=0,
        activations=copies * sum(sizes[1:]),
        widest=max(sizes),
        layers=copies * (len(sizes) - 1),
        cost=EvaluationCost(),
        trained_by="gradient",
        eval_points=family.eval_points,
        live_grid=family.live_grid,
        counted="rough",
    )


def profile(config: RunConfig) -> Profile:
    """The profile of the model `config` builds, without building it."""
    kwargs = config.model_kwargs()
    return _profile(config.model, tuple(sorted(kwargs.items())))


# ---------------------------------------------------------------- what an evaluation does


@dataclass(frozen=True)
class EvaluationPlan:
    """How much of each part one evaluation (`Trainer.record`) computes."""

    points: int  # held-out points behind the NLL and the KL
    other_points: int  # of them, behind a family's further bounds (an ELBO, an IWAE bound)
    samples: int  # model samples behind a k-NN estimate of log q (a family without a density)
    partition: int  # cells per side of the grid of an energy's partition function


def full_plan(shape: Profile, n_test: int) -> EvaluationPlan:
    """What a full evaluation uses: every held-out point, or the family's cap on them."""
    points = min(n_test, shape.eval_points or n_test)
    if shape.family.density_kind == "none":
        points = min(points, KNN_EVAL_POINTS)
    return EvaluationPlan(points, min(points, OTHER_POINTS), KNN_SAMPLES, PARTITION_RESOLUTION)


def plan_evaluation(
    model: GenerativeModel | Profile, n_test: int, live: bool = False, seconds: float = LIVE_SECONDS
) -> EvaluationPlan:
    """The full plan, or for `live` one whose costly parts are cut to subsets so that the whole
    takes about `seconds`: fewer held-out points (a KDE of many centres, an ODE likelihood), fewer
    points for the further bounds (an IWAE bound of many draws), fewer samples and query points
    for a k-NN estimate (a GSN's chains), a coarser partition grid (an energy of a wide network).
    Sizes are rounded down to 1, 2 or 5 × a power of ten, so a subset reads plainly."""
    shape = model if isinstance(model, Profile) else profile_of(model)
    full = full_plan(shape, n_test)
    if not live:
        return full
    parts = _record_parts(shape, full)
    if sum(parts.values()) <= seconds:
        return full
    share = seconds / max(1, sum(1 for t in parts.values() if t > 0))
    points, other, samples, partition = full.points, full.other_points, full.samples, full.partition
    if shape.family.density_kind == "none":
        if parts["log q"] > share:
            scale = math.sqrt(share / parts["log q"])
            points = _shrunk(points, scale, MIN_LIVE_POINTS)
            samples = _shrunk(samples, scale, MIN_LIVE_SAMPLES)
    elif parts["log q"] > share:
        points = _shrunk(points, share / parts["log q"], MIN_LIVE_POINTS)
    if parts["further bounds"] > share:
        other = _shrunk(other, share / parts["further bounds"], MIN_LIVE_OTHER_POINTS)
    if parts["partition function"] > share:
        cells = partition * math.sqrt(share / parts["partition function"])
        partition = max(MIN_LIVE_PARTITION, 2 ** int(math.log2(max(cells, 1))))
    return EvaluationPlan(points, min(other, points), samples, min(partition, full.partition))


def _shrunk(n: int, scale: float, floor: int) -> int:
    """n × scale rounded down to 1, 2 or 5 × 10^k, at least `floor` (and at most n)."""
    target = max(n * scale, 1.0)
    power = 10 ** math.floor(math.log10(target))
    nice = max(m * power for m in (1, 2, 5) if m * power <= target)
    return min(n, max(floor, int(nice)))


def _record_parts(shape: Profile, plan: EvaluationPlan) -> dict[str, float]:
    """Seconds of each part of `Trainer.record` under a plan."""
    parts = {"log q": 0.0, "further bounds": 0.0, "partition function": 0.0, "reverse KL": 0.0}
    if shape.family.density_kind == "none":
        parts["log q"] = shape.knn_seconds(plan.points, plan.samples)
    else:
        parts["log q"] = shape.density_seconds(plan.points)
        if shape.family.density_kind == "unnormalised":
            parts["partition function"] = shape.density_seconds(plan.partition**2)
    parts["further bounds"] = shape.other_seconds(plan.other_points)
    if shape.family.density_kind == "exact":  # KL(q ‖ p): fresh samples of q and log q at them
        drawn = min(plan.points, REVERSE_KL_SAMPLES)
        parts["reverse KL"] = shape.sample_seconds(drawn) + shape.density_seconds(drawn)
    return parts


def grid_cells(box: Box | None, resolution: int) -> int:
    """Cells of the grid at `resolution` over a box (a square one when the box is unknown)."""
    if box is None:
        return resolution * resolution
    grid = box.grid(resolution)
    return grid.m * grid.k


def grid_seconds(shape: Profile, cells: int) -> float:
    """`Trainer.density_grid` on that many cells (a family without a density: a KDE of samples)."""
    if shape.family.density_kind == "none":
        return shape.sample_seconds(KDE_SAMPLES) + cells * SECONDS_PER_POINT
    return shape.log_density_seconds(cells)


def live_resolution(shape: Profile, box: Box | None, wanted: int, seconds: float = LIVE_SECONDS) -> int:
    """Cells per side for a live heat map: `wanted` (or the family's `live_grid`), halved until the
    grid is estimated to take at most `seconds`, down to 32."""
    resolution = min(wanted, shape.live_grid or wanted)
    while resolution > 32 and grid_seconds(shape, grid_cells(box, resolution)) > seconds:
        resolution //= 2
    return max(min(32, wanted), resolution)


# ---------------------------------------------------------------- the estimate and the check


@dataclass(frozen=True)
class Estimate:
    """What a configuration is expected to cost on this server (one torch thread)."""

    parameters: int
    memory_bytes: float  # the peak: model, optimiser, snapshots, and the larger of training or evaluating
    eval_seconds: float  # one full evaluation as the page makes it when paused
    live_seconds: float  # one live evaluation, `Trainer.record(live=True)`
    step_seconds: float  # one training step
    parts: dict[str, float]  # seconds of each part of the full evaluation
    memory_parts: dict[str, float]  # bytes of each part of the memory
    counted: str  # how the parameters were counted ("meta", "meta weights" or "rough")


def estimate(config: RunConfig, held_out: int | None = None) -> Estimate:
    """The cost of the model `config` builds, trained and evaluated as the page does.
    `held_out`: the held-out points of a user's data set (`config.n_test` is a target's)."""
    shape = profile(config)
    box = TARGETS[config.target].box if config.target in TARGETS else None
    if config.target == FORMULA:
        box = Box(*config.box)  # a typed density's grids cover the box the user set
    n_test = config.n_test if held_out is None else held_out
    full = full_plan(shape, n_test)
    parts = _record_parts(shape, full)
    live_grid = shape.live_grid
    heat = min(LIVE_RESOLUTION, live_grid or LIVE_RESOLUTION)
    check = min(CHECK_RESOLUTION, live_grid or CHECK_RESOLUTION)
    parts["heat map"] = grid_seconds(shape, grid_cells(box, heat))
    # a family whose live grid caps the cross-check reuses the heat map for it
    parts["cross-check"] = 0.0 if check == heat else grid_seconds(shape, grid_cells(box, check))
    live = sum(_record_parts(shape, plan_evaluation(shape, n_test, live=True)).values())
    reverse = config.objective == "reverse-kl"
    memory = _memory(shape, config, full)
    return Estimate(
        parameters=shape.parameters,
        memory_bytes=sum(memory.values()),
        eval_seconds=sum(parts.values()),
        live_seconds=live,
        step_seconds=shape.step_seconds(config.batch_size) * (REVERSE_STEP_FACTOR if reverse else 1.0),
        parts=parts,
        memory_parts=memory,
        counted=shape.counted,
    )


def _memory(shape: Profile, config: RunConfig, full: EvaluationPlan) -> dict[str, float]:
    c, kind = shape.cost, shape.family.density_kind
    batch = max(config.batch_size, shape.family.update_batch_size)
    rows = EVAL_CHUNK if c.density_passes else 0
    if kind == "none":  # samples are drawn all at once: KDE_SAMPLES for the heat map
        rows = max(rows, KDE_SAMPLES, KNN_SAMPLES)
    block = rows * (shape.activations * 3 if kind == "ode" else shape.widest * 4)
    others = full.other_points * c.other_passes * shape.widest * 2  # draws decoded at once (an IWAE)
    knn = KNN_PAIRS * 2 if kind == "none" else 0  # a block of distances and its selection
    evaluating = FLOAT * max(block, others, knn) + c.working_bytes
    training = FLOAT * batch * shape.activations * c.train_passes * 1.2  # activations kept for backward
    return {
        "session": SESSION_BYTES,
        "model and optimiser": FLOAT * (shape.parameters * PARAMETER_COPIES + 2 * shape.buffers),
        "working memory": max(training, evaluating),
    }


def check_cost(config: RunConfig, limits: HostLimits | None = None, held_out: int | None = None) -> None:
    """Refuse a configuration this server cannot afford, before anything is built or allocated.

    Raises ConfigError naming the limit, its environment variable and how far over it the
    estimate is, e.g. "this model needs ~2.1 GB; this server allows 300 MB per session
    (GENVIZ_MAX_SESSION_MB)". A limit of 0 is no limit. `limits`: the host's, from the
    environment, when not given; `held_out`: the held-out points of a user's data set."""
    limits = limits or HostLimits.from_environment()
    cost = estimate(config, held_out)
    if limits.max_parameters and cost.parameters > limits.max_parameters:
        allowed = limits.max_parameters
        raise ConfigError(
            f"this model has ~{_count(cost.parameters)} parameters; this server allows {_count(allowed)} "
            f"(GENVIZ_MAX_PARAMETERS): {_over(cost.parameters, allowed)}"
        )
    budget = limits.max_session_mb * 1e6
    if budget and cost.memory_bytes > budget:
        raise ConfigError(
            f"this model needs ~{_bytes(cost.memory_bytes)}; this server allows {_bytes(budget)} per session "
            f"(GENVIZ_MAX_SESSION_MB): {_over(cost.memory_bytes, budget)}"
        )
    if limits.max_eval_seconds and cost.eval_seconds > limits.max_eval_seconds:
        largest = max(cost.parts, key=cost.parts.get)
        raise ConfigError(
            f"one evaluation of this model would take ~{_seconds(cost.eval_seconds)} here, mostly its "
            f"{largest}; this server allows {_seconds(limits.max_eval_seconds)} (GENVIZ_MAX_EVAL_SECONDS): "
            f"{_over(cost.eval_seconds, limits.max_eval_seconds)}"
        )
    if limits.max_step_seconds and cost.step_seconds > limits.max_step_seconds:
        raise ConfigError(
            f"one training step of this model would take ~{_seconds(cost.step_seconds)} here; this server "
            f"allows {_seconds(limits.max_step_seconds)} (GENVIZ_MAX_STEP_SECONDS): "
            f"{_over(cost.step_seconds, limits.max_step_seconds)}"
        )


def _over(value: float, limit: float) -> str:
    ratio = value / limit
    return f"{ratio:.1f}× over" if ratio >= 1.1 else f"{ratio:.2f}× over"


def _count(n: float) -> str:
    for size, unit in ((1e9, " billion"), (1e6, " million"), (1e3, " thousand")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def _bytes(n: float) -> str:
    for size, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _seconds(s: float) -> str:
    return f"{s:.3g} s" if s < 10 else f"{s:.0f} s"
