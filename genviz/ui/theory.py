"""The Theory page: the maximum-likelihood chain, each step beside the labelled number from the
session's live run, the chart of all of them, and the underflow table."""

from __future__ import annotations

from typing import Any

import streamlit as st

from genviz.config import ConfigError
from genviz.engine import Snapshot
from genviz.lesson import FORWARD_KL, LikelihoodProduct, curve_rows, derivation
from genviz.metrics import Result
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.ui import polling
from genviz.ui.charts import live_chart
from genviz.ui.live import progress_text, refresh_intervals, status_messages
from genviz.ui.state import PLOTLY_CONFIG, Session, session
from genviz.ui.widgets import LIVE_KEY, buttons
from genviz.views import render


def run_controls(state: Session) -> None:
    """The target and the model of the session's run; a change rebuilds the model."""
    config = state.config
    target_column, model_column = st.columns(2)
    targets = list(TARGETS) if config.target in TARGETS else [config.target, *TARGETS]  # keeps a user's own
    _seed_widgets(config.target, config.model)
    target = target_column.selectbox("Target p*", targets, key="theory.target", help=TARGET_HELP)
    model = model_column.selectbox(
        "Model p_θ", list(MODELS), key="theory.model", format_func=lambda n: f"{MODELS[n].title} ({n})"
    )
    if (target, model) == (config.target, config.model):
        return
    changes: dict[str, Any] = {"target": target}
    if model != config.model:
        changes |= {"model": model, "params": {}, "lr": None}
    try:
        wanted = config.with_changes(**changes)
    except ConfigError as error:
        st.error(str(error))
        return
    if target != config.target and config.target in TARGETS:
        st.session_state["theory.previous"] = config.target
    state.apply(wanted)
    if state.build_error:
        st.error(state.build_error)


TARGET_HELP = "the data distribution p*: its entropy H(p*) is the floor under the cross-entropy"


def md(text: str) -> str:
    """Plain text for Markdown: the asterisk of p* is no emphasis."""
    return text.replace("*", "\\*")


def _seed_widgets(target: str, model: str) -> None:
    """The two selectors show the run's pair whenever it changed elsewhere (the Explorer, a link)."""
    seeded = st.session_state.get("theory.seeded") == (target, model)
    if not seeded or "theory.target" not in st.session_state or "theory.model" not in st.session_state:
        st.session_state["theory.target"], st.session_state["theory.model"] = target, model
        st.session_state["theory.seeded"] = (target, model)


def derivation_live() -> None:
    """The chain, its numbers and the chart: one part that polls while the run trains, in the group
    the buttons rerun (see `genviz.ui.polling`), as on the Explorer."""
    polling.group(LIVE_KEY, _derivation_part)


def _derivation_part() -> None:
    state = session()
    snapshot = state.snapshot
    active = snapshot.running or snapshot.evaluating or state.handle.pending
    buttons(state)  # in the group: see `genviz.ui.polling` on where widgets go
    polling.part(_derivation, refresh_intervals()[1] if active else None)


def _heartbeat(state: Session) -> Snapshot:
    """Tell the worker the page is still there (an idle page pauses), with what the Explorer shows:
    its overlay and its family view's sliders, so that nothing there is recomputed for this page."""
    family = MODELS[state.config.model]
    controls = {
        c.name: float(st.session_state.get(f"view.{state.config.model}.{c.name}", c.default))
        for c in family.view_controls
    }
    return state.handle.watch(bool(st.session_state.get("overlay")), controls)


def _derivation() -> None:
    state = session()
    snapshot = _heartbeat(state)
    st.progress(snapshot.progress, text=progress_text(state, snapshot))
    status_messages(snapshot)
    if not snapshot.ready:
        st.caption("The numbers appear once the model has been evaluated.")
        return
    family = MODELS[state.config.model]
    objective = state.config.objective
    steps = derivation(snapshot.history[-1], family, objective)
    _objective_note(family, objective)
    _chain(steps)
    key = (len(snapshot.history), snapshot.history[-1].step, state.config.target)
    chart = state.figure("theory", key, lambda: _chart(snapshot.history, family, objective, steps))
    live_chart(chart, key="derivation", config=PLOTLY_CONFIG)
    _floor_moved(steps.entropy)
    underflow_table(steps.products, steps.cross_entropy)


def _objective_note(family: type, objective: str) -> None:
    if objective != FORWARD_KL:
        st.info(md("This run minimises the reverse KL(q‖p*), not the likelihood: the chain below is what "
                "maximum likelihood would do, and the numbers are what this model reaches."))  # fmt: skip
    elif family.training_loss == "other":
        st.info(f"The {family.title.lower()} is not trained by maximum likelihood (its loss is the "
                f"{family.loss_name}); the chain still says what its held-out numbers mean.")  # fmt: skip


ROWS = (
    (
        r"\hat\theta \;=\; \arg\max_\theta \; \prod_{i=1}^{n} p_\theta(x_i)",
        "Maximum likelihood: the parameters under which the data are most probable.",
    ),
    (
        r"\;=\; \arg\max_\theta \; \sum_{i=1}^{n} \log p_\theta(x_i)",
        "The log is increasing, so it keeps the maximiser, and a sum does not underflow (table below).",
    ),
    (
        r"\;=\; \arg\max_\theta \; \frac{1}{n}\sum_{i=1}^{n} \log p_\theta(x_i)"
        r"\;\xrightarrow{\;n\to\infty\;}\;"
        r"\arg\max_\theta \; \mathbb{E}_{x\sim p^*}\!\left[\log p_\theta(x)\right]",
        "Dividing by n changes nothing; the mean tends to an expectation under the data distribution p*.",
    ),
    (
        r"\;=\; \arg\min_\theta \; \mathbb{E}_{p^*}\!\left[-\log p_\theta(x)\right]",
        "Maximising a mean log-likelihood is minimising the cross-entropy of p_θ relative to p*.",
    ),
    (
        r"\begin{gathered}\;=\; \arg\min_\theta \; \mathrm{KL}(p^*\,\|\,p_\theta), \quad\text{since}\\"
        r"\mathbb{E}_{p^*}\!\left[-\log p_\theta\right] = H(p^*) + \mathrm{KL}(p^*\,\|\,p_\theta)"
        r"\end{gathered}",
        "H(p*) does not depend on θ: the cross-entropy's floor is H(p*), reached when KL = 0, i.e. p_θ = p*.",
    ),
)


