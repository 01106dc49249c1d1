"""Rezende & Mohamed (2015) test energies U1–U4, as densities on [−4, 4]².

p(z) = exp(−U(z))/Z on the box and 0 outside; Z comes from a midpoint rule on a fine
grid, computed once on first use. Sampling is exact rejection from the uniform on the
box: exp(−U) ≤ 2 for all four energies.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from functools import cached_property

import torch

from genviz.grid import Box, Grid
from genviz.targets.base import DensityKnown, Target

ENVELOPE = 2.0  # exp(−U) ≤ 2: each −log(e^{−a} + e^{−b}) ≥ −log 2, and U2 ≥ 0
CHUNK = 1 << 18  # points per block, about 4 MB of float64 coordinates
BARRIER = 50.0  # nats per squared unit of distance outside the box, in the reverse-KL training loss


def _w1(z1: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * math.pi * z1 / 4)


def _gauss(z: torch.Tensor, scale: float) -> torch.Tensor:
    """−½ (z/scale)²: the log of an unnormalised Gaussian bump."""
    return -0.5 * (z / scale) ** 2


class EnergyTarget(Target):
    """p ∝ exp(−U) on the box [−4, 4]², zero outside."""

    box = Box(-4.0, 4.0, -4.0, 4.0)
    density_known: DensityKnown = "quadrature"
    entropy_method = "quadrature of −p log p on a 4000² midpoint grid over the box"
    reverse_kl = True
    bounded = True

    def __init__(self, nodes: int = 1000) -> None:
        self.nodes = nodes  # midpoint cells per side for the normalising constant
        self.density_method = f"exp(−U)/Z on the box, Z by the midpoint rule on a {nodes}² grid"

    @abstractmethod
    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """z: (n, 2) float64 -> (n,) U(z)."""

    @cached_property
    def log_z(self) -> float:
        """log ∫_box exp(−U), midpoint rule."""
        grid = Grid(self.box, self.nodes, self.nodes)
        neg_u = torch.cat([-self.energy(block) for block in grid.points.split(CHUNK)])
        return grid.log_mass(neg_u)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        inside = self.box.contains(x)
        return torch.where(inside, -self.energy(x) - self.log_z, -math.inf)

    def reverse_kl_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p inside the box; outside, where p = 0 and log p = −∞, log p at the nearest point of
        the box less BARRIER × the squared distance to it: finite, so that a training step survives
        samples far outside, and steep, so that its gradient pulls them back in."""
        x = x.double()
        low = x.new_tensor([self.box.xmin, self.box.ymin])
        high = x.new_tensor([self.box.xmax, self.box.ymax])
        nearest = torch.maximum(torch.minimum(x, high), low)
        return -self.energy(nearest) - self.log_z - BARRIER * ((x - nearest) ** 2).sum(1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        low = torch.tensor([self.box.xmin, self.box.ymin], dtype=torch.float64)
        size = torch.tensor([self.box.xmax, self.box.ymax], dtype=torch.float64) - low
        acceptance = math.exp(self.log_z) / (ENVELOPE * self.box.area)
        kept: list[torch.Tensor] = []
        needed = n
        while needed > 0:
            batch = min(int(needed / acceptance * 1.1) + 64, 4 * CHUNK)
            z = low + size * torch.rand(batch, 2, generator=generator, dtype=torch.float64)
            u = ENVELOPE * torch.rand(batch, generator=generator, dtype=torch.float64)
            z = z[u < torch.exp(-self.energy(z))]
            kept.append(z[:needed])
            needed -= len(kept[-1])
        return torch.cat(kept).float()


class U1(EnergyTarget):
    """A ring cut into two lobes.

    U1 = ½((‖z‖ − 2)/0.4)² − log(e^{−½((z₁−2)/0.6)²} + e^{−½((z₁+2)/0.6)²}).
    """

    name = "U1"
    description = (
        "Rezende & Mohamed U1, p ∝ exp(−U) on [−4, 4]²: U = ½((‖z‖ − 2)/0.4)² "
        "− log(exp(−½((z₁ − 2)/0.6)²) + exp(−½((z₁ + 2)/0.6)²))"
    )
    entropy = 2.660012

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        ring = -_gauss(z.norm(dim=1) - 2, 0.4)
        return ring - torch.logaddexp(_gauss(z[:, 0] - 2, 0.6), _gauss(z[:, 0] + 2, 0.6))


class U2(EnergyTarget):
    """U2 = ½((z₂ − w₁)/0.4)², w₁ = sin(2πz₁/4): a sine wave."""

    name = "U2"
    description = "Rezende & Mohamed U2, p ∝ exp(−U) on [−4, 4]²: U = ½((z₂ − sin(πz₁/2))/0.4)²"
    entropy = 2.582089

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        return -_gauss(z[:, 1] - _w1(z[:, 0]), 0.4)


class U3(EnergyTarget):
    """U3 = −log(e^{−½((z₂−w₁)/0.35)²} + e^{−½((z₂−w₁+w₂)/0.35)²}), w₂ = 3e^{−½((z₁−1)/0.6)²}."""

    name = "U3"
    description = (
        "Rezende & Mohamed U3, p ∝ exp(−U) on [−4, 4]²: U = −log(exp(−½((z₂ − w₁)/0.35)²) "
        "+ exp(−½((z₂ − w₁ + w₂)/0.35)²)), w₁ = sin(2πz₁/4), w₂ = 3 exp(−½((z₁ − 1)/0.6)²)"
    )
    entropy = 2.626707

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        d = z[:, 1] - _w1(z[:, 0])
        w2 = 3 * torch.exp(_gauss(z[:, 0] - 1, 0.6))
        return -torch.logaddexp(_gauss(d, 0.35), _gauss(d + w2, 0.35))


class U4(EnergyTarget):
    """U4 = −log(e^{−½((z₂−w₁)/0.4)²} + e^{−½((z₂−w₁+w₃)/0.35)²}), w₃ = 3σ((z₁−1)/0.3)."""

    name = "U4"
    description = (
        "Rezende & Mohamed U4, p ∝ exp(−U) on [−4, 4]²: U = −log(exp(−½((z₂ − w₁)/0.4)²) "
        "+ exp(−½((z₂ − w₁ + w₃)/0.35)²)), w₁ = sin(2πz₁/4), w₃ = 3σ((z₁ − 1)/0.3)"
    )
    entropy = 2.766181

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        d = z[:, 1] - _w1(z[:, 0])
        w3 = 3 * torch.sigmoid((z[:, 0] - 1) / 0.3)
        return -torch.logaddexp(_gauss(d, 0.4), _gauss(d + w3, 0.35))
