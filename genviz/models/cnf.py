"""Continuous normalizing flow (FFJORD, Grathwohl et al. 2019), trained by maximum likelihood.

A field v(x, t) carries the base N(0, I) at t = 0 to the data at t = 1 by dx/dt = v(x, t). By the
instantaneous change of variables (Chen et al. 2018),

    log q(x(1)) = log N(x(0); 0, I) − ∫₀¹ div v(x(t), t) dt,

integrated backwards from each data point together with x. In 2D the divergence is exact and
cheap: the network's 2 × 2 Jacobian is carried forward through its layers next to the
activations (forward mode, two tangents), so no second autograd pass and no Hutchinson estimator.

Training backpropagates through a fixed-step RK4 solver (discretise-then-optimise): its cost is
known in advance, unlike an adaptive solver's, which grows as the field sharpens. The kinetic
energy and Jacobian norm penalties of RNODE (Finlay et al. 2020) keep trajectories straight, so
few steps are accurate; the reported density uses more steps than training.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import torch
from torch import nn

from genviz.models.base import (
    Batch,
    EvaluationCost,
    GenerativeModel,
    Range,
    Standardize,
    Step,
    ViewContext,
    ViewControl,
)
from genviz.models.nets import octaves, sinusoids
from genviz.models.ode import rk4_step, sampled_field, standard_normal_log_prob
from genviz.views.layers import Paths, Points, View, box_view

Activation = Literal["tanh", "softplus"]
VIEW_SAMPLES = 600  # samples drawn at the view's time t
VIEW_PATHS = 36  # of which this many are drawn as whole trajectories


class VelocityField(nn.Module):
    """v(x, t): an MLP whose layers are gated and shifted by t (FFJORD's "concat-squash" layers).

    Its input is x with sin and cos of 2^k x (k < frequencies), the coordinate features that let a
    small network draw sharp detail; without them a radially symmetric target such as the rings
    barely moves the field from zero in the first thousand steps. Layer l maps h to
    act((W h + b) ⊙ σ(a_l t + c_l) + d_l t); the output layer has no activation.
    """

    def __init__(self, hidden: tuple[int, ...], activation: Activation, frequencies: int = 0) -> None:
        super().__init__()
        self.register_buffer("omega", octaves(frequencies))
        widths = (2 + 4 * frequencies, *hidden, 2)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        # time terms of every layer at once: rows are (gate slope, gate offset, shift slope)
        self.time = nn.ParameterList(nn.Parameter(torch.zeros(3, b)) for b in widths[1:])
        self.activation = activation

    def _time_terms(self, layer: int, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate and shift of one layer at time t (a scalar). -> ((width,), (width,))"""
        slope, offset, shift = self.time[layer]
        return torch.sigmoid(slope * t + offset), shift * t

    def _act(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The activation and its derivative."""
        if self.activation == "tanh":
            out = torch.tanh(pre)
            return out, 1 - out * out
        return nn.functional.softplus(pre), torch.sigmoid(pre)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """[x, sin ω_k x_j, cos ω_k x_j]. x: (n, 2) -> (n, 2 + 4F)."""
        sin, cos = sinusoids(x, self.omega)
        return torch.cat([x, sin, cos], 1)

    def _features_with_tangent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The features and their derivatives: (n, 2 + 4F) and (n, 2, 2 + 4F), row k = ∂/∂x_k.

        d sin(ω x_j)/dx_k = δ_jk ω cos(ω x_j), and likewise for cos: analytic, no autograd."""
        sin, cos = sinusoids(x, self.omega)  # (n, 2F) each, x₁'s frequencies then x₂'s
        own = torch.eye(2, dtype=x.dtype, device=x.device)
        mask = own.repeat_interleave(len(self.omega), 1)  # (2, 2F): 1 where feature j is of x_k
        omega = self.omega.repeat(2)
        tangent = torch.cat(
            [own.expand(len(x), 2, 2), mask * (omega * cos)[:, None], -mask * (omega * sin)[:, None]], 2
        )
        return torch.cat([x, sin, cos], 1), tangent

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (n, 2), t: () -> v: (n, 2)."""
        h = self._features(x)
        for i, linear in enumerate(self.linears):
            gate, shift = self._time_terms(i, t)
            h = linear(h) * gate + shift
            if i < len(self.linears) - 1:
                h = self._act(h)[0]
        return h

    def with_jacobian(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v(x, t) and its Jacobian ∂v/∂x by forward-mode propagation through the layers.

        x: (n, 2), t: () -> (v: (n, 2), jacobian: (n, 2, 2) with [i, k, j] = ∂v_j/∂x_k)."""
        h, tangent = self._features_with_tangent(x)  # tangent: (n, 2, width), ∂h/∂x_k in row k
        for i, linear in enumerate(self.linears):
            gate, shift = self._time_terms(i, t)
            h = linear(h) * gate + shift
            tangent = (tangent @ linear.weight.T) * gate
            if i < len(self.linears) - 1:
                h, slope = self._act(h)
                tangent = tangent * slope[:, None, :]
        return h, tangent

    def with_divergence(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v(x, t) and its exact divergence. x: (n, 2) -> ((n, 2), (n,))."""
        v, jacobian = self.with_jacobian(x, t)
        return v, jacobian.diagonal(dim1=1, dim2=2).sum(1)


def time_grid(steps: int, reverse: bool = False, device: torch.device | None = None) -> torch.Tensor:
    """steps + 1 uniform times from 0 (base) to 1 (data), or from 1 to 0. -> (steps + 1,)"""
    times = torch.linspace(0.0, 1.0, steps + 1, device=device)
    return times.flip(0) if reverse else times


class CNF(GenerativeModel):
    title = "Continuous normalizing flow (FFJORD)"
    density_kind = "ode"
    branch: ClassVar[str] = "explicit › tractable › change of variables"
    summary = (
        "Grathwohl et al. 2019: a neural ODE carries a Gaussian to the data; "
        "log q integrates the divergence of the velocity field along the path."
    )
    learning_rate: ClassVar[float] = 1e-2
    eval_points: ClassVar[int | None] = 2000
    live_grid: ClassVar[int | None] = 64  # an ODE solve per cell: 64² keeps a live update near 0.3 s
    view_title = "The flow in time: velocity field and trajectories from the Gaussian"
    view_controls = (
        ViewControl(
            "t", "time t (0: Gaussian, 1: data)", 0.0, 1.0, 1.0, 0.05, "where along the flow to look"
        ),
    )

    def __init__(
        self,
        *,
        hidden: Annotated[
            tuple[int, ...], Range(4, 512, max_length=6), "hidden layer widths of the velocity field"
        ] = (64, 64),
        activation: Activation = "tanh",
        frequencies: Annotated[int, Range(0, 8), "Fourier frequencies of x fed to the field (0: x only)"] = 5,
        steps: Annotated[int, Range(1, 64), "RK4 steps through time during training"] = 4,
        eval_steps: Annotated[int, Range(1, 256), "RK4 steps of the reported log density and sampling"] = 12,
        regularization: Annotated[
            float, Range(0.0, 1.0), "weight of the kinetic energy and Jacobian penalties (RNODE)"
        ] = 0.05,
    ) -> None:
        super().__init__()
        self.standardize = Standardize()
        self.field = VelocityField(hidden, activation, frequencies)
        self.steps, self.eval_steps, self.regularization = steps, eval_steps, regularization
        self.density_method = f"exact divergence, RK4 with {eval_steps} steps"

    def evaluation_cost(self) -> EvaluationCost:
        """An RK4 solve per point: 4 field evaluations a step, each carrying the 2 × width Jacobian
        (about 3 passes); training backpropagates through the training solver's steps."""
        steps, solve = self.steps, self.eval_steps
        return EvaluationCost(12 * solve, sample_passes=4 * solve, train_passes=36 * steps)

    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)

    # ------------------------------------------------------------------ likelihood
    def _dynamics(self, state: tuple[torch.Tensor, ...], t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """d/dt of (z, ∫ div v, ∫ |v|², ∫ ‖∂v/∂x‖²_F) along the path."""
        v, jacobian = self.field.with_jacobian(state[0], t)
        divergence = jacobian.diagonal(dim1=1, dim2=2).sum(1)
        return v, divergence, v.pow(2).sum(1), jacobian.pow(2).sum((1, 2))

    def _integrate_back(self, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, ...]:
        """Carry standardised data x: (n, 2) from t = 1 to the base at t = 0.

        -> (log q_z(x): (n,), kinetic energy: (n,), Jacobian penalty: (n,)), the penalties ∫₀¹ dt."""
        zeros = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        state = (x, zeros, zeros, zeros)
        times = time_grid(steps, reverse=True, device=x.device)
        for t, t_next in zip(times[:-1], times[1:], strict=True):
            state = rk4_step(self._dynamics, state, t, t_next - t)
        z, integral, kinetic, frobenius = state  # integral = ∫₁⁰ div v dt = −∫₀¹ div v dt
        return standard_normal_log_prob(z) + integral, -kinetic, -frobenius

    def _log_prob(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        return self._integrate_back(self.standardize(x), steps)[0] + self.standardize.log_det()

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """log q(x) by RK4 with `steps` (default `eval_steps`), for evaluation: the divergence is
        forward mode, so no autograd graph is kept (training goes through `loss`). x: (n, 2) -> (n,)."""
        return self._log_prob(x, steps or self.eval_steps)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood with the training solver, nats per sample."""
        return -self._log_prob(x, self.steps).mean()

    def train_step(self, batch: Batch, step: Step) -> float:
        """One step on NLL + λ (kinetic energy + Jacobian norm); reports the NLL alone."""
        log_q, kinetic, frobenius = self._integrate_back(self.standardize(batch()), self.steps)
        nll = -(log_q + self.standardize.log_det()).mean()
        step("model", nll + self.regularization * (kinetic + frobenius).mean())
        return float(nll.detach())

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def flow_paths(self, z: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Standardised base points z: (n, 2) carried from t = 0 to 1. -> (n, steps + 1, 2)"""
        times = time_grid(steps or self.eval_steps, device=z.device)
        points = [z]
        for t, t_next in zip(times[:-1], times[1:], strict=True):
            points.append(rk4_step(lambda s, tt: (self.field(s[0], tt),), (points[-1],), t, t_next - t)[0])
        return torch.stack(points, 1)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, 2, device=self.device)
        return self.standardize.inverse(self.flow_paths(z)[:, -1])

    # ------------------------------------------------------------------ view
    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        t = float(context.controls.get("t", 1.0))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)
            z = torch.randn(VIEW_SAMPLES, 2, device=self.device)
        paths = self.standardize.inverse(self.flow_paths(z)).cpu()  # (n, s + 1, 2), data units
        tt = torch.tensor(t, device=self.device)
        velocity = self.standardize.vectors_to_data(lambda z: self.field(z, tt))
        return box_view(
            f"velocity field and samples at t = {t:.2f} (0: Gaussian, 1: data)",
            context.box,
            sampled_field(context.box, velocity, "|v| (data units per unit t)"),
            Points(context.data[:400].numpy(), "data", "data_faint"),
            Paths(paths[:VIEW_PATHS].numpy(), "trajectories (t = 0 → 1)"),
            Points(_at_time(paths, t).numpy(), f"samples at t = {t:.2f}"),
        )


def _at_time(paths: torch.Tensor, t: float) -> torch.Tensor:
    """Points of paths: (n, s + 1, 2) at time t ∈ [0, 1], linear between solver steps. -> (n, 2)"""
    position = t * (paths.shape[1] - 1)
    low = min(int(position), paths.shape[1] - 2)
    weight = position - low
    return (1 - weight) * paths[:, low] + weight * paths[:, low + 1]
