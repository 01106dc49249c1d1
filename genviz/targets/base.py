"""The target protocol: a normalised 2D density that can also be sampled."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal

import torch

from genviz.grid import Box
from genviz.numerics import logsumexp

DensityKnown = Literal["exact", "quadrature", "estimated"]


class Target(ABC):
    """A 2D data distribution p with a normalised log density.

    Subclasses set the class attributes and implement `log_prob` and `sample`.
    `log_prob` must integrate to one over the plane (not just over the box), so
    that E_p[log p − log q] is a true KL divergence.
    """

    name: str
    description: str
    box: Box  # holds at least 99.9 % of the mass
    density_known: DensityKnown  # how log_prob is computed
    density_method: str  # one line: the formula or the numerical method
    entropy: float | None  # H(p) in nats
    entropy_method: str
    # `log_prob` is differentiable in x and `reverse_kl_log_prob` finite wherever a model's samples
    # may land, so that a model can be fitted by the reverse KL E_q[log q − log p] (mode seeking)
    reverse_kl: bool = False
    bounded: bool = False  # p = 0 outside the box
    # The parts a target is made of (arms, components, circles), in label order; () when it has
    # none. A labelled target implements `sample_labelled` and `class_log_prob`.
    classes: tuple[str, ...] = ()

    @abstractmethod
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 2) -> (n,) float64, normalised log density."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 2) float32 samples on the CPU, reproducible for a given generator state."""

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 2) float32 samples and (n,) int64 labels, indices into `classes`. The points are
        those `sample` draws from the same generator state."""
        raise NotImplementedError(f"{self.name} is not made of labelled parts")

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x, y) for every class y: x: (n, 2) -> (n, K) float64, whose log-sum-exp over
        y is `log_prob(x)`. The Bayes-optimal classifier is its argmax."""
        raise NotImplementedError(f"{self.name} is not made of labelled parts")

    def reverse_kl_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p for a reverse-KL training loss: finite and differentiable on the whole plane.
        x: (n, 2) -> (n,) float64. Default: `log_prob`, for a density that is positive everywhere."""
        return self.log_prob(x)

    def describe(self) -> dict[str, object]:
        """The facts a table or `genviz list` shows."""
        return {
            "name": self.name,
            "description": self.description,
            "density": self.density_known,
            "density_method": self.density_method,
            "entropy": self.entropy,
            "entropy_method": self.entropy_method,
            "box": self.box.as_list(),
        }


CHUNK = 4096  # query points per block: a (chunk, components) float64 block stays within tens of MB


class IsotropicMixtureTarget(Target):
    """p(x) = Σ_j w_j N(x; c_j, σ² I).

    Subclasses set `centres` (N, 2), `log_weights` (N,) with weights summing to one, and
    `std`. A finite mixture uses it directly; a curve target sets its quadrature nodes as
    centres and the quadrature weights as weights.
    """

    std: float
    centres: torch.Tensor
    log_weights: torch.Tensor
    component_class: torch.Tensor  # (N,) int64: the class of each component, for a labelled target

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        var = self.std**2
        # −|x − c|²/(2σ²) = x·c/σ² − |c|²/(2σ²) − |x|²/(2σ²): one matmul per block, and the
        # last term leaves the logsumexp
        scaled = self.centres.T / var
        bias = self.log_weights - (self.centres**2).sum(1) / (2 * var)
        out = [
            logsumexp(torch.addmm(bias, block, scaled), 1) - (block**2).sum(1) / (2 * var)
            for block in x.split(CHUNK)
        ]
        return torch.cat(out) - math.log(2 * math.pi * var) if out else x.new_zeros(0)

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x, y) = log Σ_{j in class y} w_j N(x; c_j, σ² I), with `component_class` (N,)
        giving each component's class."""
        if not self.classes:
            return super().class_log_prob(x)
        x = x.double()
        var = self.std**2
        scaled = self.centres.T / var
        bias = self.log_weights - (self.centres**2).sum(1) / (2 * var)
        members = [self.component_class == k for k in range(len(self.classes))]
        out = []
        for block in x.split(CHUNK):
            terms = torch.addmm(bias, block, scaled) - (block**2).sum(1, keepdim=True) / (2 * var)
            out.append(torch.stack([logsumexp(terms[:, m], 1) for m in members], 1))
        joint = torch.cat(out) if out else x.new_zeros(0, len(members))
        return joint - math.log(2 * math.pi * var)


class GaussianMixtureTarget(IsotropicMixtureTarget):
    """Equal-weight isotropic Gaussian mixture: exact density."""

    density_known: DensityKnown = "exact"
    density_method = "Gaussian mixture, closed form"
    reverse_kl = True  # positive everywhere; log p by a float64 log-sum-exp stays finite far away

    def __init__(self, centres: list[tuple[float, float]], std: float) -> None:
        self.centres = torch.tensor(centres, dtype=torch.float64)
        self.log_weights = torch.full((len(centres),), -math.log(len(centres)), dtype=torch.float64)
        self.std = std
        self.component_class = torch.arange(len(centres))  # one class per component

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        which = torch.randint(len(self.centres), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.std
        return (self.centres[which] + noise).float(), which
