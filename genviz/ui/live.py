"""The live view: fragments that draw the latest snapshot of the session's model, several times a second.

Training runs in a worker process (`genviz.engine`); these fragments only read a snapshot
and draw it, so a redraw never slows training, and their charts are updated in place
(`genviz.ui.charts`). The fast fragment (progress, numbers and the density pair) refreshes
most often, the curves less often, and the details below the fold least; every interval
grows when many sessions share the server.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from genviz.config import USER_DATA, RunConfig
from genviz.engine import LOST, Snapshot, scheduler
from genviz.metrics import Result
from genviz.models import MODELS
from genviz.models.base import GenerativeModel, ViewControl
from genviz.train import Evaluation, density_title
from genviz.ui import polling
from genviz.ui.charts import live_chart
from genviz.ui.state import (
    PLOTLY_CONFIG,
    STATE_KEY,
    TARGET_RESOLUTION,
    Session,
    chart_config,
    config_from_link,
    session,
    target_density,
)
from genviz.ui.widgets import LIVE_KEY, buttons
from genviz.views import render
from genviz.worker import N_SAMPLES, DensityFrame

FAST_EVERY = 0.12  # seconds between redraws of the numbers and the density pair, on a quiet server
CURVES_EVERY = 0.5
DETAILS_EVERY = 1.0  # the texts below the fold, and the family's view
# Runs a second one training page asks for at these rates: the fast part, the curves, the texts,
# the family view and the group's heartbeat.
PAGE_RUNS = 1 / FAST_EVERY + 1 / CURVES_EVERY + 2 / DETAILS_EVERY + 1 / polling.HEARTBEAT
DENSITY_HEIGHT = 330
EXPLORER_TITLE = "Maximum likelihood is KL minimisation"
CURVE_HEIGHT = 250
DATA_POINTS = 1500  # a user's points drawn beside the model


def refresh_intervals() -> tuple[float, float, float]:
    """(fast, curves, details) seconds: when the training pages together would ask the server for
    more runs a second than the host allows (`page_runs_per_second`, 45 by default), every page
    polls proportionally less often. Known before the runs arrive, so a class that presses Train
    at once does not flood the server; `polling.DrawingLoad` stretches further if drawing lags."""
    engine = scheduler()
    budget = engine.limits.page_runs_per_second
    load = max(1.0, engine.running() * PAGE_RUNS / budget) if budget > 0 else 1.0
    return FAST_EVERY * load, CURVES_EVERY * load, DETAILS_EVERY * load


def session_with_preview() -> Session:
    """This browser session's state (`session()`). Its first load builds the model, which takes a
    few seconds on a cold server (the worker loads torch first); meanwhile the page shows the
    target it will be fitted to. Streamlit sends the preview while the build is awaited."""
    placeholder = st.empty()  # on every run, so that the elements after it keep their places
    if STATE_KEY not in st.session_state:
        with placeholder.container():
            loading_preview(st.query_params.to_dict())
    state = session()
    placeholder.empty()
    return state


def loading_preview(query: dict[str, str]) -> None:
    """The link's target beside a note that its model is being built, laid out as the density pair."""
    config, _ = config_from_link(query)  # a link that cannot be read previews the defaults it falls back to
    # a heading first, as the page has: the first line of the page sits partly under Streamlit's header
    st.markdown(f"#### {EXPLORER_TITLE}")
    left, _ = st.columns([2, 1.15], gap="small")  # where the density pair will be
    target_column, model_column = left.columns(2, gap="small")
    x, y, log_p, cmax = target_on_scale(config)
    with target_column:
        live_chart(target_panel(x, y, log_p, cmax), key="preview_target", config=chart_config("target"))
    model_column.info(
        f"The {MODELS[config.model].title} for **{config.target}** is being built; its density appears here.",
        icon=":material/hourglass_top:",
    )


