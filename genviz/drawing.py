"""Points drawn by hand: strokes on a canvas, and a data set generated around them.

A stroke is what one selection on the canvas gives: a lasso's path (the mouse's trail, kept as an
open polyline) or a box select's rectangle (a filled region). `drawn_points` spreads `count` points
over the strokes, each stroke's share in proportion to its length (a region: its half perimeter),
uniform along a path or over a region, plus Gaussian noise of standard deviation `spread`. The
selection arrives from the browser as JSON, so it is read defensively: only numbers, at most
MAX_VERTICES of them per stroke, clipped to the canvas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from genviz.grid import Box

CANVAS = Box(-4.0, 4.0, -4.0, 4.0)
MAX_STROKES = 40
MAX_VERTICES = 400  # per stroke: a lasso's trail is thinned to this many
MIN_COUNT, MAX_COUNT, DEFAULT_COUNT = 100, 20_000, 2000  # points generated
MIN_SPREAD, MAX_SPREAD, DEFAULT_SPREAD = 0.02, 1.0, 0.15  # noise standard deviation


@dataclass(frozen=True)
class Stroke:
    """One selection: a path's vertices, or a region's two corners (x: (x0, x1), y: (y0, y1))."""

    kind: Literal["path", "region"]
    x: tuple[float, ...]
    y: tuple[float, ...]

    @property
    def weight(self) -> float:
        """Its share of the points: length for a path, half perimeter for a region."""
        if self.kind == "region":
            return abs(self.x[1] - self.x[0]) + abs(self.y[1] - self.y[0])
        return sum(math.dist(a, b) for a, b in zip(self.vertices, self.vertices[1:], strict=False))

    @property
    def vertices(self) -> list[tuple[float, float]]:
        return list(zip(self.x, self.y, strict=True))


def strokes_from_selection(selection: Any, canvas: Box = CANVAS) -> list[Stroke]:
    """The strokes in a plotly selection state ({"lasso": [{"x": […], "y": […]}], "box": […]});
    anything malformed is skipped."""
    if not isinstance(selection, Mapping):
        return []
    found = []
    for kind, key in (("path", "lasso"), ("region", "box")):
        entries = selection.get(key)
        for entry in entries[:MAX_STROKES] if isinstance(entries, Sequence) else ():
            stroke = _stroke(kind, entry, canvas)
            if stroke is not None:
                found.append(stroke)
    return found


def _stroke(kind: Literal["path", "region"], entry: Any, canvas: Box) -> Stroke | None:
    if not isinstance(entry, Mapping):
        return None
    x = _numbers(entry.get("x"), canvas.xmin, canvas.xmax)
    y = _numbers(entry.get("y"), canvas.ymin, canvas.ymax)
    if x is None or y is None or len(x) != len(y) or not x:
        return None
    if kind == "region":
        return Stroke(kind, (min(x), max(x)), (min(y), max(y))) if len(x) == 2 else None
    step = max(1, math.ceil(len(x) / MAX_VERTICES))  # thin a long trail evenly
    return Stroke(kind, tuple(x[::step]), tuple(y[::step]))


def _numbers(values: Any, low: float, high: float) -> list[float] | None:
    """Finite numbers clipped to [low, high], or None if any is not a number."""
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        return None
    values = values[: MAX_VERTICES * 8]  # a trail longer than this is thinned anyway
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return [min(high, max(low, float(v))) for v in values]


def drawn_points(strokes: Sequence[Stroke], count: int, spread: float, seed: int = 0) -> torch.Tensor:
    """(count, 2) float64 points around the strokes; the same arguments give the same points."""
    if not strokes:
        raise ValueError("draw at least one stroke first")
    if not (MIN_COUNT <= count <= MAX_COUNT and MIN_SPREAD <= spread <= MAX_SPREAD):
        ranges = f"[{MIN_COUNT:,}, {MAX_COUNT:,}] and the spread in [{MIN_SPREAD}, {MAX_SPREAD}]"
        raise ValueError(f"the count of points must lie in {ranges}")
    generator = torch.Generator().manual_seed(seed)
    weights = torch.tensor([max(s.weight, spread) for s in strokes], dtype=torch.float64)
    which = torch.multinomial(weights, count, replacement=True, generator=generator)
    counts = torch.bincount(which, minlength=len(strokes)).tolist()
    points = torch.cat([_along(stroke, n, generator) for stroke, n in zip(strokes, counts, strict=True) if n])
    points = points[torch.randperm(count, generator=generator)]
    return points + spread * torch.randn(count, 2, generator=generator, dtype=torch.float64)


def _along(stroke: Stroke, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points uniform over a region, or uniform by arc length along a path: (n, 2) float64."""
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    if stroke.kind == "region":
        low = torch.tensor([stroke.x[0], stroke.y[0]], dtype=torch.float64)
        high = torch.tensor([stroke.x[1], stroke.y[1]], dtype=torch.float64)
        return low + u * (high - low)
    vertices = torch.tensor(stroke.vertices, dtype=torch.float64)
    if len(vertices) == 1:
        return vertices.expand(n, 2).clone()
    lengths = (vertices[1:] - vertices[:-1]).norm(dim=1)
    if float(lengths.sum()) == 0:
        return vertices[:1].expand(n, 2).clone()
    cumulative = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    at = u[:, 0] * cumulative[-1]
    segment = (torch.searchsorted(cumulative, at, right=True) - 1).clamp(0, len(lengths) - 1)
    fraction = ((at - cumulative[segment]) / lengths[segment].clamp_min(1e-12)).unsqueeze(1)
    return vertices[segment] + fraction * (vertices[segment + 1] - vertices[segment])
