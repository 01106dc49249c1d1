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

    @abstractmethod
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 2) -> (n,) float64, normalised log density."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 2) float32 samples on the CPU, reproducible for a given generator state."""

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


class GaussianMixtureTarget(IsotropicMixtureTarget):
    """Equal-weight isotropic Gaussian mixture: exact density."""

    density_known: DensityKnown = "exact"
    density_method = "Gaussian mixture, closed form"

    def __init__(self, centres: list[tuple[float, float]], std: float) -> None:
        self.centres = torch.tensor(centres, dtype=torch.float64)
        self.log_weights = torch.full((len(centres),), -math.log(len(centres)), dtype=torch.float64)
        self.std = std

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        which = torch.randint(len(self.centres), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.std
        return (self.centres[which] + noise).float()
