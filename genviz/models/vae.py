"""Variational autoencoder (explicit density, approximate: variational inference).

Model: z ~ N(0, I) in 1 or 2 dimensions, x | z ~ N(μ(z), diag σ(z)²) in standardised
coordinates, σ bounded (see MIN_STD, MAX_STD). Training maximises a lower bound on log p(x) with
q(z|x) = N(m(x), diag s(x)²): by default the importance-weighted bound of K draws (Burda et al. 2016)

    log p(x) ≥ E[log (1/K) Σ_k p(x, z_k) / q(z_k|x)],   z_k ~ q(z|x),

or the ELBO (Kingma & Welling 2014), E_q(z|x)[log p(x|z)] − KL(q(z|x) ‖ p(z)), the case K = 1.

The model's own marginal p(x) = ∫ p(x|z) p(z) dz is a low-dimensional integral, so it is
computed by quadrature over the latent: the decoder runs once per node and p(x|z) is
evaluated for every (point, node) pair. The normalised node weights make the quadrature
itself a Gaussian mixture, so the reported density integrates to one exactly. Beside it the
ELBO and the importance-weighted bound are reported:
ELBO ≤ IWAE_K ≤ log p(x), with IWAE_K → log p(x) as K grows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

import torch

from genviz.models.base import EvaluationCost, GenerativeModel, LogLikelihood, Range, Standardize, ViewContext
from genviz.models.nets import mlp
from genviz.models.vae_view import latent_view
from genviz.numerics import logsumexp

if TYPE_CHECKING:
    from genviz.views.layers import View

LOG_2PI = math.log(2 * math.pi)
# The decoder std σ(z) lies in [MIN_STD, MAX_STD] (standardised units). The floor keeps p(x|z) wider
# than the quadrature's node spacing (as mapped by μ) so that the rule converges: a 2-D latent has far
# coarser nodes than a 1-D one. The ceiling stops the decoder explaining the data as noise: with an
# unbounded σ the ELBO settles on a line through the data with one wide Gaussian across it and
# leaves the latent unused (a collapsed posterior: held-out KL ≈ 1.0 on 8gaussians, against 0.34 for a
# 1-D latent and 0.22 for a 2-D one with the ceiling).
MIN_STD = {1: 0.02, 2: 0.05}
MAX_STD = 0.6
INIT_STD = 0.1  # σ at initialisation: sharp, so that reconstruction pays for using the latent at once
NODE_SPREAD = 2.0  # nodes sit at quantiles of N(0, 2²): dense in the bulk, reaching ±7 prior sd
NODES = {1: 4001, 2: 161}  # quadrature nodes (per axis) for each latent dimension
PAIRS_PER_CHUNK = 1 << 20  # (point, node) pairs per block of the quadrature: ~40 MB of temporaries
TRAIN_SAMPLES = 4  # K of the default training objective (see the README's VAE figures)
ELBO_SAMPLES = 16  # draws behind each held-out point's reported ELBO
EVAL_SEED = 0  # private stream of the reported bounds: evaluation must not move training's

Hidden = Annotated[
    tuple[int, ...], Range(4, 1024, max_length=8), "hidden layer widths of the encoder and the decoder"
]


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
    training_loss = "bound"
    loss_name = (
        "−IWAE bound (or −ELBO, as `objective` says), an upper bound on the negative log-likelihood "
        "of the batch"
    )
    summary = (
        "Kingma & Welling 2014: a Gaussian encoder and decoder trained on a lower bound of log p "
        "(the importance-weighted bound of Burda et al. 2016 by default, or the ELBO); samples are "
        "z ~ N(0, I), x ~ p(x|z); log q is the marginal ∫p(x|z)p(z)dz by quadrature over the latent."
    )
    learning_rate = 1e-2  # with cosine decay; 3e-3 reached KL 0.057 where 1e-2 reached 0.029 (README)
    view_title = "Latent space and where the decoder sends it"

    def __init__(
        self,
        *,
        latent: Annotated[Literal[1, 2], "dimension of z; the marginal is a quadrature over it"] = 2,
        hidden: Hidden = (64, 64, 64),
        iwae_samples: Annotated[int, Range(2, 1024, log=True), "K of the IWAE bound shown beside log p"] = 64,
        objective: Annotated[Literal["iwae", "elbo"], "the bound training maximises"] = "iwae",
        train_samples: Annotated[
            int, Range(1, 64, log=True), "draws of z per training point: K of the IWAE objective"
        ] = TRAIN_SAMPLES,
    ) -> None:
        super().__init__()
        self.latent = latent
        self.iwae_samples = iwae_samples
        self.objective = objective
        self.train_samples = train_samples
        self.standardize = Standardize()
        self.min_std = MIN_STD[latent]
        self.encoder = mlp(2, hidden, 2 * latent)
        self.decoder = mlp(latent, hidden, 4)
        with torch.no_grad():
            share = (INIT_STD - self.min_std) / (MAX_STD - self.min_std)
            self.decoder[-1].bias[2:].fill_(math.log(share / (1 - share)))
        self.nodes_per_axis = NODES[latent]
        count = self.nodes_per_axis**latent
        shape = f"{count:,}" if latent == 1 else f"{self.nodes_per_axis}² = {count:,}"
        self.density_method = f"marginal ∫p(x|z)p(z)dz by quadrature on {shape} latent nodes"
        self.eval_points = None if latent == 1 else 2000
        self.live_grid = None if latent == 1 else 64  # 161² nodes a cell: a 200² grid would take seconds

    def evaluation_cost(self) -> EvaluationCost:
        """log q pairs each point with every latent node (blocks of PAIRS_PER_CHUNK float64 pairs);
        each draw of z behind the ELBO and the IWAE bound costs a decoder pass and its densities; a
        training step runs the encoder once and the decoder once per draw (half the networks each),
        forward and backward."""
        draws = ELBO_SAMPLES + self.iwae_samples
        nodes = float(self.nodes_per_axis**self.latent)
        train = 1.5 * (1 + self.train_samples)
        return EvaluationCost(0, 1 + draws, 0.5, train, pairs=nodes, working_bytes=5 * 8 * PAIRS_PER_CHUNK)

    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)

    # ------------------------------------------------------------ the two networks
    def encode(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) from standardised u: (n, 2) -> mean, std: (n, latent)."""
        mean, log_std = self.encoder(u).chunk(2, -1)
        return mean, log_std.clamp(-10, 3).exp()

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x|z) in standardised units: z (..., latent) -> mean, std: (..., 2), min_std ≤ std ≤ MAX_STD."""
        mean, raw = self.decoder(z).split(2, -1)
        return mean, self.min_std + (MAX_STD - self.min_std) * torch.sigmoid(raw)

    # ------------------------------------------------------------ likelihoods
    def noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        """Standard normal draws on the model's device; a CPU `generator` keeps them private."""
        if generator is None:
            return torch.randn(shape, device=self.device)
        return torch.randn(shape, generator=generator).to(self.device)

    def elbo_terms(
        self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction log p(x|z) for k draws z ~ q(z|x), and KL(q(z|x) ‖ N(0, I)) in closed form,
        data units. x: (n, 2) -> (k, n), (n,). ELBO = mean over draws of the first − the second."""
        u = self.standardize(x)
        mean, std = self.encode(u)
        z = mean + std * self.noise((k, *mean.shape), generator)
        x_mean, x_std = self.decode(z)
        reconstruction = gaussian_log_prob(u, x_mean, x_std) + self.standardize.log_det()
        return reconstruction, 0.5 * (mean**2 + std**2 - 1 - 2 * std.log()).sum(-1)

    def elbo(self, x: torch.Tensor, k: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised ELBO per point, reconstruction averaged over k draws. x: (n, 2) -> (n,)."""
        reconstruction, kl = self.elbo_terms(x, k, generator)
        return reconstruction.mean(0) - kl

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_k) − log q(z_k|x) in data units for k draws z_k ~ q(z|x). x: (n, 2) -> (k, n)."""
        u = self.standardize(x)
        mean, std = self.encode(u)
        z = mean + std * self.noise((k, *mean.shape), generator)
        x_mean, x_std = self.decode(z)
        log_joint = gaussian_log_prob(u, x_mean, x_std) + gaussian_log_prob(z, 0.0, torch.ones_like(z))
        return log_joint - gaussian_log_prob(z, mean, std) + self.standardize.log_det()

    def iwae(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-weighted bound log (1/K) Σ_k w_k per point (Burda et al. 2016). x: (n, 2) -> (n,)."""
        return logsumexp(self.log_weights(x, k, generator), 0) - math.log(k)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Minus the training bound, nats per point, over `train_samples` draws of z per point: the
        IWAE bound, or the ELBO (reconstruction averaged over the draws, the KL in closed form)."""
        if self.objective == "iwae":
            return -self.iwae(x, self.train_samples).mean()
        return -self.elbo(x, self.train_samples).mean()

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
        out = torch.empty(len(u), dtype=torch.float64, device=u.device)  # one tensor: no heap fragments
        for start in range(0, len(u), rows):
            out[start : start + rows] = logsumexp(features[start : start + rows] @ coefficients, 1)
        return (out + self.standardize.log_det()).to(u.dtype)

    @torch.no_grad()
    def other_log_likelihoods(self, x: torch.Tensor) -> list[LogLikelihood]:
        k = self.iwae_samples
        generator = torch.Generator().manual_seed(EVAL_SEED)
        elbo = self.elbo(x, ELBO_SAMPLES, generator)
        iwae = self.iwae(x, k, generator)
        return [
            LogLikelihood("ELBO", elbo, "bound", f"ELBO, closed-form KL, {ELBO_SAMPLES} draws of z ~ q(z|x)"),
            LogLikelihood(
                f"IWAE, K = {k}", iwae, "bound", f"importance-weighted bound, {k} draws of z ~ q(z|x)"
            ),
        ]

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.latent, device=self.device)
        mean, std = self.decode(z)
        return self.standardize.inverse(mean + std * torch.randn_like(mean))

    # ------------------------------------------------------------ view
    def view(self, context: ViewContext) -> View:
        """The latent space and where the decoder sends it (see `genviz.models.vae_view`)."""
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(context.seed)
            return latent_view(self, context)
