"""A target from a typed log-density: normalised, its entropy taken and sampled on a grid of its box.

The density is exp(f) / Z at the centres of a GRID_CELLS² grid of the box, constant on each cell
and zero outside the box, so that log p, H(p) and the samples agree exactly (a sample never lands
where p = 0, and the Monte Carlo KL has no bias from the sampler). A formula that is NaN or +inf
on the box, zero everywhere, or whose integral does not settle between a coarse and the fine grid
(a singularity, or a peak sharper than the cells) is refused with one line. Building costs a few
grid evaluations, so built targets are cached by (formula, box).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from genviz.formula import Formula, FormulaError, parse_formula
from genviz.grid import Box, Grid
from genviz.targets.base import DensityKnown, Target

GRID_CELLS = 512  # per side of the quadrature and sampling grid
CHECK_CELLS = 256  # a coarser grid whose log Z must agree with the fine one
MAX_LOG_Z_CHANGE = 0.01  # nats: past this the quadrature has not settled
MAX_COORDINATE = 1000.0
MIN_SIDE, MAX_SIDE = 0.1, 200.0
MAX_ASPECT = 4.0  # a square grid on the box keeps its cells at most this elongated
CHUNK = 16_384  # points per block: even 100 nested intermediates stay within ~13 MB
CACHED_TARGETS = 8  # each holds a GRID_CELLS² table (2 MB)


def check_box(values: tuple[float, ...]) -> Box:
    """(xmin, xmax, ymin, ymax) -> Box, or FormulaError saying what is wrong with it."""
    if len(values) != 4:
        raise FormulaError(f"the box needs four numbers xmin, xmax, ymin, ymax; got {len(values)}")
    xmin, xmax, ymin, ymax = (float(v) for v in values)
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in (xmin, xmax, ymin, ymax)):
        raise FormulaError(f"the box's corners must be finite numbers within ±{MAX_COORDINATE:g}")
    if not (xmin < xmax and ymin < ymax):
        raise FormulaError("the box must have xmin < xmax and ymin < ymax")
    width, height = xmax - xmin, ymax - ymin
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise FormulaError(f"the box's sides must lie between {MIN_SIDE:g} and {MAX_SIDE:g}")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise FormulaError(f"the box's longer side may be at most {MAX_ASPECT:g} times its shorter one")
    return Box(xmin, xmax, ymin, ymax)


def box_text(box: Box) -> str:
    """'[−4, 4]²' or '[−4, 4]×[−2, 2]', as a method line shows it."""
    x = f"[{box.xmin:g}, {box.xmax:g}]".replace("-", "−")
    y = f"[{box.ymin:g}, {box.ymax:g}]".replace("-", "−")
    return f"{x}²" if x == y else f"{x}×{y}"


@lru_cache(maxsize=CACHED_TARGETS)
def formula_target(text: str, box: tuple[float, float, float, float]) -> FormulaTarget:
    """The target for a typed log-density on a box; raises FormulaError. Cached: quadrature costs."""
    return FormulaTarget(parse_formula(text), check_box(box))


class FormulaTarget(Target):
    """p ∝ exp(f) at the centres of a GRID_CELLS² grid of the box, constant on each cell, zero
    outside the box. Being piecewise constant, it is normalised, its entropy is taken and it is
    sampled exactly; it differs from the typed formula only within a cell."""

    name = "formula"
    density_known: DensityKnown = "quadrature"
    bounded = True  # p = 0 outside the box

    def __init__(self, formula: Formula, box: Box) -> None:
        self.formula, self.box = formula, box
        self.description = f"log p(x, y) = {formula.text} + const on {box_text(box)}, zero outside"
        grid = Grid(box, GRID_CELLS, GRID_CELLS)
        log_u = self._values(grid.points)
        _check_finite(log_u, grid.points)
        self.log_z = grid.log_mass(log_u)
        change = abs(self.log_z - Grid(box, CHECK_CELLS, CHECK_CELLS).log_mass(self._values_on(CHECK_CELLS)))
        if not change <= MAX_LOG_Z_CHANGE:
            raise FormulaError(
                f"the density is not integrable on the box by quadrature: log Z moves by {change:.3g} "
                f"between a {CHECK_CELLS}² and a {GRID_CELLS}² grid (a singularity such as 1/x², or a "
                "peak sharper than the grid); smooth it or change the box"
            )
        self._log_p = log_u - self.log_z  # (k·m,) log density on each cell, row-major from the bottom
        mass = self._log_p.exp() * grid.cell_area  # (k·m,) probability of each cell
        self.entropy = -float(torch.where(mass > 0, mass * self._log_p, torch.zeros_like(mass)).sum())
        self._cdf = torch.cumsum(mass, 0)
        self._cell = ((box.xmax - box.xmin) / GRID_CELLS, (box.ymax - box.ymin) / GRID_CELLS)
        self.density_method = (
            f"exp(formula) at the centres of a {GRID_CELLS}² grid of {box_text(box)}, constant on each "
            f"cell and normalised over them (log Z agrees with a {CHECK_CELLS}² grid's to {change:.1e}); "
            "zero outside the box"
        )
        self.entropy_method = f"exact sum of −p log p over the {GRID_CELLS}² cells"

    def _values(self, points: torch.Tensor) -> torch.Tensor:
        """The formula on (n, 2) points, in blocks: (n,) float64."""
        with torch.no_grad():
            blocks = [self.formula(block) for block in points.split(CHUNK)]
        return torch.cat(blocks) if blocks else points.new_zeros(0, dtype=torch.float64)

    def _values_on(self, cells: int) -> torch.Tensor:
        return self._values(Grid(self.box, cells, cells).points)

    def _cells(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 2) float64 points in the box -> (n,) index of the cell holding each."""
        dx, dy = self._cell
        column = ((x[:, 0] - self.box.xmin) / dx).floor().clamp(0, GRID_CELLS - 1).long()
        row = ((x[:, 1] - self.box.ymin) / dy).floor().clamp(0, GRID_CELLS - 1).long()
        return row * GRID_CELLS + column

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        outside = torch.full_like(x[:, 0], -math.inf)
        return torch.where(self.box.contains(x), self._log_p[self._cells(x)], outside)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Inverse CDF over the cells, then uniform within the chosen cell."""
        u = torch.rand(n, generator=generator, dtype=torch.float64) * self._cdf[-1]
        cell = torch.searchsorted(self._cdf, u, right=True).clamp(max=len(self._cdf) - 1)
        within = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        points = self._corner(cell) + within * torch.tensor(self._cell, dtype=torch.float64)
        single = points.float()
        # float32 may round a point near a cell's edge into its neighbour, or out of the box: those
        # take their cell's centre
        rounded = single.double()
        moved = (self._cells(rounded) != cell) | ~self.box.contains(rounded)
        single[moved] = (
            self._corner(cell[moved]) + 0.5 * torch.tensor(self._cell, dtype=torch.float64)
        ).float()
        return single

    def _corner(self, cell: torch.Tensor) -> torch.Tensor:
        """(n,) cell indices -> (n, 2) float64 lower-left corners."""
        dx, dy = self._cell
        row, column = cell // GRID_CELLS, cell % GRID_CELLS
        return torch.stack([self.box.xmin + column * dx, self.box.ymin + row * dy], 1)


def _check_finite(log_u: torch.Tensor, points: torch.Tensor) -> None:
    """NaN or +inf anywhere on the grid, or −inf everywhere, is a formula to refuse."""
    for bad, what in ((torch.isnan(log_u), "NaN"), (log_u == math.inf, "+inf")):
        if bad.any():
            x, y = points[int(bad.nonzero()[0, 0])].tolist()
            where = "everywhere on the box" if bad.all() else f"at (x, y) = ({x:.3g}, {y:.3g})"
            hint = "e.g. the log or square root of a negative number" if what == "NaN" else "it overflows"
            raise FormulaError(
                f"the formula is {what} {where} ({hint}); a log-density must be a real number on the "
                "whole box (−inf where the density is zero)"
            )
    if bool((log_u == -math.inf).all()):
        raise FormulaError(
            "the formula is −inf everywhere on the box: the density is zero, nothing to normalise"
        )
