"""Generative stochastic network: the Markov chain of a denoising autoencoder (implicit, Markov chain).

Bengio, Yao, Alain & Vincent 2013 ("Generalized denoising auto-encoders as generative models") and
Bengio et al. 2014 (GSN). In standardised coordinates z, a fixed corruption

    C(z̃ | z) = N(z̃; z, σ² I)

and a learned reconstruction P_θ(z | z̃) define the chain z → z̃ ~ C(·|z) → z ~ P_θ(·|z̃) → …
If P_θ is the true posterior p(z | z̃) of the data under C, the data distribution is a stationary
law of the chain; the model *is* the chain's stationary distribution, which has no closed form.

P_θ(· | z̃) is a mixture of K full-covariance Gaussians whose weights, means (as offsets from z̃)
and Cholesky factors an MLP reads from z̃ (a mixture density network, Bishop 1994). A single
Gaussian is the classic choice, but once σ is large enough for the chain to hop between modes the
true posterior p(z | z̃) is multimodal (z̃ between two of 8gaussians' modes, near a checkerboard
corner); a single Gaussian then averages the modes and the chain fills the gaps between them.

Training maximises log P_θ(x | x̃) on pairs (x from the data, x̃ = its corruption). The loss is that
reconstruction log-likelihood's negative, in nats per sample in data units: it is *not* the
model's NLL, which only the metrics' sample-based estimate reports.
"""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

import torch
import torch.nn.functional as F

from genviz.models.base import EvaluationCost, GenerativeModel, Range, Standardize, ViewContext, ViewControl
from genviz.models.nets import mlp
from genviz.views.layers import Arrows, Heatmap, Paths, Points, View, box_view

LOG_2PI = math.log(2 * math.pi)
MIN_LOG_SD = -6.0  # standardised units: floor on a component's scale, so none collapses onto a point
MAX_CORRELATION = 0.995
VIEW_CHAINS = 3  # chains whose walk the view draws
VIEW_STATES = 800  # current states of other chains, as points
VIEW_GRID = 80  # heat-map cells along each side
VIEW_ARROWS = 14  # displacement arrows along each side


