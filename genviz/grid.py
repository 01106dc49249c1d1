"""Evaluation boxes and midpoint grids for quadrature in 2D.

Every grid is a midpoint rule: points sit at cell centres, so a density with
edges on cell boundaries (the checkerboard) is never evaluated on an edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

DEFAULT_RESOLUTION = 200  # cells along the shorter side of a box
MAX_CELLS = 1000


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle [xmin, xmax] × [ymin, ymax]."""

    xmin: float
    xmax: float
    ymin: float
    ymax: float

    @property
    def area(self) -> float:
        return (self.xmax - self.xmin) * (self.ymax - self.ymin)

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 2) -> (n,) bool, True where the point lies inside the box."""
        inside_x = (x[:, 0] >= self.xmin) & (x[:, 0] <= self.xmax)
        return inside_x & (x[:, 1] >= self.ymin) & (x[:, 1] <= self.ymax)

    def grid(self, resolution: int = DEFAULT_RESOLUTION, max_cells: int = MAX_CELLS) -> Grid:
        """A midpoint grid of near-square cells, `resolution` of them along the shorter side
        (at most `max_cells` along the longer one, for a very elongated box)."""
        width, height = self.xmax - self.xmin, self.ymax - self.ymin
        step = min(width, height) / resolution
        return Grid(self, min(max_cells, round(width / step)), min(max_cells, round(height / step)))

    def as_list(self) -> list[float]:
        return [self.xmin, self.xmax, self.ymin, self.ymax]


@dataclass(frozen=True)
class Grid:
    """m × k cell centres over a box; values on it are arrays of shape (k, m).

    `values[i, j]` belongs to the point `(x[j], y[i])`, the layout plotly's
    heatmap expects.
    """

    box: Box
    m: int  # cells along x
    k: int  # cells along y

    @cached_property
    def x(self) -> torch.Tensor:
        """(m,) cell centres along x, float64."""
        dx = (self.box.xmax - self.box.xmin) / self.m
        return self.box.xmin + dx * (torch.arange(self.m, dtype=torch.float64) + 0.5)

    @cached_property
    def y(self) -> torch.Tensor:
        """(k,) cell centres along y, float64."""
        dy = (self.box.ymax - self.box.ymin) / self.k
        return self.box.ymin + dy * (torch.arange(self.k, dtype=torch.float64) + 0.5)

    @cached_property
    def points(self) -> torch.Tensor:
        """(k·m, 2) float64, row-major so that `.reshape(k, m)` gives the grid layout."""
        yy, xx = torch.meshgrid(self.y, self.x, indexing="ij")
        return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)

    @property
    def cell_area(self) -> float:
        return self.box.area / (self.m * self.k)

    def reshape(self, flat: torch.Tensor) -> torch.Tensor:
        """(k·m,) -> (k, m)."""
        return flat.reshape(self.k, self.m)

    def log_mass(self, log_density: torch.Tensor) -> float:
        """log ∫ exp(log_density) over the box, by the midpoint rule."""
        return float(torch.logsumexp(log_density.double().reshape(-1), 0)) + math.log(self.cell_area)

    def mass(self, log_density: torch.Tensor) -> float:
        """∫ exp(log_density) over the box, by the midpoint rule."""
        return math.exp(self.log_mass(log_density))
