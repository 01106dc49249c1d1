"""Metrics, each labelled for what it is: exact, a bound, or an estimate, and how.

The identity behind the app: E_p[−log q] = H(p) + KL(p ‖ q). The held-out NLL
estimates the left side; with H(p) known, the gap is the KL. Computing KL as the
mean of the paired differences log p(x) − log q(x) on the same held-out points
gives a much smaller standard error than subtracting two separate estimates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

import torch

from genviz.estimators import KNN_KL_ERROR, knn_log_density, knn_method
from genviz.grid import Box, Grid
from genviz.models.base import DensityKind, GenerativeModel
from genviz.models.kinds import DENSITY_KINDS
from genviz.targets.base import Target

Kind = Literal["exact", "bound", "estimate", "unavailable"]
EVAL_CHUNK = 16_384
PARTITION_RESOLUTION = 256  # grid cells per side for an energy model's partition function
KNN_SAMPLES = 10_000  # model samples behind a k-NN density estimate
KNN_EVAL_POINTS = 4000  # held-out points for a k-NN estimate, which costs (points × samples) distances
OTHER_POINTS = 2000  # held-out points for a family's further bounds (an IWAE bound costs K passes)
KDE_SAMPLES = 20_000  # samples behind the heat map of a family without a density
REVERSE_KL_SAMPLES = 10_000  # fresh samples of q behind a reverse KL, at most


@dataclass(frozen=True)
class Result:
    """A number with its standard error, what kind of number it is, and the method.

    `kind`: "exact" — the true quantity (up to the Monte Carlo error shown as ±);
    "bound" — an upper bound on the quantity; "estimate" — a biased or
    approximate estimator; "unavailable" — not computable here (`value` is None).
    """

    name: str
    value: float | None
    se: float | None
    kind: Kind
    method: str
    # An estimator's own error, measured where the exact value is known (`benchmarks.calibration`),
    # and the floor the quantity cannot go below (0 for a KL, H(p) for an NLL), where both apply.
    error: float | None = None
    floor: float | None = None

    @property
    def at_its_floor(self) -> bool:
        """The estimate is within its estimator's error of the floor: '≈ 0', not a figure to trust."""
        if self.value is None or self.error is None or self.floor is None:
            return False
        return self.value - self.error <= self.floor

    def text(self, digits: int = 3) -> str:
        """e.g. 'KL = 0.041 ± 0.003 (exact, Monte Carlo on 20,000 held-out points)'."""
        if self.value is None:
            return f"{self.name}: unavailable ({self.method})"
        spread = f" ± {self.se:.{digits}f}" if self.se is not None else ""
        if self.error is not None:
            spread += f", estimator error ±{self.error:g}"
        if self.at_its_floor:
            shown = f"{self.floor:.{digits}f}" if self.floor else "0"
            return (
                f"{self.name} ≈ {shown} within the estimator's error "
                f"(estimate {self.value:.{digits}f}{spread}; {self.kind}, {self.method})"
            )
        return f"{self.name} = {self.value:.{digits}f}{spread} ({self.kind}, {self.method})"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def at_floor(result: Result, floor: float = 0.0, what: str = "the KL's floor 0") -> Result:
    """An estimate, never shown below its floor: a KL is ≥ 0 and an NLL ≥ H(p), so an estimate that
    sampling noise, a grid's or an estimator's error put below it is shown at the floor, with the raw
    figure in its method."""
    if result.value is None or result.value >= floor:
        return result
    method = _joined(result.method, f"the estimate was {result.value:.3g}, below {what}: shown at the floor")
    return replace(result, value=floor, method=method)


def unavailable(name: str, why: str) -> Result:
    return Result(name, None, None, "unavailable", why)


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """Sample mean and its standard error. values: (n,)."""
    values = values.double()
    return float(values.mean()), float(values.std() / math.sqrt(len(values)))


def model_log_prob(model: GenerativeModel, x: torch.Tensor) -> torch.Tensor:
    """log q on x in chunks, returned as float64 on the CPU. x: (n, 2) -> (n,).

    Gradients are off except for an ODE likelihood, whose exact divergence needs autograd."""
    model.eval()
    device = model.device
    with torch.set_grad_enabled(DENSITY_KINDS[model.density_kind].autograd):
        out = [
            model.log_prob(block.to(device, torch.float32)).detach().double().cpu()
            for block in x.split(EVAL_CHUNK)
        ]
    model.train()
    return torch.cat(out)