class Mixture(NamedTuple):
    """A batch of 2D Gaussian mixtures: row i is P(· | z̃_i).

    logits: (n, K); means: (..., 2); log_sd: (..., 2); rho: (...) correlations in (−1, 1), where
    ... is (n, K) for the whole mixture or (n,) for one chosen component per row."""

    logits: torch.Tensor
    means: torch.Tensor
    log_sd: torch.Tensor
    rho: torch.Tensor

    @staticmethod
    def from_raw(raw: torch.Tensor, centre: torch.Tensor) -> Mixture:
        """raw: (..., 6) = [logit, Δμ₁, Δμ₂, s₁, s₂, r] per component, centre: (n, 2) z̃.
        Means are offsets from z̃; scales are floored softly at MIN_LOG_SD."""
        mid = centre[:, None, :] if raw.dim() == 3 else centre
        log_sd = MIN_LOG_SD + F.softplus(raw[..., 3:5] - MIN_LOG_SD)
        return Mixture(raw[..., 0], mid + raw[..., 1:3], log_sd, MAX_CORRELATION * torch.tanh(raw[..., 5]))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log Σ_k w_k N(z; μ_k, Σ_k), Σ_k = L Lᵀ with L = [[s₁, 0], [ρ s₂, s₂ √(1−ρ²)]].

        z: (n, 2) -> (n,)."""
        d = z[:, None, :] - self.means
        sd = self.log_sd.exp()
        u1 = d[..., 0] / sd[..., 0]
        root = torch.sqrt(1 - self.rho.pow(2))
        u2 = (d[..., 1] / sd[..., 1] - self.rho * u1) / root
        log_n = -0.5 * (u1.pow(2) + u2.pow(2)) - self.log_sd.sum(-1) - root.log() - LOG_2PI
        return torch.logsumexp(F.log_softmax(self.logits, -1) + log_n, -1)

    def gaussian_sample(self) -> torch.Tensor:
        """μ + L ε for components of shape (n,) (one chosen per row) -> (n, 2)."""
        sd, rho, e = self.log_sd.exp(), self.rho, torch.randn_like(self.means)
        dx = sd[:, 0] * e[:, 0]
        dy = sd[:, 1] * (rho * e[:, 0] + torch.sqrt(1 - rho.pow(2)) * e[:, 1])
        return self.means + torch.stack([dx, dy], -1)


def sample_raw(raw: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """One draw from each row's mixture: a component by the Gumbel-max trick, then only that
    component is transformed and sampled (the cheap path the chain runs). raw: (n, K, 6) -> (n, 2)."""
    logits = raw[..., 0]
    gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp_min(1e-20)))
    k = (logits + gumbel).argmax(-1)
    chosen = raw[torch.arange(len(raw), device=raw.device), k]  # (n, 6)
    return Mixture.from_raw(chosen, centre).gaussian_sample()


class GSN(GenerativeModel):
    title = "Generative stochastic network (denoising chain)"
    density_kind = "none"
    branch = "implicit › Markov chain"
    training_loss = "other"
    loss_name = "reconstruction NLL of one denoising step (not the model's NLL)"
    summary = (
        "Bengio et al. 2013/2014: a denoising autoencoder's reconstruction P(x | x̃) and a fixed "
        "corruption define a Markov chain whose stationary distribution is the model."
    )
    learning_rate = 3e-3
    view_title = "The chain walking: corrupt (x → x̃), reconstruct (x̃ → x), repeat"
    view_controls = (
        ViewControl("steps", "chain steps shown", 1, 200, 50, 1, "corrupt–reconstruct steps drawn per chain"),
    )

    def __init__(
        self,
        *,
        hidden: Annotated[
            tuple[int, ...], Range(4, 1024, max_length=8), "hidden widths of the reconstruction MLP"
        ] = (64, 64),
        components: Annotated[int, Range(1, 32), "Gaussians in P(x | x̃); 1 is the classic DAE"] = 8,
        noise: Annotated[float, Range(0.02, 2.0), "corruption σ in units of the data's sd"] = 0.3,
        chain_steps: Annotated[int, Range(1, 200), "corrupt–reconstruct steps per sample"] = 8,
    ) -> None:
        super().__init__()
        self.components, self.noise, self.chain_steps = components, noise, chain_steps
        self.standardize = Standardize()
        # Start as "reconstruct roughly where you are": offsets 0, scale ≈ σ, spread components a bit.
        self.net = mlp(2, hidden, 6 * components, head="small")
        with torch.no_grad():
            bias = self.net[-1].bias.view(components, 6)
            bias[:, 1:3] = 0.5 * noise * torch.randn(components, 2)
            bias[:, 3:5] = math.log(noise)

    # ------------------------------------------------------------ the chain
    def evaluation_cost(self) -> EvaluationCost:
        """No density; a sample costs one reconstruction pass per chain step."""
        return EvaluationCost(0, sample_passes=self.chain_steps)

    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)

    def reconstruction(self, z_tilde: torch.Tensor) -> Mixture:
        """P_θ(· | z̃) in standardised units. z_tilde: (n, 2) -> a batch of n mixtures."""
        return Mixture.from_raw(self.raw(z_tilde), z_tilde)

    def raw(self, z_tilde: torch.Tensor) -> torch.Tensor:
        """The MLP's output per component. z_tilde: (n, 2) -> (n, K, 6)."""
        return self.net(z_tilde).view(len(z_tilde), self.components, 6)

    def reconstruct(self, z_tilde: torch.Tensor) -> torch.Tensor:
        """One draw z ~ P_θ(· | z̃) per row. (n, 2) -> (n, 2)."""
        return sample_raw(self.raw(z_tilde), z_tilde)

    def corrupt(self, z: torch.Tensor) -> torch.Tensor:
        """z̃ = z + σ ε. (n, 2) -> (n, 2)."""
        return z + self.noise * torch.randn_like(z)

    def start(self, n: int) -> torch.Tensor:
        """A data-free first corrupted state: N(0, (1 + σ²) I), the first two moments of the
        corrupted data's marginal in standardised units. -> (n, 2)."""
        return math.sqrt(1 + self.noise**2) * torch.randn(n, 2, device=self.device)

    @torch.no_grad()
    def walk(self, n: int, steps: int) -> torch.Tensor:
        """n chains from `start`, `steps` reconstructions each, in standardised units.

        -> (2·steps, n, 2): z̃₁, z₁, z̃₂, z₂, …, alternating corrupted and reconstructed states."""
        states = []
        z_tilde = self.start(n)
        for step in range(steps):
            if step:
                z_tilde = self.corrupt(states[-1])
            states += [z_tilde, self.reconstruct(z_tilde)]
        return torch.stack(states)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """The final states of n independent chains after `chain_steps` steps. -> (n, 2)."""
        z = self.reconstruct(self.start(n))
        for _ in range(self.chain_steps - 1):
            z = self.reconstruct(self.corrupt(z))
        return self.standardize.inverse(z)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            "the chain's stationary law has no closed form: estimate it from sample() (k-NN, a KDE)"
        )

    # --------------------------------------------------------------- training
    def reconstruction_log_prob(self, x: torch.Tensor, x_tilde: torch.Tensor) -> torch.Tensor:
        """log P_θ(x | x̃) in data units. x, x_tilde: (n, 2) -> (n,)."""
        z, z_tilde = self.standardize(x), self.standardize(x_tilde)
        return self.reconstruction(z_tilde).log_prob(z) + self.standardize.log_det()

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """−mean log P_θ(x | x̃), x̃ ~ C(·|x), in nats per sample: the reconstruction NLL, not the
        model's NLL. x: (n, 2) data units."""
        z = self.standardize(x)
        log_q = self.reconstruction(self.corrupt(z)).log_prob(z)
        return -(log_q + self.standardize.log_det()).mean()

    # ------------------------------------------------------------------- view
    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        """The reconstruction's pull ‖E[x | x̃] − x̃‖ over the box, its mean displacement as arrows,
        a few chains' alternating corrupted and clean states, and many chains' current states."""
        steps = int(context.controls.get("steps", self.view_controls[0].default))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)
            states = self.standardize.inverse(self.walk(VIEW_STATES, steps)).cpu()  # (2·steps, n, 2)
        grid = context.box.grid(VIEW_GRID)
        pull = self.mean_displacement(grid.points.float()).norm(dim=1)
        walked = states[:, :VIEW_CHAINS]
        chains = [
            Paths(states[None, :, chain].numpy(), f"chain {chain + 1}, {steps} steps", f"walk{chain}")
            for chain in range(min(VIEW_CHAINS, states.shape[1]))
        ]
        return box_view(
            self.view_title,
            context.box,
            Heatmap(grid.x.numpy(), grid.y.numpy(), grid.reshape(pull).numpy(), "‖E[x | x̃] − x̃‖"),
            self.displacement_arrows(context),
            Points(states[-1].numpy(), f"current states of {VIEW_STATES} chains", "state"),
            *chains,
            Points(walked[0::2].reshape(-1, 2).numpy(), "corrupted x̃", "corrupted"),
            Points(walked[1::2].reshape(-1, 2).numpy(), "reconstructed x", "clean"),
        )

    def mean_displacement(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """E[x | x̃] − x̃ in data units, E under P_θ: Σ_k w_k μ_k. x_tilde: (n, 2) -> (n, 2) CPU.

        For small σ it approaches σ² ∇ log p_σ(x̃) in standardised units (Alain & Bengio 2014):
        the reconstruction points uphill on the corrupted data's density."""
        z_tilde = self.standardize(x_tilde.to(self.device))
        mixture = self.reconstruction(z_tilde)
        mean = (mixture.logits.softmax(-1)[..., None] * mixture.means).sum(1)
        return ((mean - z_tilde) * self.standardize.scale).cpu()

    def displacement_arrows(self, context: ViewContext) -> Arrows:
        """E[x | x̃] − x̃ from a coarse grid of x̃, scaled so that the longest spans one grid cell:
        far from the data the pull is as long as the distance home, which would hide the rest."""
        starts = context.box.grid(VIEW_ARROWS).points.float()
        pull = self.mean_displacement(starts)
        cell = (context.box.xmax - context.box.xmin) / VIEW_ARROWS
        scale = cell / float(pull.norm(dim=1).max().clamp_min(1e-12))
        return Arrows(starts.numpy(), (scale * pull).numpy(), f"E[x | x̃] − x̃ × {scale:.3g}", "pull")
