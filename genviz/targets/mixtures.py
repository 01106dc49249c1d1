"""Targets with closed-form densities: Gaussians, mixtures, banana, checkerboard."""

from __future__ import annotations

import math

import torch

from genviz.grid import Box
from genviz.targets.base import DensityKnown, GaussianMixtureTarget, Target

LOG_2PI = math.log(2 * math.pi)


class EightGaussians(GaussianMixtureTarget):
    name = "8gaussians"
    description = (
        "FFJORD's 8 Gaussians: centres at radius 4 on the 8 compass directions, "
        "noise std 0.5, everything divided by 1.414"
    )
    box = Box(-4.5, 4.5, -4.5, 4.5)
    entropy = 2.831880
    entropy_method = "quadrature of −p log p on a 3000² grid over [−7, 7]²"
    classes = ("E", "W", "N", "S", "NE", "SE", "NW", "SW")  # the compass direction of each component

    def __init__(self) -> None:
        s = 1 / math.sqrt(2)
        directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]
        super().__init__([(4 * a / 1.414, 4 * b / 1.414) for a, b in directions], 0.5 / 1.414)


class TwentyFiveGaussians(GaussianMixtureTarget):
    name = "25gaussians"
    description = "25 Gaussians, std 0.2, centred on the grid {−4, −2, 0, 2, 4}², equal weights"
    box = Box(-5.0, 5.0, -5.0, 5.0)
    entropy = 1.0 + math.log(2 * math.pi * 0.2**2) + math.log(25)
    entropy_method = "closed form: the components do not overlap (10σ apart), H = log 25 + log(2πeσ²)"
    classes = tuple(f"({2 * i}, {2 * j})" for i in range(-2, 3) for j in range(-2, 3))  # each centre

    def __init__(self) -> None:
        super().__init__([(2.0 * i, 2.0 * j) for i in range(-2, 3) for j in range(-2, 3)], 0.2)


class TwoGaussians(GaussianMixtureTarget):
    """Two far-apart Gaussians of unequal weight: the forward KL covers both modes, the reverse KL
    settles on one. The heavier sits nearer the box's centre, where a reverse-KL fit starts, so that
    its fit lands on that mode rather than on the broad local minimum that straddles both."""

    name = "2gaussians"
    description = (
        "two Gaussians, std 0.5, at (−2, 0) with weight 2/3 and at (4, 0) with weight 1/3 (12 σ apart)"
    )
    box = Box(-6.0, 6.0, -3.0, 3.0)
    weights = (2 / 3, 1 / 3)
    entropy = -sum(w * math.log(w) for w in weights) + 1.0 + math.log(2 * math.pi * 0.5**2)
    entropy_method = "closed form: the components do not overlap (12σ apart), H = −Σ w log w + log(2πeσ²)"

    def __init__(self) -> None:
        super().__init__([(-2.0, 0.0), (4.0, 0.0)], 0.5)
        self.log_weights = torch.tensor(self.weights, dtype=torch.float64).log()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        which = (torch.rand(n, generator=generator, dtype=torch.float64) >= self.weights[0]).long()
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.std
        return (self.centres[which] + noise).float(), which


class CorrelatedGaussian(Target):
    """A single Gaussian with correlation 0.8: the one case every model should nail."""

    name = "gaussian"
    description = "Gaussian, mean (0.5, −0.5), std (1.0, 0.8), correlation 0.8"
    box = Box(-4.0, 5.0, -4.5, 3.5)
    density_known: DensityKnown = "exact"
    density_method = "Gaussian, closed form"
    entropy_method = "closed form, ½ log det(2πe Σ)"

    def __init__(self) -> None:
        mean = torch.tensor([0.5, -0.5], dtype=torch.float64)
        std = torch.tensor([1.0, 0.8], dtype=torch.float64)
        corr = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
        cov = corr * std[:, None] * std[None, :]
        self.dist = torch.distributions.MultivariateNormal(mean, cov)
        self.entropy = float(self.dist.entropy())

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(x.double())

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.dist.loc + z @ self.dist.scale_tril.T).float()


class Banana(Target):
    """A Gaussian bent by a shear with unit Jacobian, so its entropy is a Gaussian's."""

    name = "banana"
    description = "x₁ ~ N(0, 1), x₂ | x₁ ~ N(0.5 (x₁² − 1) − 1, 0.5²)"
    box = Box(-4.0, 4.0, -3.5, 8.0)
    density_known: DensityKnown = "exact"
    density_method = "closed form (sheared Gaussian)"
    entropy = math.log(2 * math.pi * math.e * 1.0 * 0.5)
    entropy_method = "closed form: the shear has unit Jacobian, H = log(2πe σ₁σ₂)"
    std1, std2, bend, shift = 1.0, 0.5, 0.5, -1.0

    def _mean2(self, x1: torch.Tensor) -> torch.Tensor:
        return self.bend * (x1**2 - self.std1**2) + self.shift

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        z1 = x[:, 0] / self.std1
        z2 = (x[:, 1] - self._mean2(x[:, 0])) / self.std2
        return -0.5 * (z1**2 + z2**2) - LOG_2PI - math.log(self.std1 * self.std2)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        x1 = z[:, 0] * self.std1
        return torch.stack([x1, self._mean2(x1) + z[:, 1] * self.std2], 1).float()


class Checkerboard(Target):
    """FFJORD's checkerboard: uniform on the 8 dark 2×2 squares of [−4, 4]²."""

    name = "checkerboard"
    description = "uniform on the 8 dark 2×2 squares of [−4, 4]² (density 1/32)"
    box = Box(-4.0, 4.0, -4.0, 4.0)
    density_known: DensityKnown = "exact"
    density_method = "closed form, 1/32 on the dark squares"
    entropy = math.log(32)
    entropy_method = "closed form, log 32"

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        cells = torch.floor(x / 2)
        dark = (cells.sum(1) % 2 == 0) & (x.abs() < 4).all(1)
        inside = torch.full_like(x[:, 0], -math.log(32))
        return torch.where(dark, inside, torch.full_like(inside, -math.inf))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        x1 = torch.rand(n, generator=generator, dtype=torch.float64) * 4 - 2
        low = torch.randint(0, 2, (n,), generator=generator).double() * 2
        x2 = torch.rand(n, generator=generator, dtype=torch.float64) - low + torch.floor(x1) % 2
        return (torch.stack([x1, x2], 1) * 2).float()
