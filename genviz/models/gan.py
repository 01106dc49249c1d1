"""Generative adversarial network (implicit density, direct sampling), Goodfellow et al. 2014.

A generator G maps latent noise z ~ N(0, I) to a point x = G(z); a discriminator (critic) D
scores points. They play a two-player game, here with one of three objectives (d = D(x),
x_r real, x_f = G(z) fake):

    non-saturating (Goodfellow 2014):  L_D = softplus(−d_r) + softplus(d_f),  L_G = softplus(−d_f)
    least-squares (Mao et al. 2017):   L_D = ½(d_r − 1)² + ½ d_f²,          L_G = ½(d_f − 1)²
    Wasserstein-GP (Gulrajani 2017):   L_D = d_f − d_r + λ (‖∇D(x̂)‖ − 1)²,  L_G = −d_f

with x̂ uniform on segments between real and fake points. Both players work on standardised
coordinates, so one set of defaults fits every target's scale. The model defines no density:
the metrics estimate one from its samples.
"""

from __future__ import annotations

import functools
from typing import Annotated, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
from genviz.views.layers import Arrows, Heatmap, Paths, Points, View, box_view

GanLoss = Literal["non-saturating", "least-squares", "wasserstein-gp"]
Hidden = Annotated[
    tuple[int, ...], Range(4, 1024, max_length=8), "hidden layer widths of each player's network"
]
# Adam's β₁ = 0.5 damps the rotation of simultaneous gradient play (Radford et al. 2016);
# WGAN-GP asks for β₁ = 0 (Gulrajani et al. 2017).
BETAS: dict[str, tuple[float, float]] = {
    "non-saturating": (0.5, 0.9),
    "least-squares": (0.5, 0.9),
    "wasserstein-gp": (0.0, 0.9),
}
# Discriminator steps per generator step when `disc_steps` is 0: a Wasserstein critic must be near
# its optimum for −f to carry the distance's gradient (Gulrajani et al. 2017 take 5); with one
# step the generator outruns it and drifts off the data.
USUAL_DISC_STEPS: dict[str, int] = {"non-saturating": 1, "least-squares": 1, "wasserstein-gp": 5}
LATENT_RANGE = 2.5  # the view warps the latent square [−2.5, 2.5]²: ~99% of N(0, I₂) mass
VIEW_GRID = 60  # heat-map cells along each side
VIEW_LINES = 13  # latent grid lines along each axis
VIEW_FAKES = 600
VIEW_ARROWS = 60
ARROW_SHARE = 0.08  # the longest arrow spans this share of the box's width
LEAKY_RELU = functools.partial(nn.LeakyReLU, 0.2)  # both players' activation


