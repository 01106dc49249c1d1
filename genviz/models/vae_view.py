"""The VAE's view: the latent space and where the decoder sends it.

1-D latent: the decoder's mean curve μ(z), z ∈ [−3, 3], drawn in data space and coloured by z,
with ±σ(z) ellipses of p(x|z) at evenly spaced nodes; each held-out point is coloured by its
encoder mean m(x) on the same scale, so a point and the part of the curve it is sent to match.

2-D latent: left, the images under μ of the lines of a latent grid over [−3, 3]²; right, the
latent plane with the prior's 1, 2 and 3 sd circles, the same grid, and the encoder means
m(x) of held-out points. A point keeps its colour (its angle around the data's mean) in both
panels, so the eye can follow the data into the latent plane and the grid back out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from genviz.views.layers import ColourScale, Panel, Paths, Points, View, plane

if TYPE_CHECKING:
    from genviz.models.base import ViewContext
    from genviz.models.vae import VAE

EXTENT = 3.0  # latent range drawn: ±3 prior sd holds 99.7 % of each axis's mass
LATENT_RANGE = (-3.5, 3.5)  # the latent panel's axes
CURVE_POINTS = 301  # points along the 1-D decoder curve
ELLIPSES = 13  # ±σ ellipses along the 1-D curve
GRID_LINES = 13  # latent grid lines per direction (2-D)
LINE_POINTS = 120  # points along each latent grid line
POINTS = 1000  # held-out points drawn at most


def latent_view(model: VAE, context: ViewContext) -> View:
    """The view for a 1- or 2-D latent; every array is computed on the model's device, drawn on the CPU."""
    data = context.data[:POINTS]
    if model.latent == 1:
        return curve_view(model, context, data)
    return plane_view(model, context, data)


# ---------------------------------------------------------------- network outputs in data units
def decoded(model: VAE, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Decoder mean and std in data units. z: (n, latent) -> μ: (n, 2), σ: (n, 2), CPU arrays."""
    mean, std = model.decode(z.to(model.device))
    scale = model.standardize.scale
    return model.standardize.inverse(mean).cpu().numpy(), (std * scale).cpu().numpy()


def encoded(model: VAE, x: torch.Tensor) -> np.ndarray:
    """Encoder means m(x), the centres of q(z|x). x: (n, 2) data units -> (n, latent)."""
    mean, _ = model.encode(model.standardize(x.to(model.device)))
    return mean.cpu().numpy()


def ellipses(centres: np.ndarray, radii: np.ndarray, points: int = 48) -> np.ndarray:
    """Axis-aligned ellipses. centres, radii: (n, 2) -> (n, points, 2) closed outlines."""
    angle = np.linspace(0.0, 2 * np.pi, points)
    unit = np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (points, 2)
    return centres[:, None, :] + radii[:, None, :] * unit[None]


def grid_lines(count: int, extent: float, points: int) -> torch.Tensor:
    """(2·count, points, 2): `count` lines z₂ = c and `count` lines z₁ = c over [−extent, extent]²."""
    levels = torch.linspace(-extent, extent, count)
    along = torch.linspace(-extent, extent, points)
    horizontal = torch.stack([along.expand(count, -1), levels[:, None].expand(-1, points)], dim=-1)
    return torch.cat([horizontal, horizontal.flip(-1)])


def angles(x: torch.Tensor) -> np.ndarray:
    """Angle of each point around the sample's mean, in degrees. x: (n, 2) -> (n,)."""
    centred = (x - x.mean(0)).double()
    return torch.rad2deg(torch.atan2(centred[:, 1], centred[:, 0])).numpy()


# ---------------------------------------------------------------- views
def curve_view(model: VAE, context: ViewContext, data: torch.Tensor) -> View:
    """1-D latent: μ(z) coloured by z, ±σ(z) ellipses, held-out points coloured by m(x)."""
    z = torch.linspace(-EXTENT, EXTENT, CURVE_POINTS)[:, None]
    mean, _ = decoded(model, z)
    nodes = torch.linspace(-EXTENT, EXTENT, ELLIPSES)[:, None]
    centres, radii = decoded(model, nodes)
    panel = plane(
        context.box,
        Points(data.numpy(), "held-out x, coloured by m(x)", "coloured", values=encoded(model, data)[:, 0]),
        Paths(ellipses(centres, radii), "±σ(z) of p(x|z)", "sigma"),
        Paths(mean[None], "", "decoder"),
        Points(mean, "μ(z), coloured by z", "coloured_node", values=z[:, 0].numpy()),
    )
    title = "Decoder mean μ(z), z ∈ [−3, 3], with ±σ(z); data coloured by m(x)"
    return View(title, (panel,), colour=ColourScale("z", -EXTENT, EXTENT))


def plane_view(model: VAE, context: ViewContext, data: torch.Tensor) -> View:
    """2-D latent: the decoded latent grid in data space beside the latent plane."""
    hue = angles(data)
    lines = grid_lines(GRID_LINES, EXTENT, LINE_POINTS)
    images = np.stack([decoded(model, line)[0] for line in lines])
    radii = np.repeat(np.array([[1.0], [2.0], [3.0]]), 2, axis=1)
    data_space = plane(
        context.box,
        Points(data.numpy(), "held-out x", "coloured_faint", values=hue),
        Paths(images, "μ(latent grid)", "warped"),
        title="data space",
    )
    latent_space = Panel(
        (
            Paths(lines.numpy(), "latent grid", "grid_faint"),
            Paths(ellipses(np.zeros((3, 2)), radii, 96), "prior N(0, I): 1, 2, 3 sd", "prior"),
            Points(encoded(model, data), "m(x) of held-out x", "coloured", values=hue),
        ),
        LATENT_RANGE,
        LATENT_RANGE,
        title="latent space",
        x_title="z₁",
        y_title="z₂",
    )
    title = "Latent grid under the decoder mean μ (left); encoder means m(x) over the prior (right)"
    return View(
        title, (data_space, latent_space), colour=ColourScale("angle of x (°)", -180.0, 180.0, "cyclic")
    )
