"""Variational autoencoder (explicit density, approximate: variational inference).

Model: z ~ N(0, I) in 1 or 2 dimensions, x | z ~ N(μ(z), diag σ(z)²) in standardised
coordinates, σ bounded below. Training maximises the ELBO (Kingma & Welling 2014)

    log p(x) ≥ E_q(z|x)[log p(x|z)] − KL(q(z|x) ‖ p(z)),   q(z|x) = N(m(x), diag s(x)²).

The model's own marginal p(x) = ∫ p(x|z) p(z) dz is a low-dimensional integral, so it is
computed by quadrature over the latent: the decoder runs once per node and p(x|z) is
evaluated for every (point, node) pair. The normalised node weights make the quadrature
itself a Gaussian mixture, so the reported density integrates to one exactly. Beside it the
ELBO and the importance-weighted bound (Burda et al. 2016) are reported:
ELBO ≤ IWAE_K ≤ log p(x), with IWAE_K → log p(x) as K grows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

import torch
from torch import nn

from genviz.models.base import GenerativeModel, LogLikelihood, Range, Standardize, ViewContext
from genviz.numerics import logsumexp

if TYPE_CHECKING:
    import plotly.graph_objects as go

LOG_2PI = math.log(2 * math.pi)
MIN_STD = 0.02  # decoder std floor (standardised units): keeps p(x|z) wide enough for the quadrature
NODE_SPREAD = 2.0  # nodes sit at quantiles of N(0, 2²): dense in the bulk, reaching ±7 prior sd
NODES = {1: 4001, 2: 161}  # quadrature nodes (per axis) for each latent dimension
INIT_STD = float(__import__("os").environ.get("VAE_INIT_STD", "0.1"))
WARMUP = int(__import__("os").environ.get("VAE_WARMUP", "0"))
PAIRS_PER_CHUNK = 1 << 22  # (point, node) pairs per block of the quadrature, to bound memory

Hidden = Annotated[tuple[int, ...], Range(4, 1024), "hidden layer widths of the encoder and the decoder"]


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.SiLU()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, outputs))


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log density summed over the last axis; broadcasts."""
    return (-0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * LOG_2PI).sum(-1)


