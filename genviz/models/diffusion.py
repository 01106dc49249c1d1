"""Denoising diffusion (Ho et al. 2020): learn to predict the noise added to data.

Forward process: x_t = √ᾱ(t) x_0 + σ(t) ε, σ² = 1 − ᾱ, t ∈ [0, 1] (0: data, 1: noise).
A network ε_θ(x_t, t) is trained by the ε-MSE. The same network defines two models:
- the T-step reverse process p_θ(x_{i−1} | x_i) (ancestral sampling; its variational bound);
- the probability-flow ODE of the continuous-time VP process (Song et al. 2021),
  dx/dt = −½ β(t) (x − ε_θ(x, t) / σ(t)), whose likelihood is exact up to the ODE solver.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

import torch

from genviz.models.base import (
    EvaluationCost,
    GenerativeModel,
    LogLikelihood,
    Range,
    Standardize,
    ViewContext,
    ViewControl,
)
from genviz.models.nets import TimeMLP
from genviz.models.ode import integrate, ode_log_prob, sampled_field, standard_normal_log_prob, time_grid
from genviz.views.layers import Paths, Points, View, box_view

Schedule = Literal["linear", "cosine"]
BETA_MIN, BETA_MAX = 0.1, 20.0  # continuous linear VP schedule (Song et al. 2021): ᾱ(1) = e^−10.05
COSINE_S = 0.008  # Nichol & Dhariwal 2021 offset
LOG_ALPHA_BAR_END = -10.0  # the cosine schedule is stopped where ᾱ = e^−10, like the linear one
T_MIN = 1e-3  # the ODE likelihood starts here: σ(T_MIN) ≈ 0.01 data standard deviations
ODE_STEPS = 16  # RK4 steps of the likelihood and sampling ODE (`time_grid`); 32 move mean log q < 0.001
VIEW_PATHS = 8  # sample paths the view draws
VIEW_PATH_POINTS = 25
VLB_DRAWS = 16  # Monte Carlo draws of (step, noise) per point for the variational bound
Hidden = Annotated[int, Range(16, 512), "width of each hidden layer"]
Depth = Annotated[int, Range(1, 8), "number of hidden layers"]
Frequencies = Annotated[int, Range(0, 10), "sinusoidal features per coordinate: sin, cos of 2^k·x"]


# ---------------------------------------------------------------- noise schedules (pure functions)


def _cosine_end() -> float:
    """The time τ at which the cosine schedule's ᾱ reaches e^LOG_ALPHA_BAR_END; t ∈ [0, 1] maps to [0, τ]."""
    c0 = math.cos(COSINE_S / (1 + COSINE_S) * math.pi / 2)
    return (1 + COSINE_S) * 2 / math.pi * math.acos(c0 * math.exp(LOG_ALPHA_BAR_END / 2)) - COSINE_S


COSINE_END = _cosine_end()


