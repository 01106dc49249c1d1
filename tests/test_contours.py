"""The views of the Gaussian families: contours where the Gaussians really are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genviz.config import RunConfig
from genviz.models.base import ViewContext
from genviz.models.contours import ellipse
from genviz.train import Trainer
from genviz.views.layers import Paths, View


def test_ellipse_lies_at_its_mahalanobis_radius() -> None:
    mean = np.array([1.0, -2.0])
    tril = np.array([[2.0, 0.0], [0.6, 0.5]])
    contour = ellipse(mean, tril, 2.5)
    z = np.linalg.solve(tril, (contour - mean).T).T
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 2.5, rtol=1e-12)
    np.testing.assert_allclose(contour[0], contour[-1])


def contour_lines(view: View) -> list[np.ndarray]:
    """The closed curves of the view's contour layer, each (t, 2)."""
    layer = next(layer for layer in view.layers if isinstance(layer, Paths) and "σ" in layer.name)
    return list(layer.paths)


@pytest.mark.parametrize(("model", "count"), [("gaussian", 3), ("gmm", 8), ("kde", 12)])
def test_view_draws_one_contour_per_gaussian(model: str, count: int) -> None:
    params = {"components": 8} if model == "gmm" else {}
    trainer = Trainer(RunConfig(target="moons", model=model, params=params, steps=20, n_test=1000))
    trainer.train()
    data = trainer.data
    view = trainer.model.view(ViewContext(data.box, data.test[:500], {}, 0))
    assert len(contour_lines(view)) == count
    for layer in view.layers:
        assert np.isfinite(layer.paths if isinstance(layer, Paths) else layer.xy).all()


def test_mixture_contours_sit_on_its_components() -> None:
    trainer = Trainer(RunConfig(target="8gaussians", model="gmm", params={"components": 8}, steps=30))
    trainer.train()
    model, data = trainer.model, trainer.data
    view = model.view(ViewContext(data.box, data.test[:500], {}, 0))
    # the last point repeats the first; the others are equally spaced in angle: they average to the centre
    closed = contour_lines(view)
    centres = torch.tensor(np.array([line[:-1].mean(0) for line in closed]))
    torch.testing.assert_close(centres, model.means.detach().double(), atol=1e-9, rtol=0)


def test_mixture_means_carry_their_weights() -> None:
    trainer = Trainer(RunConfig(target="8gaussians", model="gmm", params={"components": 8}, steps=5))
    trainer.train()
    model, data = trainer.model, trainer.data
    means = model.view(ViewContext(data.box, data.test[:500], {}, 0)).layer("means")
    np.testing.assert_allclose(means.xy, model.means.detach().double().numpy())
    np.testing.assert_allclose(means.weights, model.logits.softmax(0).detach().double().numpy())
