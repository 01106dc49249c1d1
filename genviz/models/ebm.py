"""Energy-based model trained by Langevin MCMC (explicit density, approximate: Markov chain).

q(x) ∝ exp(−E(z)), z = standardised x, with E(z) = f_θ(z) + λ|z|²: an MLP plus a weak
quadratic that keeps q normalisable on the whole plane. The maximum-likelihood gradient
∇θ E_data[E] − ∇θ E_q[E] needs samples of q; they come from Langevin chains

    z ← z − s ∇E(z) + noise · √(2s) ξ,   ξ ~ N(0, I),

kept between training steps (persistent contrastive divergence, Tieleman 2008) with a
fraction restarted from uniform noise each step, as in Du & Mordatch 2019. The loss is
mean E(data) − mean E(chains) + α (E(data)² + E(chains)²), the last term keeping the
energies near zero. The partition function is left to the metrics (quadrature on the box);
`sample` draws from q normalised on a grid, so overlays show q itself, not the chains.

The unadjusted recursion's stationary law is wider than q in a well narrower than about √s, and
an energy trained against such chains drifts away from the data where they cannot follow: on
rings (wells 0.05 standardised units wide) KL 0.64 at step 1,800 of 6,000 and 1.47 at the end, q
holding over 80% of its mass on the outer ring by then (the data 26%). `metropolis` adds the
Metropolis test (MALA, Roberts & Tweedie 1996), whose chains sample q at any step size; at a step
of 0.01 it ends rings at 0.62 but learns slower elsewhere (2spirals: 0.36 against 0.17), so it is
not the default. Contrastive training is no descent on the KL either way: the Trainer keeps the
best state (`keep_best`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Literal

import torch

from genviz.grid import Box
from genviz.models.base import (
    Batch,
    EvaluationCost,
    GenerativeModel,
    ParameterGroup,
    Range,
    Standardize,
    Step,
    ViewContext,
)
from genviz.models.nets import mlp
from genviz.views.layers import Heatmap, Paths, Points, View, box_view

Energy = Callable[[torch.Tensor], torch.Tensor]  # z: (n, 2) -> (n,)
Negatives = Literal["persistent", "short-run"]
SAMPLE_RESOLUTION = 256  # grid cells per side for `sample`
BOX_MARGIN = 0.1  # the sampling box: the data's bounding box widened by this share of its size
TRAILS = 12  # chains whose Langevin path of the last step the view draws
VIEW_RESOLUTION = 96
VIEW_CHAINS = 512
VIEW_ENERGY_CAP = 12.0  # nats above the minimum where the heat map's colour scale saturates
MAX_DRIFT = 0.5  # per-step cap on |s ∇E| in standardised units: a guard against a steep new wall


def capped_drift(grad: torch.Tensor, step_size: float) -> torch.Tensor:
    """s ∇E, each row's norm capped at MAX_DRIFT. grad: (n, 2) -> (n, 2)."""
    drift = step_size * grad
    return drift * (MAX_DRIFT / drift.norm(dim=1, keepdim=True).clamp_min(MAX_DRIFT))