def live_view() -> None:
    """The numbers and density pair on the left, the curves on the right, the details below: parts
    that poll while there is something new to show (see `genviz.ui.polling`)."""
    polling.group(LIVE_KEY, _live_parts)


def _live_parts() -> None:
    state = session()
    snapshot = state.snapshot
    # While training, while a paused model's full evaluation is on its way, and while a command
    # waits for its answer from a busy worker, the parts poll.
    active = snapshot.running or snapshot.evaluating or state.handle.pending
    fast, curves, details = refresh_intervals() if active else (None, None, None)
    left, right = st.columns([2, 1.15], gap="small")
    with left:
        buttons(state)  # in the group: see `genviz.ui.polling` on where widgets go
        polling.part(_numbers_and_densities, fast)
    with right:
        polling.part(_curves, curves)
    st.checkbox("overlay samples", key="overlay", help=f"{N_SAMPLES:,} samples drawn from q")
    polling.part(_texts, details)
    family_view(state, details)


def _numbers_and_densities() -> None:
    state = session()
    snapshot = state.handle.watch(bool(st.session_state.get("overlay")), _view_controls(state))
    st.progress(snapshot.progress, text=progress_text(state, snapshot))
    status_messages(snapshot)
    metrics_row(state, snapshot)
    density_pair(state, snapshot)


def _curves() -> None:
    state = session()
    snapshot = state.snapshot
    if not snapshot.ready:
        return
    key = (len(snapshot.history), snapshot.history[-1].step, len(snapshot.checks))
    nll, kl = state.figure("curves", key, lambda: learning_curves(snapshot))
    live_chart(nll, key="nll", config=chart_config("nll"))
    live_chart(kl, key="kl", config=chart_config("kl"))


def learning_curves(snapshot: Snapshot) -> tuple[Any, Any]:
    """The held-out NLL over its floor, and the KL with its cross-checks."""
    evaluation = snapshot.history[-1]
    rows = [e.row() for e in snapshot.history]
    nll_label = f"held-out NLL ({evaluation.nll.kind})"
    nll = render.nll_curve(rows, evaluation.entropy, label=nll_label, height=CURVE_HEIGHT)
    kl_label = f"KL(p‖q) ({evaluation.kl.kind})"  # its method is in the card's help and the caption
    checks = [(step, r.value) for step, r in snapshot.checks if r.value is not None]
    return nll, render.kl_curve(rows, kl_label, checks=checks, height=CURVE_HEIGHT)


def _texts() -> None:
    snapshot = session().snapshot
    if snapshot.ready:
        labelled_texts(snapshot.history[-1], snapshot.checks[-1] if snapshot.checks else None)


# ------------------------------------------------------------------ numbers


def progress_text(state: Session, snapshot: Snapshot) -> str:
    """One line under the progress bar: where training is, how fast, and why it stopped if it did."""
    budget = f" of {state.config.steps:,}" if state.config.steps else ""
    parts = [f"step {snapshot.step:,}{budget}"]
    if snapshot.running and snapshot.rate:
        overall = f", {snapshot.wall_rate:.0f}/s overall" if snapshot.wall_rate else ""
        parts.append(f"{snapshot.rate:.0f} steps/s{overall}")
    parts.append(f"learning rate {snapshot.lr:.2e} ({state.config.schedule})")
    if snapshot.running and snapshot.sharing > 1:
        queued = f", queued — {snapshot.ahead} ahead of you" if snapshot.ahead else ", training now"
        parts.append(f"{snapshot.sharing} sessions take turns on this training slot{queued}")
    elif snapshot.stopped:
        parts.append(snapshot.stopped)
    elif snapshot.pause_reason:
        parts.append(snapshot.pause_reason)
    elif snapshot.done:
        parts.append("step budget reached: raise it to go on, or Reset")
    return " · ".join(parts)