def density_log_prob(
    model: GenerativeModel, x: torch.Tensor, box: Box, resolution: int = PARTITION_RESOLUTION
) -> torch.Tensor:
    """log q on x, normalised: an unnormalised model (an energy) is divided by its
    partition function over `box`, computed by quadrature on a grid. x: (n, 2) -> (n,)."""
    log_q = model_log_prob(model, x)
    if DENSITY_KINDS[model.density_kind].normalise:
        grid = box.grid(resolution)
        log_q = log_q - grid.log_mass(model_log_prob(model, grid.points.float()))
    return log_q


@dataclass(frozen=True)
class LogQ:
    """log q at some points, what kind of number that is, and how it was computed."""

    values: torch.Tensor  # (n,) float64, CPU
    kind: Kind  # "exact", "bound" (a lower bound on log q) or "estimate"
    method: str  # e.g. "probability-flow ODE, exact divergence, RK4 with 64 steps"; "" for a closed form
    error: float | None = None  # a KL or NLL from these values is off by up to this much (calibrated)


def log_q_at(
    model: GenerativeModel,
    x: torch.Tensor,
    box: Box,
    seed: int = 0,
    samples: int = KNN_SAMPLES,
    partition: int = PARTITION_RESOLUTION,
) -> LogQ:
    """The model's log density at x by whatever its density kind allows. x: (n, 2).

    A model with no density gets a k-nearest-neighbour estimate from `samples` of its own samples,
    drawn from a private random stream seeded with `seed`; an energy is normalised on a
    `partition`² grid."""
    density = model.density_kind
    if DENSITY_KINDS[density].from_samples:
        drawn = private_samples(model, samples, seed)
        return LogQ(knn_log_density(drawn, x), "estimate", knn_method(len(drawn)), KNN_KL_ERROR)
    values = density_log_prob(model, x, box, partition)
    if DENSITY_KINDS[density].normalise:
        method = f"partition function by quadrature on a {partition}² grid; q restricted to the box"
        return LogQ(values, "exact", _joined(model.density_method, method))
    if density == "ode":  # exact up to the ODE solver's error, which has no error bar
        return LogQ(values, "estimate", f"ODE likelihood: {model.density_method}")
    kind: Kind = DENSITY_KINDS[density].nll
    return LogQ(values, kind, model.density_method)


@torch.no_grad()
def private_samples(model: GenerativeModel, n: int, seed: int) -> torch.Tensor:
    """(n, 2) float64 CPU samples that leave the training run's random streams untouched."""
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return model.sample(n).double().cpu()