def gradient_penalty(critic: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """mean over points of (‖∇ₓ critic(x)‖ − 1)², differentiable in the critic. points: (n, 2)."""
    points = points.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return (grad.norm(dim=1) - 1).pow(2).mean()


def interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Points uniform on the segments between paired real and fake points. (n, 2) -> (n, 2)."""
    t = torch.rand(len(real), 1, device=real.device)
    return t * real + (1 - t) * fake


def discriminator_loss(kind: GanLoss, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss without any penalty. d_real, d_fake: (n, 1) raw outputs -> ()."""
    if kind == "non-saturating":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if kind == "least-squares":
        return 0.5 * ((d_real - 1).pow(2).mean() + d_fake.pow(2).mean())
    return d_fake.mean() - d_real.mean()


def generator_losses(kind: GanLoss, d_fake: torch.Tensor) -> torch.Tensor:
    """Per-sample generator loss. d_fake: (n, 1) -> (n,)."""
    if kind == "non-saturating":
        return F.softplus(-d_fake).squeeze(1)
    if kind == "least-squares":
        return 0.5 * (d_fake - 1).pow(2).squeeze(1)
    return -d_fake.squeeze(1)


class GAN(GenerativeModel):
    title = "Generative adversarial network"
    density_kind = "none"
    branch = "implicit › direct"
    training_loss = "other"
    loss_name = "generator's adversarial loss"
    summary = (
        "Goodfellow et al. 2014: a generator maps noise to points and learns from a discriminator "
        "trained to tell its points from the data's."
    )
    learning_rate: ClassVar[float] = 3e-4
    view_title = "Discriminator, generator's warped latent grid, and the generator's gradient"

    def __init__(
        self,
        *,
        loss: Annotated[GanLoss, "the game both players play"] = "non-saturating",
        latent_dim: Annotated[int, Range(1, 16), "dimension of the generator's Gaussian noise"] = 2,
        hidden: Hidden = (128, 128),
        disc_steps: Annotated[
            int, Range(0, 10), "discriminator steps per generator step; 0: 5 for wasserstein-gp, else 1"
        ] = 0,
        penalty: Annotated[float, Range(0.0, 100.0), "WGAN-GP gradient-penalty weight λ"] = 1.0,
    ) -> None:
        super().__init__()
        self.kind: GanLoss = loss
        self.latent_dim = latent_dim
        self.disc_steps = disc_steps or USUAL_DISC_STEPS[loss]
        self.penalty = penalty
        self.standardize = Standardize()
        self.generator = mlp(latent_dim, hidden, 2, activation=LEAKY_RELU)
        self.discriminator = mlp(2, hidden, 1, activation=LEAKY_RELU)

    # ------------------------------------------------------------------ model
    def evaluation_cost(self) -> EvaluationCost:
        """No density; a sample is a generator pass (half the networks); a step trains both players,
        the critic `disc_steps` times (WGAN-GP's penalty backpropagates twice)."""
        critic = self.disc_steps * (2 if self.kind == "wasserstein-gp" else 1)
        return EvaluationCost(0, sample_passes=0.5, train_passes=3 * (critic + 1))

    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            "a GAN defines no density: estimate one from sample() (k-nearest neighbours, a KDE)"
        )

    def latent(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) in data units, differentiable. z: (n, latent_dim) -> (n, 2)."""
        return self.standardize.inverse(self.generator(z))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.generate(self.latent(n))

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """D's raw output (a logit for the non-saturating game). x: (n, 2) in data units -> (n, 1)."""
        return self.discriminator(self.standardize(x))

    # --------------------------------------------------------------- training
    def parameter_groups(self) -> dict[str, ParameterGroup]:
        betas = BETAS[self.kind]
        return {
            "discriminator": ParameterGroup(list(self.discriminator.parameters()), 1.0, betas),
            "generator": ParameterGroup(list(self.generator.parameters()), 1.0, betas),
        }

    def discriminator_objective(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """L_D (with the gradient penalty for WGAN-GP) on standardised (n, 2) points -> ()."""
        loss = discriminator_loss(self.kind, self.discriminator(real), self.discriminator(fake))
        if self.kind == "wasserstein-gp":
            loss = loss + self.penalty * gradient_penalty(self.discriminator, interpolates(real, fake))
        return loss

    def generator_objective(self, n: int) -> torch.Tensor:
        """Mean L_G over n fresh fakes -> ()."""
        return generator_losses(self.kind, self.discriminator(self.generator(self.latent(n)))).mean()

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """L_D + L_G on the batch x (data units): differentiable in both players' parameters."""
        real = self.standardize(x)
        fake = self.generator(self.latent(len(x)))
        d_loss = self.discriminator_objective(real, fake.detach())
        return d_loss + generator_losses(self.kind, self.discriminator(fake)).mean()

    def train_step(self, batch: Batch, step: Step) -> float:
        """`disc_steps` discriminator steps, each on a fresh batch, then one generator step.

        Returns the generator's loss L_G (the discriminator's is the other side of the game)."""
        n = 0
        for _ in range(self.disc_steps):
            real = self.standardize(batch())
            n = len(real)
            with torch.no_grad():
                fake = self.generator(self.latent(n))
            step("discriminator", self.discriminator_objective(real, fake))
        return step("generator", self.generator_objective(n))

    # ------------------------------------------------------------------- view
    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        """D over the box, G's warped latent grid, fakes, and −∂L_G/∂x on some of them."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)
            fakes = self.sample(VIEW_FAKES).cpu()
        box = context.box
        grid = box.grid(VIEW_GRID)
        heat, name, zmid = self.view_heat(grid.points.float())
        grid_name = "G(latent line)" if self.latent_dim == 1 else "G(latent grid)"
        starts = fakes[:VIEW_ARROWS]
        push = self.generator_push(starts)
        scale = ARROW_SHARE * (box.xmax - box.xmin) / float(push.norm(dim=1).max().clamp_min(1e-12))
        return box_view(
            self.view_title,
            box,
            Heatmap(grid.x.numpy(), grid.y.numpy(), grid.reshape(heat).numpy(), name, "critic", zmid),
            Points(context.data[:VIEW_FAKES].numpy(), "held-out data", "data"),
            Paths(self.warped_grid(), grid_name, "warped"),
            Points(fakes.numpy(), "generated", "fake"),
            Arrows(starts.numpy(), (scale * push).numpy(), f"−∂L_G/∂x × {scale:.3g}"),
        )

    def view_heat(self, points: torch.Tensor) -> tuple[torch.Tensor, str, float | None]:
        """What the heat map shows at (n, 2) data-unit points -> ((n,) CPU, its name, the value
        between "real" and "fake" to centre the colours on; a critic's offset is arbitrary: None)."""
        d = self.critic(points.to(self.device)).squeeze(1).cpu()
        if self.kind == "non-saturating":
            return torch.sigmoid(d), "D(x) = P(real)", 0.5
        if self.kind == "least-squares":
            return d, "D(x): 1 real, 0 fake", 0.5
        return d, "critic f(x)", None

    @torch.no_grad()
    def warped_grid(self) -> np.ndarray:
        """Images under G of the latent grid lines z₁ = c and z₂ = c (other latents 0): (2·lines, t, 2);
        with one latent, the image of the segment [−LATENT_RANGE, LATENT_RANGE] alone: (1, t, 2)."""
        along = torch.linspace(-LATENT_RANGE, LATENT_RANGE, 4 * VIEW_LINES)
        if self.latent_dim == 1:
            return self.generate(along[:, None].to(self.device)).cpu().numpy()[None]
        ticks = torch.linspace(-LATENT_RANGE, LATENT_RANGE, VIEW_LINES)
        a, b = torch.meshgrid(ticks, along, indexing="ij")  # (lines, t)
        z = torch.zeros(2, VIEW_LINES, len(along), self.latent_dim)
        z[0, ..., 0], z[0, ..., 1] = a, b
        z[1, ..., 0], z[1, ..., 1] = b, a
        lines = self.generate(z.reshape(-1, self.latent_dim).to(self.device)).cpu()
        return lines.reshape(2 * VIEW_LINES, len(along), 2).numpy()

    def generator_push(self, x: torch.Tensor) -> torch.Tensor:
        """−∂L_G/∂x at fake points x: (n, 2) data units -> (n, 2), where G's loss moves each fake."""
        with torch.enable_grad():
            x = x.to(self.device).requires_grad_(True)
            (grad,) = torch.autograd.grad(generator_losses(self.kind, self.critic(x)).sum(), x)
        return -grad.cpu()