def metrics_row(state: Session, snapshot: Snapshot) -> None:
    if not snapshot.ready:
        return
    evaluation = snapshot.history[-1]
    step, nll, kl, entropy = st.columns(4)
    budget = state.config.steps
    _card(step, "Step", f"{snapshot.step:,}", f"of {budget:,}" if budget else "no budget", STEP_HELP)
    at = f"at step {evaluation.step:,}" if evaluation.step != snapshot.step else None
    _result_metric(nll, "NLL", evaluation.nll, at, "held-out negative log-likelihood")
    _result_metric(kl, "KL(p‖q)", evaluation.kl, at)
    _result_metric(entropy, "H(p)", evaluation.entropy, "the NLL's floor")


STEP_HELP = (
    "optimisation steps taken; training pauses at the step budget. The line above gives the steps per "
    "second of training time and overall (lower when sessions share a training slot)"
)


def _card(column: Any, label: str, value: str, note: str | None, help: str) -> None:
    """A metric with a grey note under the value, so that every card has the same height."""
    column.metric(label, value, note, delta_color="off", delta_arrow="off", help=help, border=True)


def _result_metric(column: Any, label: str, result: Result, note: str | None = None, what: str = "") -> None:
    """A labelled number: its kind in the label, ± one standard error below, its method in the help."""
    what = f"{what}; " if what else ""
    if result.value is None:
        _card(column, f"{label} · unavailable", "—", "not computable here", what + result.method)
        return
    spread = f"± {result.se:.3f}" if result.se is not None else note
    help = f"{what}{result.kind}: {result.method}" + (
        "; ± one standard error" if result.se is not None else ""
    )
    value = f"{result.value:.3f}"
    if result.error is not None:  # an estimator with a calibrated error: the error is the wider bar
        spread = f"± {result.error:g} estimator error"
        help += f"; the estimator was off by up to {result.error:g} where the exact value is known"
        if result.at_its_floor:
            value = f"≈ {result.floor:.3f}" if result.floor else "≈ 0"
            spread = f"within ±{result.error:g} (estimate {result.value:.3f})"
    _card(column, f"{label} · {result.kind}", value, spread, help)


def labelled_texts(evaluation: Evaluation, check: tuple[int, Result] | None) -> None:
    lines = [f"At step {evaluation.step:,}: " + evaluation.nll.text()]
    lines += [other.text() for other in evaluation.others]
    lines += [evaluation.entropy.text(), evaluation.kl.text()]
    if evaluation.reverse_kl is not None:  # KL(q‖p) over fresh samples of q, for an exact density
        lines.append(evaluation.reverse_kl.text())
    if check is not None:
        lines.append(f"cross-check at step {check[0]:,}: {check[1].text()}")
    st.caption("  \n".join(lines))


def status_messages(snapshot: Snapshot) -> None:
    """Rollbacks, a kept best state and a model lost with its worker, in boxes; the rest is said in
    the progress line."""
    for message in snapshot.rollbacks:
        st.warning(message, icon=":material/undo:")
    if snapshot.best_note:  # a family that keeps its best state: brought back, or better than now
        st.info(snapshot.best_note, icon=":material/bookmark:")
    if snapshot.build_error == LOST:  # the worker died; other build errors are the header's
        st.error(LOST, icon=":material/error:")


# ------------------------------------------------------------------ figures


def density_pair(state: Session, snapshot: Snapshot) -> None:
    """The target (or the user's points) beside the model, on one colour scale fixed by the target."""
    frame = snapshot.density
    if frame is None:
        return
    target_column, model_column = st.columns(2, gap="small")
    if state.config.target == USER_DATA:
        cmax = render.density_scale(None, frame.log_q)
        key = (USER_DATA, state.upload_digest, frame.resolution, cmax)  # the points' content, not their name
        left = state.figure("target", key, lambda: data_panel(state, frame, cmax))
    else:
        config = state.config
        x, y, log_p, cmax = target_on_scale(config)
        key = (config.target, config.formula, config.box, cmax)
        left = state.figure("target", key, lambda: target_panel(x, y, log_p, cmax))
    with target_column:
        live_chart(left, key="target_density", config=chart_config("target"))
    title = density_title(MODELS[state.config.model])
    if frame.step != snapshot.step or frame.resolution < TARGET_RESOLUTION:
        title += f" · step {frame.step:,}, {frame.resolution}²"
    key = (frame.step, frame.resolution, frame.samples is not None, cmax, title)
    right = state.figure("model", key, lambda: model_panel(frame, cmax, title))
    with model_column.container(key="density"):
        live_chart(right, key="model_density", config=chart_config("model"))


