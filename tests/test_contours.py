"""The views of the Gaussian families: contours where the Gaussians really are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genviz.config import RunConfig
from genviz.models.base import ViewContext
from genviz.train import Trainer
from genviz.views.render import ellipse


def test_ellipse_lies_at_its_mahalanobis_radius() -> None:
    mean = np.array([1.0, -2.0])
    tril = np.array([[2.0, 0.0], [0.6, 0.5]])
    contour = ellipse(mean, tril, 2.5)
    z = np.linalg.solve(tril, (contour - mean).T).T
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 2.5, rtol=1e-12)
    np.testing.assert_allclose(contour[0], contour[-1])


def contour_lines(figure) -> list[np.ndarray]:
    """The closed curves of the figure's contour trace, split at its NaN gaps."""
    trace = next(t for t in figure.data if t.name and ("σ" in t.name))
    xy = np.stack([np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)], 1)
    breaks = np.flatnonzero(np.isnan(xy[:, 0]))
    return [part for part in np.split(xy, breaks) if len(part[~np.isnan(part[:, 0])])]


@pytest.mark.parametrize(("model", "count"), [("gaussian", 3), ("gmm", 8), ("kde", 12)])
def test_view_draws_one_contour_per_gaussian(model: str, count: int) -> None:
    params = {"components": 8} if model == "gmm" else {}
    trainer = Trainer(RunConfig(target="moons", model=model, params=params, steps=20, n_test=1000))
    trainer.train()
    data = trainer.data
    figure = trainer.model.view(ViewContext(data.box, data.test[:500], {}, 0))
    assert len(contour_lines(figure)) == count
    for trace in figure.data:
        values = np.asarray(trace.x, dtype=float)
        assert np.isfinite(values[~np.isnan(values)]).all()


def test_mixture_contours_sit_on_its_components() -> None:
    trainer = Trainer(RunConfig(target="8gaussians", model="gmm", params={"components": 8}, steps=30))
    trainer.train()
    model, data = trainer.model, trainer.data
    figure = model.view(ViewContext(data.box, data.test[:500], {}, 0))
    # the last point repeats the first; the others are equally spaced in angle: they average to the centre
    closed = [line[~np.isnan(line[:, 0])] for line in contour_lines(figure)]
    centres = torch.tensor(np.array([line[:-1].mean(0) for line in closed]))
    torch.testing.assert_close(centres, model.means.detach().double(), atol=1e-9, rtol=0)