def _chain(steps: Any) -> None:
    last = steps.products[-1] if steps.products else None
    product = _product_result(last, steps.cross_entropy)
    numbers = (
        [product],
        [steps.log_sum],
        [steps.training, steps.held_out],
        [steps.cross_entropy],
        [steps.entropy, steps.kl, steps.gap],
    )
    for (equation, why), results in zip(ROWS, numbers, strict=True):
        maths, cards = st.columns([4, 3], vertical_alignment="center")
        maths.latex(equation)
        maths.caption(md(why))
        for column, result in zip(cards.columns(len(results)), results, strict=True):
            result_card(column, result)
    st.caption(
        md(
            f"{steps.sample_entropy.text()}: the KL is this run's NLL minus the entropy on the same points "
            f"(paired differences, a small standard error); {steps.gap.name} uses H(p*) itself and agrees "
            "within the Monte Carlo error."
        )
    )


def _product_result(last: LikelihoodProduct | None, nll: Result) -> Result:
    if last is None:
        return Result("Π q(xᵢ)", None, None, "unavailable", "no held-out log-likelihoods")
    name = f"Π of {last.n:,} q(xᵢ), float64"
    method = f"the product over the first {last.n:,} held-out points"
    return Result(name, last.product64, None, nll.kind, method)


def result_card(column: Any, result: Result) -> None:
    """A labelled number: its kind in the label, ± one standard error below, its method in the help."""
    if result.value is None:
        column.metric(f"{result.name} · unavailable", "—", "not computable here", delta_color="off",
                      delta_arrow="off", help=result.method, border=True)  # fmt: skip
        return
    value = _number(result.value)
    note = f"± {result.se:.3f}" if result.se is not None else ("underflows to 0" if result.value == 0 else "")
    column.metric(f"{result.name} · {result.kind}", value, note or None, delta_color="off", delta_arrow="off",
                  help=f"{result.kind}: {result.method}", border=True)  # fmt: skip


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.3e}" if abs(value) < 1e-3 else f"{value:.3f}"


def _chart(history: Any, family: type, objective: str, steps: Any) -> Any:
    rows = curve_rows(history, family, objective)
    labels = {
        "training": f"mean log q, training batches ({steps.training.kind})",
        "held_out": f"mean log q, held-out ({steps.held_out.kind})",
        "cross_entropy": f"cross-entropy E[−log q] ({steps.cross_entropy.kind})",
        "kl": f"KL(p*‖q) ({steps.kl.kind})",
        "entropy": f"H(p*) ({steps.entropy.kind})",
    }
    return render.derivation_curves(rows, steps.entropy.value, labels)


def _floor_moved(entropy: Result) -> None:
    """After a change of target: the floor moved, the optimum did not."""
    previous = st.session_state.get("theory.previous")
    target = session().config.target
    if previous is None or previous == target or entropy.value is None:
        return
    before = TARGETS[previous].entropy
    st.success(
        md(
            f"H(p*) moved from {before:.3f} nats ({previous}) to {entropy.value:.3f} ({target}): the "
            "cross-entropy has a new floor, and the optimum is still KL = 0, where p_θ = p*."
        )
    )


FLOAT32_LOG_TINY = -103.28  # log of the smallest positive float32 (1.4e-45); below it, 0
FLOAT64_LOG_TINY = -744.44  # log of the smallest positive float64 (4.9e-324)


def underflow_table(products: tuple[LikelihoodProduct, ...], nll: Result) -> None:
    st.markdown("##### Why the log: the product of likelihoods underflows, the sum of logs does not")
    if not products:
        st.caption("No held-out log-likelihoods to multiply yet.")
        return
    rows = [
        {
            "n held-out points": f"{p.n:,}",
            "Π q(xᵢ) in float32": _product(p.product32),
            "Π q(xᵢ) in float64": _product(p.product64),
            "Σ log q(xᵢ)": f"{p.log_sum:,.2f}",
        }
        for p in products
    ]
    st.table(rows, hide_index=True)
    st.caption(
        f"Multiplied one factor at a time from this run's held-out likelihoods ({nll.kind}). The smallest "
        f"positive float32 is e^{FLOAT32_LOG_TINY:.1f} and float64's e^{FLOAT64_LOG_TINY:.1f}"
        + _underflow_sizes(nll.value)
    )


def _underflow_sizes(nll: float | None) -> str:
    """From how many points the product is 0, at this mean NLL per point."""
    if nll is None or nll <= 0:
        return "; a mean log-likelihood at or above 0 would not underflow, but it can overflow instead."
    n32, n64 = int(-FLOAT32_LOG_TINY / nll) + 1, int(-FLOAT64_LOG_TINY / nll) + 1
    return (
        f": at {nll:.2f} nats a point, the product is 0 from about n = {n32:,} in float32 and n = {n64:,} "
        "in float64, while the sum of logs stays an ordinary number."
    )


def _product(value: float) -> str:
    return "0 (underflow)" if value == 0 else f"{value:.3e}"
