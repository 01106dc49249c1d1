"""Continuous-time flows in 2D: fixed-step RK4 integration and the exact-divergence likelihood.

A field v(x, t) moves points by dx/dt = v(x, t). If x(t_noise) ~ N(0, I), the density of
x(t_data) follows the instantaneous change of variables (Chen et al. 2018):

    log q(x(t_data)) = log N(x(t_noise); 0, I) − ∫_{t_noise}^{t_data} div v(x(t), t) dt,

integrated backwards from the data point together with x. In 2D the divergence is exact:
one vector-Jacobian product per coordinate, no Hutchinson estimator.

RK4 on a fixed grid is deterministic and costs a known 4 field evaluations per step, which
keeps a live evaluation's time bounded however the field looks mid-training (an adaptive
solver may take hundreds of steps on an untrained field). The grid is warped to put small
steps where the field is sharp: near the data end, where the noise level goes to zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from genviz.grid import Box
from genviz.views.layers import VectorField

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # v(x: (n, 2), t: ()) -> (n, 2)
LOG_2PI = math.log(2 * math.pi)


def time_grid(t_noise: float, t_data: float, steps: int, warp: float = 2.0) -> torch.Tensor:
    """steps + 1 times from t_data to t_noise, spaced as u**warp in the distance from t_data.

    warp > 1 makes the steps near t_data (small noise, sharp field) shorter. -> (steps + 1,)"""
    u = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64) ** warp
    return (t_data + (t_noise - t_data) * u).float()


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I). z: (n, d) -> (n,)."""
    return -0.5 * (z.pow(2).sum(1) + z.shape[1] * LOG_2PI)


def field_and_divergence(field: Field, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v(x, t) and its exact divergence ∂v₁/∂x₁ + ∂v₂/∂x₂ by two vector-Jacobian products.

    x: (n, 2) -> ((n, 2), (n,)), both detached. Valid for any field that treats points
    independently (each output row depends on its own input row only)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = field(x, t)
        d1 = torch.autograd.grad(v[:, 0].sum(), x, retain_graph=True)[0][:, 0]
        d2 = torch.autograd.grad(v[:, 1].sum(), x)[0][:, 1]
    return v.detach(), d1 + d2


def rk4_step(f: Callable, state: tuple[torch.Tensor, ...], t: torch.Tensor, h: torch.Tensor) -> tuple:
    """One classical Runge–Kutta step of d(state)/dt = f(state, t) for a tuple of tensors."""

    def moved(k: tuple, scale: torch.Tensor) -> tuple:
        return tuple(s + scale * d for s, d in zip(state, k, strict=True))

    k1 = f(state, t)
    k2 = f(moved(k1, h / 2), t + h / 2)
    k3 = f(moved(k2, h / 2), t + h / 2)
    k4 = f(moved(k3, h), t + h)
    return tuple(
        s + h / 6 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(state, k1, k2, k3, k4, strict=True)
    )


@torch.no_grad()
def integrate(field: Field, x: torch.Tensor, times: torch.Tensor, *, path: bool = False) -> torch.Tensor:
    """Carry x along dx/dt = v(x, t) through `times` by RK4.

    x: (n, 2); times: (s + 1,) -> (n, 2) the end points, or (n, s + 1, 2) the whole paths."""
    f = lambda state, t: (field(state[0], t),)  # noqa: E731
    points = [x]
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        points.append(rk4_step(f, (points[-1],), t, t_next - t)[0])
    return torch.stack(points, 1) if path else points[-1]


@torch.no_grad()
def ode_log_prob(field: Field, x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """log q(x) of the flow that carries N(0, I) at times[-1] to the data at times[0].

    x: (n, 2) -> (n,). Integrates (x, ∫ div v dt) from times[0] to times[-1] by RK4."""

    def f(state: tuple, t: torch.Tensor) -> tuple:
        return field_and_divergence(field, state[0], t)

    state = (x, torch.zeros(len(x), device=x.device, dtype=x.dtype))
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        state = rk4_step(f, state, t, t_next - t)
    z, integral = state  # integral = ∫_{data}^{noise} div v dt = −∫_{noise}^{data} div v dt
    return standard_normal_log_prob(z) + integral


def sampled_field(
    box: Box, vectors_at: Callable[[torch.Tensor], torch.Tensor], name: str, *, n: int = 17
) -> VectorField:
    """A field's vectors at the centres of an n × n grid over the box, for a view.

    `vectors_at` maps (m, 2) float32 CPU points to (m, 2) vectors in data units, on any device."""
    xs = np.linspace(box.xmin, box.xmax, 2 * n + 1)[1::2]
    ys = np.linspace(box.ymin, box.ymax, 2 * n + 1)[1::2]
    points = torch.tensor(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2), dtype=torch.float32)
    with torch.no_grad():
        vectors = vectors_at(points).float().cpu()
    return VectorField(xs, ys, vectors.reshape(n, n, 2).numpy(), name)
