"""The pages, driven through Streamlit's AppTest: they render, train, react to every control, and
never crash on bad input. The model trains in a worker process; AppTest does not fire `run_every`,
so a test that waits for training calls `run()` until the page shows what it waits for."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from apptest_helpers import chart_keys, charts, press, run_until
from streamlit.testing.v1 import AppTest

from genviz.metrics import Result
from genviz.models import MODELS
from genviz.models.base import GenerativeModel
from genviz.targets import TARGETS
from genviz.ui.state import TARGET_RESOLUTION
from genviz.views import render

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
SMALL = {"model": "nsf", "p.transforms": "1", "p.hidden": "16,16"}  # a real flow that builds fast


def page(name: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / name), default_timeout=TIMEOUT)
    at.query_params = dict(SMALL if query is None else query)
    return at.run()


def step_metric(at: AppTest) -> int:
    return int(next(m for m in at.metric if m.label == "Step").value.replace(",", ""))


def progress_line(at: AppTest) -> str:
    """The line under the progress bar: step, rate, and why training stopped."""
    return at.get("progress")[0].proto.text


def points_uploader(at: AppTest):
    """The sidebar's CSV uploader (the page's other one imports a model file)."""
    return next(u for u in at.file_uploader if u.label.startswith("Points"))


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def preview_script(query: dict[str, str]) -> None:
    from genviz.ui.live import loading_preview

    loading_preview(query)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"target": "rings", "model": "gmm"}, "Gaussian mixture"),
        ({"model": "nsf", "p.bins": "many"}, "spline"),  # cannot be read: the defaults
    ],
)
def test_a_first_load_previews_the_target_while_its_model_builds(query: dict[str, str], shown: str) -> None:
    """The first load's preview: the link's target (a link that cannot be read: the defaults it
    falls back to), on the colour scale and at the resolution of the live page, beside a note."""
    at = AppTest.from_function(preview_script, args=(query,), default_timeout=TIMEOUT).run()
    assert not at.exception
    [chart] = charts(at)
    figure = chart.figure
    target = query["target"] if "p.bins" not in query else "8gaussians"
    assert f"for **{target}**" in texts(at.info) and shown in texts(at.info)
    heatmap = figure["data"][0]
    assert heatmap["type"] == "heatmap"
    assert heatmap["z"]["shape"] == f"{TARGET_RESOLUTION}, {TARGET_RESOLUTION}"
    assert "being built" in texts(at.info)


def test_explorer_renders_with_labelled_numbers() -> None:
    at = page("pages/explorer.py")
    assert not at.exception
    assert step_metric(at) == 0
    # the target and model densities, the NLL and KL curves, the family view
    charts = chart_keys(at)
    assert charts == ["target_density", "model_density", "nll", "kl", "family_view"]
    labels = [m.label for m in at.metric]
    assert "NLL · exact" in labels and "KL(p‖q) · exact" in labels
    assert "Monte Carlo on 10,000 held-out points" in texts(at.caption)
    assert "Neural spline flow" in texts(at.markdown)


def test_train_advances_and_pause_stops() -> None:
    at = page("pages/explorer.py")
    press(at, "train")
    run_until(at, lambda at: step_metric(at) > 0)
    assert not at.exception
    assert at.button(key="train").label == "Pause"
    press(at, "train")
    assert at.button(key="train").label == "Train"
    paused = step_metric(at)
    time.sleep(0.5)
    at.run()
    assert step_metric(at) == paused  # nothing trains while paused


def test_step_moves_by_one_and_reset_goes_back_to_zero() -> None:
    at = page("pages/explorer.py")
    press(at, "step")
    assert step_metric(at) == 1
    press(at, "step")
    assert step_metric(at) == 2
    press(at, "reset")
    assert step_metric(at) == 0
    assert not at.exception


def test_changing_the_model_rebuilds_it_with_a_notice() -> None:
    at = page("pages/explorer.py")
    at.selectbox(key="model").select("gaussian").run()
    assert not at.exception
    assert "Model rebuilt: model changed from nsf to gaussian" in texts(at.info)
    assert at.query_params["model"] == "gaussian"  # the address bar follows
    at.selectbox(key="target").select("checkerboard").run()
    assert "target changed from 8gaussians to checkerboard" in texts(at.info)


def test_training_settings_apply_live_without_a_rebuild() -> None:
    at = page("pages/explorer.py")
    press(at, "step")
    at.select_slider(key="lr").set_value(0.01).run()
    state = at.session_state["genviz"]
    assert state.config.lr == 0.01
    assert state.snapshot.lr == pytest.approx(0.01, rel=1e-3)  # the worker's Trainer took it
    assert step_metric(at) == 1 and not at.info


def test_bad_hidden_widths_show_an_error_and_keep_the_model() -> None:
    at = page("pages/explorer.py")
    at.text_input(key="hp.nsf.hidden").input("64,abc").run()
    assert not at.exception
    assert "hidden" in texts(at.error) and "Keeping 16,16" in texts(at.error)
    assert not at.info  # no rebuild
    press(at, "step")
    assert step_metric(at) == 1


def test_a_bad_link_falls_back_to_the_defaults() -> None:
    at = page("pages/explorer.py", {"target": "nowhere", "lr": "fast"})
    assert not at.exception
    assert "Could not read this link" in texts(at.error)
    assert at.selectbox(key="target").value == "8gaussians"


def test_a_link_sets_the_controls() -> None:
    at = page("pages/explorer.py", {"model": "gaussian", "target": "banana", "lr": "0.01", "steps": "7"})
    assert not at.exception and not at.error
    assert at.selectbox(key="model").value == "gaussian"
    assert at.selectbox(key="target").value == "banana"
    assert at.number_input(key="steps").value == 7


def test_training_pauses_at_the_step_budget() -> None:
    at = page("pages/explorer.py", {"model": "gaussian", "steps": "5"})
    press(at, "train")
    run_until(at, lambda at: "step budget reached" in progress_line(at))
    assert step_metric(at) == 5
    assert at.button(key="train").label == "Train" and at.button(key="train").disabled


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    at = page("pages/explorer.py")
    at.selectbox(key="device").select("cuda").run()
    assert not at.exception
    assert "no CUDA GPU" in texts(at.error)
    press(at, "step")  # the previous model still works
    assert step_metric(at) == 1
    at.selectbox(key="device").select("auto").run()  # back to what the model is: the error goes
    assert "no CUDA GPU" not in texts(at.error)
    assert step_metric(at) == 1


def test_about_page_lists_families_and_targets() -> None:
    at = page("pages/about.py", {})
    assert not at.exception
    assert len(at.table) == 2
    assert "KL" in texts(at.markdown)


def test_app_renders_the_explorer_by_default() -> None:
    at = page("app.py")
    assert not at.exception
    assert step_metric(at) == 0


def test_the_nll_chart_zooms_on_the_nll_not_on_a_fresh_models_bound() -> None:
    # a fresh VAE's ELBO starts near 100 nats; the chart must still show the NLL's gap to H(p)
    rows = [
        {
            "step": s,
            "nll": 2.9 + 1.0 / (s + 1),
            "nll_se": 0.01,
            "kl": 0.1,
            "kl_se": 0.01,
            "NLL via ELBO (bound)": 100.0 if s < 40 else 3.1,
        }
        for s in range(0, 100, 5)
    ]
    entropy = Result("H(p)", 2.8, None, "exact", "closed form")
    low, high = render.nll_curve(rows, entropy).layout.yaxis.range
    assert low < 2.8 and 3.1 <= high < 4.5


def test_a_sample_based_estimate_is_drawn_with_its_estimator_error() -> None:
    rows = [
        {
            "step": s,
            "nll": 2.85,
            "nll_se": 0.005,
            "nll_error": 0.08,
            "kl": 0.05,
            "kl_se": 0.005,
            "kl_error": 0.08,
        }
        for s in range(0, 50, 10)
    ]
    entropy = Result("H(p)", 2.8, None, "exact", "closed form")
    kl = render.kl_curve(rows, "KL(p‖q) — estimate, k-NN")
    band = [t for t in kl.data if t.name == "estimator error ±0.08"]
    assert band and np.allclose(band[0].y, 0.13)
    assert np.allclose(kl.data[band and list(kl.data).index(band[0]) - 1].y, render.LOG_FLOOR)
    nll = render.nll_curve(rows, entropy)
    top = [t for t in nll.data if t.name == "estimator error ±0.08"][0]
    bottom = nll.data[list(nll.data).index(top) - 1]
    assert np.allclose(top.y, 2.93) and np.allclose(bottom.y, 2.8)  # never drawn below H(p)
    exact = [{k: v for k, v in r.items() if not k.endswith("_error")} for r in rows]
    assert not [t for t in render.kl_curve(exact, "KL").data if "estimator" in (t.name or "")]


def test_the_live_figures_built_as_plain_dicts_are_valid_plotly() -> None:
    # they skip plotly's validation when built (it is the costliest part of a refresh): check here
    import plotly.graph_objects as go

    grid = np.linspace(-2, 2, 16)
    log_q = -np.add.outer(grid**2, grid**2)
    points = np.random.default_rng(0).normal(size=(50, 2))
    entropy = Result("H(p)", 2.8, None, "exact", "closed form")
    rows = [
        {
            "step": s,
            "nll": 3.0 - s / 100,
            "nll_se": 0.01,
            "nll_error": 0.08,
            "kl": 0.2 - s / 100,
            "kl_se": 0.01,
            "kl_error": 0.08,
            "NLL via ELBO (bound)": 3.5,
        }
        for s in range(0, 30, 5)
    ]
    figures = [
        render.density_panel(grid, grid, log_q, cmax=1.0, title="q", samples=points, points=points),
        render.density_panel(grid, grid, None, cmax=1.0, title="data", points=points),
        render.nll_curve(rows, entropy),
        render.kl_curve(rows, "KL", checks=[(10, 0.1)]),
        render.nll_curve([{"step": 0, "nll": None}], None),
        render.kl_curve([{"step": 0, "kl": None}], "KL"),
    ]
    for figure in figures:
        go.Figure(figure.to_dict())  # raises on any invalid property or value


def test_figures_handle_missing_and_non_positive_values() -> None:
    rows = [{"step": 0, "nll": 3.0, "nll_se": 0.01, "kl": 0.2, "kl_se": 0.01}]
    rows += [{"step": 5, "nll": 2.9, "nll_se": 0.01, "kl": -0.001, "kl_se": 0.002}]
    entropy = Result("H(p)", 2.8, None, "exact", "closed form")
    assert "H(p) = 2.800 (exact)" in {t.name for t in render.nll_curve(rows, entropy).data}
    assert render.kl_curve(rows, "KL(p‖q) — exact, Monte Carlo").layout.yaxis.type == "log"
    missing = [{"step": 0, "nll": None, "nll_se": None, "kl": None, "kl_se": None}]
    assert render.kl_curve(missing, "KL").layout.annotations[0].text == "KL unavailable"
    assert render.nll_curve(missing, None).layout.annotations
    grid = np.linspace(-1, 1, 8)
    assert len(render.density_pair(grid, grid, None, np.zeros((8, 8))).data) == 1  # model only


def csv_bytes(points: torch.Tensor) -> bytes:
    return ("x,y\n" + "\n".join(f"{a:.5f},{b:.5f}" for a, b in points.tolist())).encode()


def test_uploaded_points_train_with_kl_unavailable() -> None:
    at = page("pages/explorer.py")
    at.selectbox(key="target").set_value("data").run()
    assert "Upload a CSV" in texts(at.info)
    assert step_metric(at) == 0 and not at.exception
    points = torch.randn(400, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([2.0, 0.5])
    points_uploader(at).set_value(("mine.csv", csv_bytes(points), "text/csv")).run()
    assert not at.exception
    assert "Model rebuilt" in texts(at.info)
    assert "Your data" in texts(at.caption) and "mine.csv" in texts(at.caption)
    labels = [m.label for m in at.metric]
    assert "KL(p‖q) · unavailable" in labels and "NLL · exact" in labels
    press(at, "step")
    assert step_metric(at) == 1 and not at.exception


def test_a_bad_upload_is_refused_and_loses_nothing() -> None:
    at = page("pages/explorer.py")
    press(at, "step")
    at.selectbox(key="target").set_value("data").run()
    points_uploader(at).set_value(("bad.csv", b"x,y\n1,2\n3,oops\n", "text/csv")).run()
    assert not at.exception
    assert "bad.csv line 3" in texts(at.error)
    assert step_metric(at) == 1  # the model trained on 8gaussians is still there


def test_density_pair_shows_a_users_points_beside_the_model() -> None:
    x, y = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4)
    fig = render.density_pair(x, y, None, np.zeros((4, 5)), data=np.zeros((10, 2)))
    assert [t.type for t in fig.data] == ["scattergl", "heatmap"]
    assert fig.layout.annotations[0].text == "your data (held-out points)"


def test_every_target_renders_and_steps() -> None:
    at = page("pages/explorer.py", {"model": "gaussian"})
    for name in TARGETS:
        at.selectbox(key="target").select(name).run()
        press(at, "step")
        assert not at.exception, name
        assert step_metric(at) == 1, name
        assert len(charts(at)) == 5, name  # two densities, NLL, KL, the Gaussian's contours


@pytest.mark.parametrize("name", MODELS)
def test_every_family_steps_and_draws_its_view(name: str) -> None:
    """Each family trains from the picker with its defaults and draws its own view, with every
    view slider moved to its far end; a view that fails would show a warning instead."""
    at = page("pages/explorer.py", {"model": name})
    press(at, "step")
    assert not at.exception and step_metric(at) == 1, name
    charts = chart_keys(at)
    has_view = MODELS[name].view is not GenerativeModel.view
    assert ("family_view" in charts) == has_view, name
    for control in MODELS[name].view_controls:
        at.slider(key=f"view.{name}.{control.name}").set_value(control.high).run()
        assert not at.exception, (name, control.name)
    assert "could not be drawn" not in texts(at.warning), name


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"steps": "10000000"}, "steps must be a whole number in [1, 1,000,000]"),
        ({"seed": "3000000000"}, "seed"),
    ],
)
def test_a_link_beyond_the_widgets_limits_says_so(query: dict[str, str], said: str) -> None:
    """A link gets the sidebar's limits: out of range is a message, never a silent clamp."""
    at = page("pages/explorer.py", {**SMALL, **query})
    assert not at.exception
    assert "Could not read this link" in texts(at.error) and said in texts(at.error)
    assert at.number_input(key="steps").value == 3000 and at.number_input(key="seed").value == 0
