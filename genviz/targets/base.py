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


class GaussianMixtureTarget(Target):
    """Equal-weight isotropic Gaussian mixture: exact density."""

    density_known: DensityKnown = "exact"
    density_method = "Gaussian mixture, closed form"

    def __init__(self, centres: list[tuple[float, float]], std: float) -> None:
        self.centres = torch.tensor(centres, dtype=torch.float64)
        self.std = std

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        d2 = ((x.double()[:, None, :] - self.centres[None]) ** 2).sum(-1)
        log_kernel = -0.5 * d2 / self.std**2 - math.log(2 * math.pi * self.std**2)
        return logsumexp(log_kernel, 1) - math.log(len(self.centres))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        which = torch.randint(len(self.centres), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.std
        return (self.centres[which] + noise).float()