def log_alpha_bar(t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """log ᾱ(t), the log signal variance at time t ∈ [0, 1]; ᾱ(0) = 1."""
    if schedule == "linear":
        return -(BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t**2)
    angle = lambda u: (u * COSINE_END + COSINE_S) / (1 + COSINE_S) * math.pi / 2  # noqa: E731
    return 2 * (torch.cos(angle(t)).log() - math.log(math.cos(angle(0.0))))


def beta(t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """β(t) = −d log ᾱ / dt, the instantaneous noise rate of the VP process."""
    if schedule == "linear":
        return BETA_MIN + (BETA_MAX - BETA_MIN) * t
    angle = (t * COSINE_END + COSINE_S) / (1 + COSINE_S) * math.pi / 2
    return COSINE_END * math.pi / (1 + COSINE_S) * torch.tan(angle)


def discrete_schedule(steps: int, schedule: Schedule) -> dict[str, torch.Tensor]:
    """DDPM's T-step schedule sampled from ᾱ(t) at t_i = i/T; index i = 0..T (entry 0 is data).

    Returns ᾱ_i, α_i = ᾱ_i/ᾱ_{i−1}, β_i = 1 − α_i and the posterior variance
    β̃_i = β_i (1 − ᾱ_{i−1})/(1 − ᾱ_i), each (T + 1,) float64 (entry 0 unused for α, β)."""
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    ab = log_alpha_bar(t, schedule).exp()
    alpha = torch.cat([torch.ones(1, dtype=torch.float64), ab[1:] / ab[:-1]])
    b = 1 - alpha
    tilde = torch.cat([torch.zeros(1, dtype=torch.float64), b[1:] * (1 - ab[:-1]) / (1 - ab[1:])])
    return {"alpha_bar": ab, "alpha": alpha, "beta": b, "beta_tilde": tilde}


# ---------------------------------------------------------------- the family


class DDPM(GenerativeModel):
    title = "Denoising diffusion (DDPM)"
    density_kind = "ode"
    branch: ClassVar[str] = "implicit › Markov chain › diffusion"
    training_loss = "other"
    loss_name = "noise-prediction (ε) mean squared error"
    summary = (
        "Ho et al. 2020: a network learns to predict the noise added to data; "
        "the density is the probability-flow ODE's (Song et al. 2021)."
    )
    learning_rate: ClassVar[float] = 2e-3
    density_method = (
        f"probability-flow ODE of the VP process from t = {T_MIN:g}, exact divergence, "
        f"RK4 with {ODE_STEPS} steps (quadratically spaced)"
    )
    eval_points: ClassVar[int | None] = 2000
    live_grid: ClassVar[int | None] = 64  # an ODE solve per cell: 64² keeps a live update near 0.3 s
    view_title = "Score field and the reverse process"
    view_controls = (
        ViewControl("t", "time t (0 = data, 1 = noise)", 0.0, 1.0, 0.1, 0.01, "noise level of the field"),
    )

    def __init__(
        self,
        *,
        hidden: Hidden = 64,
        depth: Depth = 3,
        frequencies: Frequencies = 6,
        schedule: Schedule = "linear",
        steps: Annotated[int, Range(10, 2000), "T, the number of reverse-process steps"] = 100,
        sampler: Literal["reverse process", "ODE"] = "reverse process",
    ) -> None:
        super().__init__()
        self.schedule, self.steps, self.sampler = schedule, steps, sampler
        self.standardize = Standardize()
        self.eps = TimeMLP(hidden, depth, frequencies, zero_output=True)
        for name, value in discrete_schedule(steps, schedule).items():
            self.register_buffer(name, value.float(), persistent=False)

    def evaluation_cost(self) -> EvaluationCost:
        """The likelihood: an RK4 solve, a forward pass and two vector-Jacobian products per field
        evaluation; the bound: a pass per draw; a sample: a pass per reverse-process step."""
        sampling = self.steps if self.sampler == "reverse process" else 4 * ODE_STEPS
        return EvaluationCost(12 * ODE_STEPS, other_passes=VLB_DRAWS, sample_passes=sampling)

    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)

    def noise_level(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(√ᾱ(t), σ(t)), each shaped like t."""
        log_ab = log_alpha_bar(t, self.schedule)
        return (0.5 * log_ab).exp(), (-torch.expm1(log_ab)).sqrt()

    def predict_noise(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε_θ(z, t) = σ(t) z + f_θ(z, t). z: (n, 2), t: () or (n,) -> (n, 2).

        σ(t) z is the exact E[ε | x_t] when the (standardised) data are N(0, I), so the network
        learns the departure from a Gaussian. With f_θ = 0 at initialisation the probability-flow
        drift −½β (z − σ z − f_θ/σ) starts near zero: an untrained model is a smooth Gaussian, not
        the e^±5 stretch of the drift −½β z, which turns small wiggles of f_θ into spikes of log q."""
        s = self.noise_level(t)[1]
        return (s[:, None] if s.dim() else s) * z + self.eps(z, t)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The ε-MSE, summed over coordinates, at t ~ U(0, 1): DDPM's uniform choice of step
        in the limit T → ∞, which trains the network for every T and for the ODE."""
        x0 = self.standardize(x)
        t = torch.rand(len(x0), device=x0.device)
        noise = torch.randn_like(x0)
        a, s = self.noise_level(t)
        xt = a[:, None] * x0 + s[:, None] * noise
        return (self.predict_noise(xt, t) - noise).pow(2).sum(1).mean()

    # ---------------------------------------------------------------- probability-flow ODE

    def drift(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """dx/dt = −½ β(t) (x − ε_θ(x, t)/σ(t)) = ½ β(t) f_θ(x, t)/σ(t) in standardised
        coordinates: the Gaussian term σ z of ε_θ cancels x. z: (n, 2), t: () -> (n, 2)."""
        return 0.5 * beta(t, self.schedule) / self.noise_level(t)[1] * self.eps(z, t)

    def ode_times(self, steps: int = ODE_STEPS) -> torch.Tensor:
        return time_grid(1.0, T_MIN, steps).to(self.device)

    def ode_log_prob(self, x: torch.Tensor, steps: int = ODE_STEPS) -> torch.Tensor:
        """log q(x) of the probability-flow ODE with `steps` RK4 steps. x: (n, 2) -> (n,)."""
        z = self.standardize(x)
        return ode_log_prob(self.drift, z, self.ode_times(steps)) + self.standardize.log_det()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.ode_log_prob(x)

    # ---------------------------------------------------------------- the T-step reverse process

    def reverse_step(self, z: torch.Tensor, i: int, noise: bool) -> torch.Tensor:
        """x_{i−1} ~ p_θ(· | x_i) = N(μ_θ, β̃_i): Ho et al.'s mean, the posterior variance."""
        t = torch.tensor(i / self.steps, device=z.device)
        coef = self.beta[i] / (1 - self.alpha_bar[i]).sqrt()
        mean = (z - coef * self.predict_noise(z, t)) / self.alpha[i].sqrt()
        return mean + self.beta_tilde[i].sqrt() * torch.randn_like(z) if noise else mean

    @torch.no_grad()
    def sample_paths(self, n: int) -> torch.Tensor:
        """(n, s + 1, 2) standardised paths from noise (index 0) to data, by the chosen sampler."""
        z = torch.randn(n, 2, device=self.device)
        if self.sampler == "ODE":
            return integrate(self.drift, z, self.ode_times().flip(0), path=True)
        path = [z]
        for i in range(self.steps, 0, -1):
            path.append(self.reverse_step(path[-1], i, noise=i > 1))
        return torch.stack(path, 1)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.standardize.inverse(self.sample_paths(n)[:, -1])

    @torch.no_grad()
    def variational_bound(self, x: torch.Tensor, draws: int = VLB_DRAWS) -> torch.Tensor:
        """DDPM's bound log p_θ(x) ≥ −L_T − Σ_{i≥2} L_{i−1} − L_0 on the T-step reverse process,
        per point. L_T is exact; Σ_i is T × the mean of `draws` terms at stratified random steps,
        each with one draw of x_i ~ q(x_i | x_0). x: (n, 2) -> (n,), in data units."""
        x0 = self.standardize(x)
        n, T = len(x0), self.steps
        u = (torch.arange(draws, device=x0.device) + torch.rand(n, draws, device=x0.device)) / draws
        i = (u * T).long().clamp(0, T - 1) + 1  # (n, draws), stratified over 1..T
        terms = torch.stack([self.vlb_terms(x0, i[:, k]) for k in range(draws)], 1)
        return -(self.prior_kl(x0) + T * terms.mean(1)) + self.standardize.log_det()

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """L_T = KL(q(x_T | x_0) ‖ N(0, I)), closed form. x0: (n, 2) -> (n,)."""
        ab = self.alpha_bar[self.steps]
        return 0.5 * ((1 - ab) + ab * x0.pow(2) - 1 - torch.log1p(-ab)).sum(1)

    def vlb_terms(self, x0: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """L_{i−1} at step i per point (i ≥ 2: a Gaussian KL; i = 1: −log of the Gaussian
        decoder N(x_0; μ_θ(x_1), β_1)), at one draw x_i ~ q(x_i | x_0). x0: (n, 2), i: (n,) -> (n,)."""
        ab, a, b, bt = self.alpha_bar[i], self.alpha[i], self.beta[i], self.beta_tilde[i]
        noise = torch.randn_like(x0)
        xi = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * noise
        err = self.predict_noise(xi, i.float() / self.steps) - noise
        sq = err.pow(2).sum(1)
        kl = b**2 / (2 * bt.clamp_min(1e-30) * a * (1 - ab)) * sq  # ‖μ̃ − μ_θ‖² / (2 β̃_i)
        mean = (xi - (b / (1 - ab).sqrt())[:, None] * (err + noise)) / a.sqrt()[:, None]
        decoder = -standard_normal_log_prob((x0 - mean) / b.sqrt()[:, None]) + b.log()  # 2D: log σ² = 2 log σ
        return torch.where(i == 1, decoder, kl)

    def other_log_likelihoods(self, x: torch.Tensor) -> list[LogLikelihood]:
        method = (
            f"lower bound on the log-likelihood of the {self.steps}-step reverse process (a different model "
            f"from the ODE's): L_T exact, the {self.steps} step terms by Monte Carlo, {VLB_DRAWS} stratified "
            "steps per point, L_0 a Gaussian decoder"
        )
        return [LogLikelihood("variational bound", self.variational_bound(x), "bound", method)]

    # ---------------------------------------------------------------- view

    def path_times(self) -> torch.Tensor:
        """The time of each point of `sample_paths`, data end first. -> (s + 1,), on the CPU."""
        if self.sampler == "ODE":
            return self.ode_times().cpu()
        return torch.arange(self.steps + 1) / self.steps

    def view(self, context: ViewContext) -> View:
        t = float(context.controls.get("t", 0.1))
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # the view's noise leaves training's streams alone
            torch.manual_seed(context.seed)
            paths = self.standardize.inverse(self.sample_paths(800).flip(1)).cpu()  # index 0: data
        at_t = paths[:, int((self.path_times() - t).abs().argmin())]
        name = "ODE" if self.sampler == "ODE" else "reverse-process"
        tt = torch.tensor(max(t, T_MIN), device=self.device)
        field = lambda z: -self.predict_noise(z, tt) / self.noise_level(tt)[1]  # noqa: E731
        # a few paths, thinned to about VIEW_PATH_POINTS points: the reverse process is jagged
        stride = max(1, paths.shape[1] // VIEW_PATH_POINTS)
        thinned = torch.cat([paths[:VIEW_PATHS, :-1:stride], paths[:VIEW_PATHS, -1:]], 1)
        return box_view(
            f"score ∇log p_t and {name} samples at t = {t:.2f}",
            context.box,
            sampled_field(context.box, self.standardize.vectors_to_data(field), "|score|"),
            Points(context.data[:400].numpy(), "data", "data_faint"),
            Paths(thinned.numpy(), "paths (data ← noise)", "flow_path"),
            Points(at_t.numpy(), f"samples at t = {t:.2f}", "flow_sample"),
        )