def quadrature_nodes(dim: int, per_axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent nodes and log weights of a product midpoint rule for ∫ f(z) N(z; 0, I) dz.

    Along each axis the nodes are the midpoint quantiles of N(0, NODE_SPREAD²) and the
    weights N(z; 0, 1) / N(z; 0, NODE_SPREAD²), normalised to sum to one.
    Returns z: (per_axis**dim, dim) and log_w: (per_axis**dim,), float64."""
    u = (torch.arange(per_axis, dtype=torch.float64) + 0.5) / per_axis
    z = NODE_SPREAD * torch.special.ndtri(u)
    log_w = -0.5 * z**2 * (1 - NODE_SPREAD**-2)
    log_w = log_w - torch.logsumexp(log_w, 0)
    if dim == 1:
        return z[:, None], log_w
    zz = torch.cartesian_prod(z, z)
    return zz, (log_w[:, None] + log_w[None, :]).reshape(-1)


class VAE(GenerativeModel):
    title = "Variational autoencoder"
    density_kind = "exact"
    branch = "explicit › approximate › variational"
    summary = (
        "Kingma & Welling 2014: a Gaussian encoder and decoder trained on the ELBO; samples are "
        "z ~ N(0, I), x ~ p(x|z); log q is the marginal ∫p(x|z)p(z)dz by quadrature over the latent."
    )
    learning_rate = 3e-3
    view_title = "Latent space and where the decoder sends it"

    def __init__(
        self,
        *,
        latent: Literal[1, 2] = 1,
        hidden: Hidden = (64, 64),
        iwae_samples: Annotated[int, Range(2, 1024, log=True), "K of the importance-weighted bound"] = 64,
    ) -> None:
        super().__init__()
        self.latent = latent
        self.iwae_samples = iwae_samples
        self.standardize = Standardize()
        self.register_buffer("steps_taken", torch.zeros((), dtype=torch.long))
        self.encoder = mlp(2, hidden, 2 * latent)
        self.decoder = mlp(latent, hidden, 4)
        with torch.no_grad():  # start sharp, so that reconstruction pays for using the latent at once
            self.decoder[-1].bias[2:].fill_(math.log(math.expm1(INIT_STD - MIN_STD)))
        self.nodes_per_axis = NODES[latent]
        count = self.nodes_per_axis**latent
        shape = f"{count:,}" if latent == 1 else f"{self.nodes_per_axis}² = {count:,}"
        self.density_method = f"marginal ∫p(x|z)p(z)dz by quadrature on {shape} latent nodes"
        self.eval_points = None if latent == 1 else 1000

    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)

    # ------------------------------------------------------------ the two networks
    def encode(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) from standardised u: (n, 2) -> mean, std: (n, latent)."""
        mean, log_std = self.encoder(u).chunk(2, -1)
        return mean, log_std.clamp(-10, 3).exp()

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x|z) in standardised units: z (..., latent) -> mean, std: (..., 2); std ≥ MIN_STD."""
        mean, raw = self.decoder(z).split(2, -1)
        return mean, MIN_STD + nn.functional.softplus(raw)

    # ------------------------------------------------------------ likelihoods
    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_k) − log q(z_k|x) in data units for k draws z_k ~ q(z|x). x: (n, 2) -> (k, n).

        A CPU `generator` makes the draws private (evaluation must not move training's stream)."""
        u = self.standardize(x)
        mean, std = self.encode(u)
        shape = (k, *mean.shape)
        noise = torch.randn(shape, device=x.device) if generator is None else torch.randn(shape, generator=generator)
        z = mean + std * noise.to(x.device)
        x_mean, x_std = self.decode(z)
        log_joint = gaussian_log_prob(u, x_mean, x_std) + gaussian_log_prob(z, 0.0, torch.ones_like(z))
        return log_joint - gaussian_log_prob(z, mean, std) + self.standardize.log_det()

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """One-sample reparameterised ELBO per point, data units. x: (n, 2) -> (n,)."""
        return self.log_weights(x, 1)[0]

    def iwae(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Importance-weighted bound log (1/K) Σ_k w_k per point. x: (n, 2) -> (n,)."""
        return logsumexp(self.log_weights(x, k), 0) - math.log(k)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return -self.elbo(x).mean()

    def train_step(self, batch, step) -> float:
        x = batch()
        w = self.log_weights(x, 1)[0]
        if WARMUP:
            beta = min(1.0, float(self.steps_taken) / WARMUP)
            u = self.standardize(x)
            mean, std = self.encode(u)
            kl = 0.5 * (mean**2 + std**2 - 1 - 2 * std.log()).sum(-1)
            z = mean + std * torch.randn_like(mean)
            xm, xs = self.decode(z)
            rec = gaussian_log_prob(u, xm, xs) + self.standardize.log_det()
            surrogate = -(rec - beta * kl).mean()
            self.steps_taken += 1
            step("model", surrogate)
            return float(-(rec - kl).mean())
        return step("model", -w.mean())

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log Σ_i w_i N(x; μ(z_i), σ(z_i)²) over the quadrature nodes. x: (n, 2) -> (n,)."""
        z, log_w = quadrature_nodes(self.latent, self.nodes_per_axis)
        return self.marginal(self.standardize(x), z.to(x.device), log_w.to(x.device))

    def marginal(self, u: torch.Tensor, z: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
        """Quadrature of p(u|z) p(z) on nodes z: (N, latent) with log weights (N,), data units.

        The Gaussian exponent is linear in (u², u, 1), so every (point, node) pair comes from one
        float64 matrix product: −½ Σ_d a_d (u_d − μ_d)² = [u², u, 1] · [−½a, aμ, −½aμ²], a = σ⁻²."""
        mean, std = (t.double() for t in self.decode(z.float()))
        a = std**-2
        const = log_w - (0.5 * a * mean**2).sum(-1) - std.log().sum(-1) - LOG_2PI
        coefficients = torch.cat([-0.5 * a, a * mean, const[:, None]], 1).T  # (5, N)
        features = torch.cat([u.double() ** 2, u.double(), torch.ones_like(u[:, :1]).double()], 1)
        rows = max(1, PAIRS_PER_CHUNK // len(z))
        out = [logsumexp(block @ coefficients, 1) for block in features.split(rows)]
        return (torch.cat(out) + self.standardize.log_det()).to(u.dtype)

    @torch.no_grad()
    def other_log_likelihoods(self, x: torch.Tensor) -> list[LogLikelihood]:
        k = self.iwae_samples
        return [
            LogLikelihood("ELBO", self.elbo(x), "bound", "one-sample Monte Carlo ELBO"),
            LogLikelihood(f"IWAE, K = {k}", self.iwae(x, k), "bound", f"importance-weighted, {k} samples"),
        ]

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.latent, device=self.device)
        mean, std = self.decode(z)
        return self.standardize.inverse(mean + std * torch.randn_like(mean))

    # ------------------------------------------------------------ view
    def view(self, context: ViewContext) -> go.Figure:
        from genviz.models.vae_view import latent_figure

        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(context.seed)
            return latent_figure(self, context)
