"""The live view: a fragment that trains one bounded tick per run, then draws metrics and charts."""

from __future__ import annotations

from typing import Any

import streamlit as st

from genviz.metrics import Result
from genviz.models.base import GenerativeModel, ViewControl
from genviz.train import Evaluation, Trainer
from genviz.ui.state import (
    LIVE_RESOLUTION,
    N_SAMPLES,
    PLOTLY_CONFIG,
    RUN_EVERY,
    Session,
    session,
    target_density,
)
from genviz.views import render as plot  # live.py defines its own render()


def live_view() -> None:
    """Metrics and charts. While training, a fragment reruns on a timer and trains one tick per
    run; a full rerun while training (a click, or a test driving the script) also advances a tick."""
    running = session().running

    @st.fragment(run_every=RUN_EVERY if running else None)
    def panel() -> None:
        state = session()
        with state.lock:
            was_running = state.running
            if state.running:
                state.tick()
            render(state)
        if was_running and not state.running:
            st.rerun()  # training just ended: redraw the buttons and stop the timer

    panel()


def render(state: Session) -> None:
    trainer = state.trainer
    evaluation = trainer.history[-1]
    st.progress(trainer.progress, text=progress_text(trainer))
    metrics_row(state, evaluation)
    labelled_texts(evaluation, state.cross_check())
    status_messages(trainer)
    overlay = st.checkbox("overlay samples", key="overlay", help=f"{N_SAMPLES:,} samples drawn from q")
    density_chart(state, overlay)
    rows = [e.row() for e in trainer.history]
    kl_label = f"KL(p‖q) — {evaluation.kl.kind}, {evaluation.kl.method}"
    checks = [(step, r.value) for step, r in state.checks if r.value is not None]
    left, right = st.columns(2)
    nll_label = f"held-out NLL ({evaluation.nll.kind})"
    left.plotly_chart(
        plot.nll_curve(rows, evaluation.entropy, label=nll_label), key="nll", config=PLOTLY_CONFIG
    )
    right.plotly_chart(plot.kl_curve(rows, kl_label, checks=checks), key="kl", config=PLOTLY_CONFIG)
    family_view(state)


def family_view(state: Session) -> None:
    """The family's own figure, with its sliders beside it."""
    model = state.trainer.model
    if type(model).view is GenerativeModel.view:
        return
    st.subheader(model.view_title or f"Inside the {model.title}")
    figure_column, controls_column = st.columns([3, 1])
    with controls_column:
        controls = {c.name: view_slider(state.config.model, c) for c in model.view_controls}
        st.caption(model.summary)
    figure, error = state.family_view(controls)
    if error is not None:
        figure_column.warning(f"This view could not be drawn: {error}", icon=":material/error:")
    elif figure is not None:
        figure_column.plotly_chart(figure, key="family_view", config=PLOTLY_CONFIG)


def view_slider(model: str, control: ViewControl) -> float:
    key = f"view.{model}.{control.name}"
    if key not in st.session_state:
        st.session_state[key] = control.default
    step = control.step or (control.high - control.low) / 100
    return st.slider(control.label, control.low, control.high, step=step, key=key, help=control.help or None)


def progress_text(trainer: Trainer) -> str:
    budget = f" of {trainer.config.steps:,}" if trainer.config.steps else ""
    return f"step {trainer.step:,}{budget} · learning rate {trainer.lr:.2e} ({trainer.config.schedule})"


def metrics_row(state: Session, evaluation: Evaluation) -> None:
    step, rate, nll, kl, entropy = st.columns(5)
    budget = state.trainer.config.steps
    _card(step, "Step", f"{evaluation.step:,}", f"of {budget:,}" if budget else "no budget", STEP_HELP)
    speed = f"{state.rate:.0f}" if state.rate else "—"
    overall = f"{state.wall_rate:.0f}/s overall" if state.wall_rate else "training time only"
    _card(rate, "Steps/s", speed, overall, RATE_HELP)
    _result_metric(nll, "Held-out NLL", evaluation.nll)
    _result_metric(kl, "KL(p‖q)", evaluation.kl)
    _result_metric(entropy, "H(p)", evaluation.entropy, "the NLL's floor")


STEP_HELP = "optimisation steps taken; training pauses at the step budget"
RATE_HELP = (
    "training steps per second of training time in the last update; "
    "below it, the overall rate including evaluation and drawing"
)


def _card(column: Any, label: str, value: str, note: str | None, help: str) -> None:
    """A metric with a grey note under the value, so that every card has the same height."""
    column.metric(label, value, note, delta_color="off", delta_arrow="off", help=help, border=True)


def _result_metric(column: Any, label: str, result: Result, note: str | None = None) -> None:
    """A labelled number: its kind in the label, ± one standard error below, its method in the help."""
    if result.value is None:
        _card(column, f"{label} · unavailable", "—", "not computable here", result.method)
        return
    spread = f"± {result.se:.3f} (1 se)" if result.se is not None else note
    _card(
        column, f"{label} · {result.kind}", f"{result.value:.3f}", spread, f"{result.kind}: {result.method}"
    )


def labelled_texts(evaluation: Evaluation, check: tuple[int, Result] | None) -> None:
    lines = [evaluation.nll.text(), *(other.text() for other in evaluation.others)]
    lines += [evaluation.entropy.text(), evaluation.kl.text()]
    if check is not None:
        lines.append(f"cross-check at step {check[0]:,}: {check[1].text()}")
    st.caption("  \n".join(lines))


def status_messages(trainer: Trainer) -> None:
    for rollback in trainer.rollbacks[-3:]:
        st.warning(rollback.message(), icon=":material/undo:")
    if trainer.stopped:
        st.warning(trainer.stopped, icon=":material/error:")
    elif trainer.done:
        st.success(f"Step budget reached at step {trainer.step:,}: raise it to go on, or Reset.")


def density_chart(state: Session, overlay: bool) -> None:
    view = state.model_view(overlay)
    data = state.trainer.data
    resolution = state.resolution(LIVE_RESOLUTION)
    log_p = None if data.target is None else target_density(data.target.name, resolution)[2]
    shown = None if data.target is not None else data.test[:N_SAMPLES].numpy()  # a user's points
    samples = view.get("samples") if overlay else None
    titles = ("target p(x)", state.trainer.density_title)
    fig = plot.density_pair(view["x"], view["y"], log_p, view["log_q"], samples, data=shown, titles=titles)
    st.plotly_chart(fig, key="density", config=PLOTLY_CONFIG)


def page_style() -> None:
    """Less empty space above the page title than Streamlit's default, so the charts fit a screen."""
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")