def target_on_scale(config: RunConfig) -> tuple[Any, Any, Any, float]:
    """(x, y, log p) of the configuration's target (not a user's points), and the top of the colour
    scale it fixes for the density pair."""
    x, y, log_p = target_density(config.target, TARGET_RESOLUTION, config.formula, config.box)
    return x, y, log_p, render.density_scale(log_p, None)


def target_panel(x: Any, y: Any, log_p: Any, cmax: float) -> Any:
    return render.density_panel(
        x, y, log_p, cmax=cmax, title="target p(x)", height=DENSITY_HEIGHT, colorbar=False
    )


def data_panel(state: Session, frame: DensityFrame, cmax: float) -> Any:
    """A user's points, on the model's box."""
    shown = state.points[:DATA_POINTS].numpy() if state.points is not None else None
    return render.density_panel(
        frame.x, frame.y, None, cmax=cmax, title="your data", points=shown, height=DENSITY_HEIGHT,
        colorbar=False,
    )  # fmt: skip


def model_panel(frame: DensityFrame, cmax: float, title: str) -> Any:
    return render.density_panel(
        frame.x, frame.y, frame.log_q, cmax=cmax, title=title, samples=frame.samples,
        height=DENSITY_HEIGHT, colorbar=False,
    )  # fmt: skip


def family_view(state: Session, every: float | None) -> None:
    """The family's own figure, polling every `every` seconds, with its sliders beside it (in the
    group, as every widget of a live page)."""
    family = MODELS[state.config.model]
    if family.view is GenerativeModel.view:
        return
    st.subheader(family.view_title or f"Inside the {family.title}")
    figure_column, controls_column = st.columns([3, 1])
    with controls_column:
        for control in family.view_controls:
            view_slider(state.config.model, control)
        st.caption(family.summary)
    with figure_column:
        polling.part(_family_figure, every)


def _family_figure() -> None:
    state = session()
    frame = state.snapshot.view
    if frame is None:
        st.caption("The view is drawn once the model has trained a little.")
    elif frame.error is not None:
        st.warning(f"This view could not be drawn: {frame.error}", icon=":material/error:")
    elif frame.view is not None:
        figure = state.figure("view", (frame.step, frame.controls), lambda: render.figure(frame.view))
        live_chart(figure, key="family_view", config=PLOTLY_CONFIG)


def _view_controls(state: Session) -> dict[str, float]:
    """The family view's slider values, as last set (their widgets live in the details fragment)."""
    family = MODELS[state.config.model]
    values = {}
    for control in family.view_controls:
        key = f"view.{state.config.model}.{control.name}"
        values[control.name] = float(st.session_state.get(key, control.default))
    return values


def view_slider(model: str, control: ViewControl) -> float:
    key = f"view.{model}.{control.name}"
    if key not in st.session_state:
        st.session_state[key] = control.default
    step = control.step or (control.high - control.low) / 100
    return st.slider(control.label, control.low, control.high, step=step, key=key, help=control.help or None)


def page_style() -> None:
    """Less empty space above the page than Streamlit's default, so the charts fit a screen."""
    st.html(
        "<style>[data-testid='stMainBlockContainer']{padding-top:2.8rem;padding-bottom:1rem}"
        "[data-testid='stMetric']{padding:0.45rem 0.6rem}"
        "[data-testid='stMetricLabel'] p{font-size:0.78rem}"
        "[data-testid='stMetricValue']{font-size:1.5rem}</style>"
    )
