"""Views of the Gaussian families: each Gaussian drawn as its contours over the held-out data.

The Gaussian, the mixture and the KDE are all sums of Gaussians; what sets them apart is how many
there are, where they sit and how wide they are, which their σ-contours show directly.
"""

from __future__ import annotations

import numpy as np
import torch

from genviz.models.base import ViewContext
from genviz.views.layers import Layer, Paths, Points, View, box_view


def ellipse(mean: np.ndarray, scale_tril: np.ndarray, radius: float, points: int = 72) -> np.ndarray:
    """The contour {mean + radius · L u : |u| = 1} of N(mean, L Lᵀ) at `radius` standard deviations.

    mean: (2,), scale_tril: (2, 2) -> (points, 2), closed (the last point repeats the first)."""
    angles = np.linspace(0.0, 2 * np.pi, points)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.asarray(mean) + radius * circle @ np.asarray(scale_tril).T


def contour_view(
    context: ViewContext,
    means: torch.Tensor,
    scale_trils: torch.Tensor,
    radii: tuple[float, ...],
    title: str,
    name: str,
    *more: Layer,
) -> View:
    """Held-out data, the σ-contours at `radii` of Gaussians N(means[i], L_i L_iᵀ), then `more`.

    means: (k, 2), scale_trils: (k, 2, 2) or (2, 2) shared by all, on any device."""
    means = means.detach().double().cpu().numpy()
    trils = scale_trils.detach().double().cpu().expand(len(means), 2, 2).numpy()
    lines = np.stack([ellipse(m, tril, r) for r in radii for m, tril in zip(means, trils, strict=True)])
    return box_view(
        title,
        context.box,
        Points(context.data.numpy(), "held-out data", "data"),
        Paths(lines, name, "contour"),
        *more,
    )


def weighted_means(means: torch.Tensor, weights: torch.Tensor) -> Points:
    """Component means as markers whose area is proportional to their weight."""
    means = means.detach().double().cpu().numpy()
    weights = weights.detach().double().cpu().numpy()
    return Points(means, "means (area ∝ weight)", "mean", weights=weights)
