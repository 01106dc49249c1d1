"""The networks the families share: an MLP, Fourier features of coordinates, a time-conditioned MLP.

Each builder creates its layers in order, input to output, so a family's seed fixes its initial
weights; the module layouts (and so the saved state-dict names) are the families' own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

Head = Literal["default", "small", "zero"]
TIME_OMEGA = 30.0  # highest time frequency: the field must vary slowly in t for a few-step ODE solver


def mlp(
    inputs: int,
    hidden: tuple[int, ...],
    outputs: int,
    *,
    activation: Callable[[], nn.Module] = nn.SiLU,
    head: Head = "default",
) -> nn.Sequential:
    """inputs -> hidden widths -> outputs, `activation()` after each hidden layer.

    head: "default" keeps torch's initialisation of the output layer; "small" scales its weights
    by 0.1 and zeroes its bias (the output starts near a bias the family sets from data); "zero"
    zeroes it (the output starts at exactly zero: the family's closed-form part alone)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), activation()]
        inputs = width
    last = nn.Linear(inputs, outputs)
    with torch.no_grad():
        if head == "small":
            last.weight.mul_(0.1)
            last.bias.zero_()
        elif head == "zero":
            last.weight.zero_()
            last.bias.zero_()
    return nn.Sequential(*layers, last)


def octaves(frequencies: int) -> torch.Tensor:
    """ω_k = 2^k for k < frequencies. -> (frequencies,) float32"""
    return 2.0 ** torch.arange(frequencies, dtype=torch.float32)


def sinusoids(x: torch.Tensor, omega: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sin and cos of ω_k x_j, each (n, d·F), x_j's F frequencies side by side. x: (n, d), omega: (F,)."""
    angles = (x[:, :, None] * omega).flatten(1)
    return angles.sin(), angles.cos()


class FourierFeatures(nn.Module):
    """z₁ -> (z₁, cos ω_j z₁, sin ω_j z₁) with ω_j = 2^j, j < frequencies. z1: (n,) -> (n, 1 + 2F)."""

    def __init__(self, frequencies: int) -> None:
        super().__init__()
        self.register_buffer("omega", octaves(frequencies))
        self.size = 1 + 2 * frequencies

    def forward(self, z1: torch.Tensor) -> torch.Tensor:
        sin, cos = sinusoids(z1[:, None], self.omega)
        return torch.cat([z1[:, None], cos, sin], dim=1)


class TimeMLP(nn.Module):
    """f(x, t): (n, 2), () or (n,) -> (n, 2), an MLP on [x, sin/cos(2^k x), sin/cos(ω t)].

    The coordinate features let a small MLP draw sharp detail (as in tiny-diffusion);
    SiLU keeps the field smooth, which the ODE solver and the divergence need."""

    def __init__(
        self,
        hidden: int,
        depth: int,
        frequencies: int,
        time_features: int = 16,
        max_omega: float = TIME_OMEGA,
        zero_output: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("freq", octaves(frequencies))
        omega = torch.exp(torch.linspace(0.0, math.log(max_omega), time_features // 2))
        self.register_buffer("omega", omega)
        width = 2 + 4 * frequencies + time_features
        # f = 0 at first when zero_output: the family's closed-form Gaussian term alone
        self.net = mlp(width, (hidden,) * depth, 2, head="zero" if zero_output else "default")

    def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[x, sin(2^k x), cos(2^k x), sin(ω t), cos(ω t)]. x: (n, 2), t: () or (n,) -> (n, width)."""
        sin, cos = sinusoids(x, self.freq)
        time_sin, time_cos = sinusoids(t.to(x.dtype).expand(len(x))[:, None], self.omega)
        return torch.cat([x, sin, cos, time_sin, time_cos], 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(x, t))
