"""Concentric noisy circles, whose density has a closed form through Bessel I₀."""

from __future__ import annotations

import math

import torch

from genviz.grid import Box
from genviz.targets.base import DensityKnown, Target


def log_ring(rho: torch.Tensor, radius: float, std: float) -> torch.Tensor:
    """log density at distance rho from the origin of (R cos φ, R sin φ) + N(0, σ² I), φ ~ U[0, 2π).

    p = exp(−(ρ² + R²)/(2σ²)) I₀(ρR/σ²)/(2πσ²); with i0e(z) = e^{−z} I₀(z) the exponent
    becomes −(ρ − R)²/(2σ²), so nothing overflows.
    """
    var = std**2
    return (
        -((rho - radius) ** 2) / (2 * var)
        + torch.log(torch.special.i0e(rho * radius / var))
        - math.log(2 * math.pi * var)
    )


class RingMixture(Target):
    """Equal-weight mixture of noisy circles centred at the origin."""

    density_known: DensityKnown = "exact"
    density_method = "closed form: circle ⊛ Gaussian = exp(−(ρ² + R²)/(2σ²)) I₀(ρR/σ²)/(2πσ²)"
    entropy_method = "1D quadrature of −p log p · 2πρ dρ (p is radial), 200k midpoints"
    radii: tuple[float, ...]
    std: float

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        rho = x.double().norm(dim=1)
        terms = torch.stack([log_ring(rho, r, self.std) for r in self.radii], 1)
        return torch.logsumexp(terms, 1) - math.log(len(self.radii))

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x, ring) = log_ring − log K: one class per circle."""
        rho = x.double().norm(dim=1)
        terms = torch.stack([log_ring(rho, r, self.std) for r in self.radii], 1)
        return terms - math.log(len(self.radii))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        radii = torch.tensor(self.radii, dtype=torch.float64)
        which = torch.randint(len(self.radii), (n,), generator=generator)
        angle = torch.rand(n, generator=generator, dtype=torch.float64) * 2 * math.pi
        circle = radii[which, None] * torch.stack([angle.cos(), angle.sin()], 1)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.std
        return (circle + noise).float(), which


class Circles(RingMixture):
    """scikit-learn's circles (factor 0.5, noise 0.08) ×3, with uniformly random angles."""

    name = "circles"
    description = (
        "scikit-learn's circles (factor 0.5, noise 0.08) ×3 with uniform angles: "
        "circles of radius 3 and 1.5, equal weights, plus N(0, 0.24² I)"
    )
    box = Box(-3.7, 3.7, -3.7, 3.7)
    entropy = 3.268136
    radii = (3.0, 1.5)
    std = 0.24
    classes = ("outer circle", "inner circle")


class Rings(RingMixture):
    """FFJORD's rings: four circles, uniformly random angles."""

    name = "rings"
    description = "FFJORD's rings: four circles, radii 0.75, 1.5, 2.25, 3, plus N(0, 0.08² I)"
    box = Box(-3.2, 3.2, -3.2, 3.2)
    entropy = 2.623183
    radii = (0.75, 1.5, 2.25, 3.0)
    std = 0.08
    classes = ("r = 0.75", "r = 1.5", "r = 2.25", "r = 3")