def _joined(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def nll_kind(density: DensityKind) -> Kind:
    """What a held-out NLL computed from this kind of log_prob is."""
    return DENSITY_KINDS[density].nll


def held_out_points(n: int, of: int | None = None) -> str:
    """'10,000 held-out points', or for a live subset '2,000 of 10,000 held-out points while training'."""
    if of is not None and of > n:
        return f"{n:,} of {of:,} held-out points while training"
    return f"{n:,} held-out points"


def held_out_nll(log_q: LogQ, of: int | None = None, entropy: float | None = None) -> Result:
    """−mean log q on held-out points. A bound-type log q (an ELBO) makes this an upper bound.
    `of`: the points a full evaluation uses, when these are a subset of them. An estimated log q
    with a calibrated error is never shown below the NLL's floor, the target's `entropy`."""
    value, se = mean_and_se(-log_q.values)
    method = _joined(f"mean over {held_out_points(len(log_q.values), of)}", log_q.method)
    result = Result("NLL", value, se, log_q.kind, method, error=log_q.error)
    if log_q.error is None or entropy is None:
        return result
    return at_floor(replace(result, floor=entropy), entropy, f"the NLL's floor H(p) = {entropy:.3f}")


def entropy_result(target: Target | None) -> Result:
    if target is None or target.entropy is None:
        return unavailable("H(p)", "the data's density is unknown")
    kind: Kind = "estimate" if target.density_known == "estimated" else "exact"
    return Result("H(p)", target.entropy, None, kind, target.entropy_method)


def kl_monte_carlo(
    log_p: torch.Tensor | None, log_q: LogQ, target: Target | None, of: int | None = None
) -> Result:
    """KL(p ‖ q) = E_p[log p − log q] by Monte Carlo on held-out samples of p (a subset of `of`)."""
    if target is None or log_p is None:
        return unavailable("KL", "the data's density is unknown, so only the NLL is shown")
    value, se = mean_and_se(log_p - log_q.values)
    kind: Kind = "estimate" if target.density_known == "estimated" else log_q.kind
    method = f"Monte Carlo on {held_out_points(len(log_p), of)}"
    if target.density_known != "exact":
        method += f"; log p by {target.density_known}"
    floor = 0.0 if log_q.error is not None else None
    return at_floor(Result("KL", value, se, kind, _joined(method, log_q.method), log_q.error, floor))


REVERSE_KL = "KL(q‖p)"


def reverse_kl_unavailable(model: GenerativeModel, target: Target | None) -> str | None:
    """Why KL(q ‖ p) cannot be computed for this pair, or None when it can."""
    if target is None or target.entropy is None:
        return "the data's density is unknown"
    if model.density_kind != "exact":
        return f"it needs q's exact density at q's own samples; this model's density is {model.density_kind}"
    return None


def kl_reverse(model: GenerativeModel, target: Target | None, n: int, seed: int) -> Result:
    """KL(q ‖ p) = E_q[log q − log p] by Monte Carlo over n fresh samples of q (a private stream).

    Where p = 0 (outside an energy's box) KL(q ‖ p) itself is infinite for any q that puts mass there;
    what is shown then is the KL of q restricted to p's support, E_q[d | p > 0] − log Q(p > 0), with
    the share of samples that fell outside in the method and its error in the ±."""
    why = reverse_kl_unavailable(model, target)
    if why is not None:
        return unavailable(REVERSE_KL, why)
    x = private_samples(model, n, seed)
    log_q, log_p = model_log_prob(model, x), target.log_prob(x)
    inside = torch.isfinite(log_p) & torch.isfinite(log_q)
    method = f"Monte Carlo on {n:,} fresh samples of q"
    if target.density_known != "exact":
        method += f"; log p by {target.density_known}"
    kept = int(inside.sum())
    if kept < 2:
        return unavailable(REVERSE_KL, f"{n - kept:,} of {n:,} samples of q fell where p = 0")
    value, se = mean_and_se(log_q[inside] - log_p[inside])
    if kept < n or target.bounded:
        share = kept / n  # Q(p > 0); its log's standard error by the delta method
        value, se = value - math.log(share), math.sqrt(se**2 + (1 - share) / (n * share))
        method += (
            f"; of q restricted to where p > 0 ({n - kept:,} of the samples fell outside it, "
            "where p = 0 makes the unrestricted KL(q‖p) infinite)"
        )
    kind: Kind = "estimate" if target.density_known == "estimated" else "exact"
    return at_floor(Result(REVERSE_KL, value, se, kind, _joined(method, model.density_method)))


def other_nlls(model: GenerativeModel, x: torch.Tensor, of: int | None = None) -> tuple[Result, ...]:
    """The family's further log-likelihoods (an ELBO, an IWAE bound) as labelled NLLs. x: (n, 2),
    a subset of `of` points for a live evaluation."""
    model.eval()
    with torch.no_grad():
        others = model.other_log_likelihoods(x.to(model.device))
    model.train()
    results = []
    for other in others:
        value, se = mean_and_se(-other.values.double().cpu())
        method = _joined(f"mean over {held_out_points(len(x), of)}", other.method)
        results.append(Result(f"NLL via {other.name}", value, se, other.kind, method))
    return tuple(results)


def kl_quadrature(log_p_grid: torch.Tensor, log_q_grid: torch.Tensor, grid: Grid) -> Result:
    """KL(p ‖ q) ≈ Σ_cells p (log p − log q) ΔA over the target's box: the cross-check."""
    p = log_p_grid.double().exp()
    integrand = torch.where(p > 0, p * (log_p_grid.double() - log_q_grid.double()), torch.zeros_like(p))
    value = float(integrand.sum() * grid.cell_area)
    # An estimate: the midpoint rule's grid error and the box truncation are not in an error bar.
    return at_floor(
        Result("KL", value, None, "estimate", f"quadrature on a {grid.m}×{grid.k} grid over the box")
    )