def energy_and_grad(energy: Energy, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E(z) and ∇E(z), detached. z: (n, 2) -> ((n,), (n, 2))."""
    x = z.detach().requires_grad_(True)  # a fresh leaf: the caller's tensors stay detached
    with torch.enable_grad():
        e = energy(x)
        grad = torch.autograd.grad(e.sum(), x)[0]
    return e.detach(), grad


def langevin(
    energy: Energy,
    z: torch.Tensor,
    steps: int,
    step_size: float,
    noise: float = 1.0,
    low: torch.Tensor | None = None,
    high: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unadjusted Langevin: z ← z − s ∇E(z) + noise·√(2s) ξ, `steps` times, optionally clamped
    to the box [low, high]. noise = 1 samples exp(−E) as s → 0; noise < 1 samples a colder
    exp(−E / noise²). z: (n, 2) -> (steps + 1, n, 2), the whole path, detached."""
    path = [z.detach()]
    for _ in range(steps):
        x = path[-1] - capped_drift(energy_and_grad(energy, path[-1])[1], step_size)
        x = x + noise * math.sqrt(2 * step_size) * torch.randn_like(x)
        path.append(x if low is None else torch.maximum(torch.minimum(x, high), low))
    return torch.stack(path)


def mala(
    energy: Energy,
    z: torch.Tensor,
    steps: int,
    step_size: float,
    noise: float = 1.0,
    low: torch.Tensor | None = None,
    high: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """Metropolis-adjusted Langevin: propose z' = z − d(z) + σ ξ, σ = noise·√(2s), d the capped
    drift s ∇E, and accept with probability min(1, π(z') K(z | z') / (π(z) K(z' | z))), where
    π ∝ exp(−E / noise²) on the box [low, high] (a proposal outside it is refused) and
    K(b | a) = N(b; a − d(a), σ² I). π is then the chains' stationary law for any step size.
    noise > 0. z: (n, 2) -> (the path (steps + 1, n, 2), detached; the share of proposals accepted)."""
    sigma = noise * math.sqrt(2 * step_size)
    e, grad = energy_and_grad(energy, z)
    path, accepted = [z.detach()], torch.zeros((), device=z.device)
    for _ in range(steps):
        x, forward = path[-1], capped_drift(grad, step_size)
        y = x - forward + sigma * torch.randn_like(x)
        e_y, grad_y = energy_and_grad(energy, y)
        backward = capped_drift(grad_y, step_size)
        log_k = ((y - x + forward).pow(2).sum(1) - (x - y + backward).pow(2).sum(1)) / (2 * sigma**2)
        accept = torch.rand_like(e).log() < (e - e_y) / noise**2 + log_k
        if low is not None:
            accept &= ((y >= low) & (y <= high)).all(1)
        path.append(torch.where(accept[:, None], y, x))
        e, grad = torch.where(accept, e_y, e), torch.where(accept[:, None], grad_y, grad)
        accepted += accept.float().mean()
    return torch.stack(path), float(accepted) / max(steps, 1)


def contrastive_loss(e_data: torch.Tensor, e_neg: torch.Tensor, alpha: float) -> torch.Tensor:
    """mean E(data) − mean E(negatives) + α mean(E(data)² + E(negatives)²). Both (n,)."""
    return e_data.mean() - e_neg.mean() + alpha * (e_data.pow(2).mean() + e_neg.pow(2).mean())


class EBM(GenerativeModel):
    title = "Energy-based model (Langevin MCMC)"
    density_kind = "unnormalised"
    branch = "explicit › approximate › Markov chain"
    training_loss = "other"
    loss_name = "contrastive energy loss against the Langevin chains"
    summary = (
        "Du & Mordatch 2019: an MLP energy trained by contrastive divergence against persistent "
        "Langevin chains; samples drawn from q normalised on a grid over the data's box."
    )
    learning_rate = 3e-3
    view_title = "Energy landscape and Langevin chains"
    keep_best = True  # contrastive training is no descent on the KL: the Trainer keeps the best state

    # Defaults chosen for KL per CPU second on 8gaussians: a (64, 64) net with 5 Langevin steps per
    # update beats (128, 128) with 10 in equal time (more, cheaper updates). Without the E² term
    # (α = 0 or 0.01) the energies wander and training is slower; α = 0.3 flattens q. With
    # `metropolis`, s = 0.01 learns a little faster than 0.005 (and 0.02 no faster).
    def __init__(
        self,
        *,
        hidden: Annotated[
            tuple[int, ...], Range(4, 1024, max_length=8), "hidden widths of the energy MLP"
        ] = (64, 64),
        chains: Annotated[int, Range(16, 8192), "number of Langevin chains"] = 1024,
        negatives: Negatives = "persistent",
        langevin_steps: Annotated[int, Range(1, 200), "Langevin steps per training step"] = 5,
        step_size: Annotated[float, Range(1e-5, 0.1, log=True), "Langevin step s (standardised)"] = 0.005,
        noise: Annotated[float, Range(0.0, 2.0), "noise scale relative to exact Langevin's √(2s)"] = 1.0,
        metropolis: Annotated[bool, "accept or reject each Langevin step (MALA), so chains sample q"] = False,
        reinit: Annotated[float, Range(0.0, 1.0), "share of chains restarted from noise"] = 0.05,
        alpha: Annotated[float, Range(0.0, 10.0), "weight of the E² regulariser"] = 0.1,
        confine: Annotated[float, Range(0.0, 10.0), "λ of the confining term λ|z|²"] = 0.1,
    ) -> None:
        super().__init__()
        self.negatives, self.langevin_steps, self.step_size = negatives, langevin_steps, step_size
        self.noise, self.reinit, self.alpha, self.confine = noise, reinit, alpha, confine
        self.metropolis = metropolis
        self.acceptance: float | None = None  # the share of MALA proposals the last update accepted
        self.standardize = Standardize()
        # SiLU: smooth, so Langevin sees a smooth gradient; a zero head: q starts as the quadratic's Gaussian
        self.net = mlp(2, hidden, 1, head="zero")
        self.register_buffer("sample_box", torch.tensor([-3.0, 3.0, -3.0, 3.0]))  # data units
        self.register_buffer("chains", torch.zeros(chains, 2))  # standardised units
        self.register_buffer("trails", torch.zeros(TRAILS, langevin_steps + 1, 2))

    # ---------------------------------------------------------------- density
    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """E(z) = f_θ(z) + λ|z|². z: (n, 2) standardised -> (n,)."""
        return self.net(z).squeeze(-1) + self.confine * z.pow(2).sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised: −E(z) + log|dz/dx|. x: (n, 2) -> (n,)."""
        return -self.energy(self.standardize(x)) + self.standardize.log_det()

    def evaluation_cost(self) -> EvaluationCost:
        """A step moves every chain `langevin_steps` times, a gradient of the energy each (3 passes)."""
        chains = len(self.chains)
        return EvaluationCost(sample_passes=0, step_passes=3 * chains * (self.langevin_steps + 1))

    @torch.no_grad()
    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)
        low, high = x.min(0).values, x.max(0).values
        pad = BOX_MARGIN * (high - low)
        self.sample_box.copy_(
            torch.stack([low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1]])
        )
        self.chains.copy_(self._noise(len(self.chains)))
        self.trails.copy_(self.chains[:TRAILS, None].expand_as(self.trails))

    def box(self) -> Box:
        """Where `sample` draws from and new chains start: the data's box, widened."""
        return Box(*self.sample_box.tolist())

    def _z_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.sample_box
        low = self.standardize(torch.stack([b[0], b[2]])[None])[0]
        high = self.standardize(torch.stack([b[1], b[3]])[None])[0]
        return low, high

    def _noise(self, n: int) -> torch.Tensor:
        """(n, 2) standardised points uniform over the sampling box."""
        low, high = self._z_bounds()
        return low + (high - low) * torch.rand(n, 2, device=low.device)

    # --------------------------------------------------------------- training
    def parameter_groups(self) -> dict[str, ParameterGroup]:
        return {"energy": ParameterGroup(list(self.net.parameters()), 1.0, (0.5, 0.999))}

    @torch.no_grad()
    def advance_chains(self) -> torch.Tensor:
        """Restart some chains from noise (all of them for short-run), run the Langevin steps
        (Metropolis-adjusted unless `metropolis` is off), store the chains and the trails of the
        first few. -> (chains, 2) standardised."""
        start = self.chains.clone()
        if self.negatives == "short-run":
            start = self._noise(len(start))
        else:
            fresh = torch.rand(len(start), device=start.device) < self.reinit
            start[fresh] = self._noise(int(fresh.sum()))
        low, high = self._z_bounds()
        args = (self.energy, start, self.langevin_steps, self.step_size, self.noise, low, high)
        if self.metropolis and self.noise > 0:  # with no noise the chains descend: nothing to correct
            path, self.acceptance = mala(*args)
        else:
            path = langevin(*args)
        self.chains.copy_(path[-1])
        self.trails.copy_(path[:, :TRAILS].transpose(0, 1))
        return path[-1]

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The contrastive loss of x against the current chains (which it does not move)."""
        return contrastive_loss(self.energy(self.standardize(x)), self.energy(self.chains), self.alpha)

    def train_step(self, batch: Batch, step: Step) -> float:
        negatives = self.advance_chains()
        e_data = self.energy(self.standardize(batch()))
        return step("energy", contrastive_loss(e_data, self.energy(negatives), self.alpha))

    # ---------------------------------------------------------------- samples
    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Exact up to the grid cell: pick cells of a grid over the sampling box with probability
        ∝ q · area (equal areas), then a uniform point within the cell. -> (n, 2)."""
        grid = self.box().grid(SAMPLE_RESOLUTION)
        points = grid.points.to(self.device, torch.float32)
        cells = torch.multinomial(torch.softmax(self.log_prob(points), 0), n, replacement=True)
        dx = (grid.box.xmax - grid.box.xmin) / grid.m
        dy = (grid.box.ymax - grid.box.ymin) / grid.k
        jitter = (torch.rand(n, 2, device=self.device) - 0.5) * torch.tensor([dx, dy], device=self.device)
        return points[cells] + jitter

    # ------------------------------------------------------------------- view
    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        """E(x) over the box (capped for contrast), the chains and a few Langevin trails."""
        grid = context.box.grid(VIEW_RESOLUTION)
        energy = -self.log_prob(grid.points.to(self.device, torch.float32)).cpu()
        energy = (energy - energy.min()).clamp_max(VIEW_ENERGY_CAP)
        name = f"E − min E (capped at {VIEW_ENERGY_CAP:g})"
        chains = self.standardize.inverse(self.chains[:VIEW_CHAINS]).cpu().numpy()
        trails = self.standardize.inverse(self.trails).cpu().numpy()
        accepted = "" if self.acceptance is None else f" ({self.acceptance:.0%} of proposals accepted)"
        return box_view(
            self.view_title,
            context.box,
            Heatmap(grid.x.numpy(), grid.y.numpy(), grid.reshape(energy).numpy(), name, "energy"),
            Points(chains, f"Langevin chains ({min(VIEW_CHAINS, len(self.chains))} shown)", "chain"),
            Paths(trails, f"last {self.langevin_steps} Langevin steps of {TRAILS} chains{accepted}"),
        )
