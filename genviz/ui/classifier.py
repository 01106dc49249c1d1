"""The classifier page's state and live view: a generative and a discriminative classifier trained
side by side on a labelled target (`genviz.classify_live`), drawn several times a second.

The class densities train in the engine's worker processes; the page only sends commands, collects
answers and draws. Each browser session's classifiers live in its `st.session_state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st

from genviz.classify import (
    MAX_STEPS,
    MIN_STEPS,
    ClassificationData,
    Scores,
    bayes_scores,
    classification_data,
    decision_regions,
    density_families,
    generative_kind,
    labelled_targets,
    log_posterior,
)
from genviz.classify_live import GRID_RESOLUTION, NETWORK_STEPS, LiveClassifier, Side
from genviz.config import MAX_SEED, MIN_SEED, ConfigError
from genviz.engine import scheduler
from genviz.grid import Box
from genviz.metrics import Result
from genviz.models import MODELS
from genviz.targets import TARGETS
from genviz.ui import polling
from genviz.ui.charts import live_chart
from genviz.ui.state import CachedFigures
from genviz.views import render

STATE_KEY = "genviz.classify"
POLL_EVERY = 0.3  # seconds between refreshes while training or waiting for answers
CLASSIFIER_GROUP = "classifier.live"  # the fragment group of the live view and its buttons
FIGURE_HEIGHT = 300  # the class samples' chart; the regions' height follows the box's shape
TRAIN_SIZES = (500, 1000, 2000, 5000, 10_000, 20_000)
N_TEST = 2000
SHOWN_POINTS = 600  # test points drawn over the decision regions
PLOTLY_CONFIG = {"displaylogo": False}
PROBE_LIMIT = 100.0  # the judged point's coordinates lie in [−100, 100]


@dataclass(frozen=True)
class Choice:
    """What the sidebar asks for; any change means new data and new classifiers."""

    target: str = "moons"
    family: str = "gmm"
    n_train: int = 2000
    steps: int = 300
    seed: int = 0


@dataclass
class ClassifierState(CachedFigures):
    """One browser session's data, classifiers and messages."""

    choice: Choice
    data: ClassificationData
    bayes: Scores
    live: LiveClassifier | None = None
    probe: tuple[float, float] = (0.0, 0.3)  # the point judged, in the sidebar
    notice: str | None = None
    error: str | None = None
    figures: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)


def prepared(choice: Choice) -> ClassifierState:
    data = classification_data(choice.target, choice.n_train, N_TEST, choice.seed)
    return ClassifierState(choice, data, bayes_scores(data.target, data.test))


def classifier_state() -> ClassifierState:
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = prepared(Choice())
    return st.session_state[STATE_KEY]


# ---------------------------------------------------------------- controls


def sidebar(state: ClassifierState) -> Choice:
    """The data and the density family; every widget's range is the library's limits."""
    current = state.choice
    for name in ("target", "family", "n_train", "steps", "seed"):
        _init(f"c.{name}", getattr(current, name))
    with st.sidebar:
        st.header("Data and densities")
        target = st.selectbox("Labelled target", labelled_targets(), key="c.target",
                              format_func=lambda n: f"{n} ({len(TARGETS[n].classes)} classes)")  # fmt: skip
        family = st.selectbox("Class density", density_families(), key="c.family",
                              format_func=lambda n: f"{MODELS[n].title} ({n})", help=FAMILY_HELP)  # fmt: skip
        n_train = st.select_slider("Training points", TRAIN_SIZES, key="c.n_train")
        steps = st.number_input("Steps per class density", MIN_STEPS, MAX_STEPS, step=100, key="c.steps",
                                help=STEPS_HELP)  # fmt: skip
        seed = st.number_input("Seed", MIN_SEED, MAX_SEED, step=1, key="c.seed")
        st.header("A point to judge")
        _init("c.probe_x", state.probe[0])
        _init("c.probe_y", state.probe[1])
        x = st.number_input("x", -PROBE_LIMIT, PROBE_LIMIT, step=0.25, key="c.probe_x", help=PROBE_HELP)
        y = st.number_input("y", -PROBE_LIMIT, PROBE_LIMIT, step=0.25, key="c.probe_y", help=PROBE_HELP)
    state.probe = (float(x), float(y))
    return Choice(target, family, int(n_train), int(steps), int(seed))


def _init(key: str, value: Any) -> None:
    """Seed a widget from the session's choice when it is first drawn (or again after another page)."""
    if key not in st.session_state:
        st.session_state[key] = value


FAMILY_HELP = (
    "the family of each class's density p(x | y); only families with a density can enter Bayes' rule"
)
PROBE_HELP = "the star on the decision regions: how unusual is it, and how is it classified?"
STEPS_HELP = f"each class density's step budget; the network has its own ({NETWORK_STEPS:,} Adam steps)"


def apply(state: ClassifierState, choice: Choice) -> None:
    """New settings: new data; the classifiers of the old ones are freed at once."""
    if choice == state.choice:
        return
    try:
        fresh = prepared(choice)
    except ConfigError as error:
        state.error = f"Cannot use these settings: {error}"
        return
    if state.live is not None:
        state.live.close()
    state.choice, state.data, state.bayes, state.live = choice, fresh.data, fresh.bayes, None
    state.error, state.figures = None, {}
    state.notice = "New settings: press Train to train both classifiers on the new data."


def set_training(state: ClassifierState, wanted: bool) -> None:
    """Train (building the classifiers first if needed) or pause, as the button the user saw said:
    a click delivered twice asks for the same thing twice."""
    if state.live is None and not wanted:
        return
    if state.live is None:
        live = LiveClassifier(state.data, state.choice.family, state.choice.steps)
        live.set_probe(*state.probe)
        with st.spinner("Building one density per class…"):
            problem = live.build(scheduler())
        if problem is not None:
            state.error = f"Cannot train: {problem}"
            return
        state.live, state.notice, state.error = live, None, None
    state.live.run(wanted)


def reset(state: ClassifierState) -> None:
    if state.live is not None:
        state.live.close()
    state.live, state.figures, state.notice = None, {}, None


# ---------------------------------------------------------------- the live view


def live_view(state: ClassifierState) -> None:
    """The buttons and messages, then the numbers and figures in a part that polls while anything
    is under way (see `genviz.ui.polling`). The settings' widgets are all in the sidebar, outside
    the group, so that a redraw never meets a widget the user is changing."""
    polling.group(CLASSIFIER_GROUP, _classifier_group)


def _classifier_group() -> None:
    state = classifier_state()
    buttons(state)
    for message, show in ((state.error, st.error), (state.notice, st.info)):
        if message:
            show(message)
    active = state.live is not None and state.live.busy
    polling.part(_live, POLL_EVERY if active else None)


def _live() -> None:
    state = classifier_state()
    live = state.live
    if live is not None:
        live.set_probe(*state.probe)
        live.tick()
    st.caption(progress_text(state))
    if live is not None and live.problem:
        st.error(live.problem)
    generative = live.generative() if live is not None else None
    discriminative = live.discriminative_side() if live is not None else None
    classifiers(state, generative, discriminative)
    only_generative(state, discriminative)


def buttons(state: ClassifierState) -> None:
    train, reset_column, _ = st.columns([1, 1, 3], vertical_alignment="center")
    live = state.live
    running = live is not None and live.running
    label, icon = ("Pause", ":material/pause:") if running else ("Train", ":material/play_arrow:")
    done = live is not None and live.done
    start_or_pause = polling.rerun_group(CLASSIFIER_GROUP, lambda: set_training(state, not running))
    train.button(label, key="c.train", icon=icon, type="primary", disabled=done, width="stretch",
                 on_click=start_or_pause)  # fmt: skip
    reset_column.button("Reset", key="c.reset", icon=":material/restart_alt:", width="stretch",
                        on_click=polling.rerun_group(CLASSIFIER_GROUP, lambda: reset(state)))  # fmt: skip


def progress_text(state: ClassifierState) -> str:
    choice, live = state.choice, state.live
    family = MODELS[choice.family].title
    if live is None:
        return f"{len(state.data.classes)} classes · {family} class densities · press Train"
    steps = live.steps_taken
    densities = f"class densities ({family}): step {min(steps):,}–{max(steps):,} of {choice.steps:,}"
    network = f"network: step {live.discriminative.step:,} of {live.discriminative.steps:,}"
    status = "training" if live.running else ("done" if live.done else "paused")
    return " · ".join([densities, network, status])


# ---------------------------------------------------------------- the three classifiers


def classifiers(state: ClassifierState, generative: Side | None, discriminative: Side | None) -> None:
    """Generative, discriminative and Bayes-optimal side by side: decision regions, then scores."""
    kind = generative_kind(state.choice.family)
    bayes = _bayes_side(state)
    panels = (
        ("generative", "Generative", "Bayes' rule on p(x | y) p(y)", generative, kind),
        ("discriminative", "Discriminative", "a network on p(y | x)", discriminative, "exact"),
        ("bayes", "Bayes-optimal", "the target's own p(x, y)", bayes, "exact"),
    )
    for column, (name, who, how, side, default_kind) in zip(st.columns(3, gap="small"), panels, strict=True):
        with column.container(key=f"classify-{name}"):
            st.markdown(f"**{who}** · {how}")
            _regions_chart(state, name, side)
            found = None if side is None else side.scores
            kind = default_kind if found is None else found.accuracy.kind
            st.caption(f"scores on {N_TEST:,} test points: **{kind}** (± one standard error)")
            accuracy, loss = st.columns(2, gap="small")
            _card(accuracy, who, None if found is None else found.accuracy, "accuracy")
            _card(loss, who, None if found is None else found.log_loss, "log-loss")


def _bayes_side(state: ClassifierState) -> Side:
    regions, confidence = bayes_regions(state.choice.target, GRID_RESOLUTION)
    return Side(state.bayes, regions, confidence, np.zeros(0), 0)


@st.cache_data(show_spinner=False, max_entries=16)
def bayes_regions(target: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The Bayes-optimal decision regions of a target: they never change, so every session shares them."""
    grid = TARGETS[target].box.grid(resolution)
    return decision_regions(log_posterior(TARGETS[target].class_log_prob(grid.points)), grid)


def _regions_chart(state: ClassifierState, name: str, side: Side | None) -> None:
    if side is None:
        st.caption("Press Train: the regions appear once every class density has answered.")
        return
    live, data = state.live, state.data
    grid = data.box.grid(GRID_RESOLUTION)
    x, y = grid.x.numpy(), grid.y.numpy()
    probe = live.probe if live is not None else None
    title = f"step {side.step:,}" if name != "bayes" else "no training: p(x, y) is known"
    test = data.test

    def build() -> Any:
        return render.decision_regions(
            x, y, side.regions, side.confidence, data.classes, title=title,
            points=test.points[:SHOWN_POINTS].numpy(), labels=test.labels[:SHOWN_POINTS].numpy(),
            probe=probe, height=regions_height(data.box),
        )  # fmt: skip

    figure = state.figure(name, (side.step, probe, id(live), state.choice), build)
    live_chart(figure, key=f"c.{name}_regions", config=PLOTLY_CONFIG)


def regions_height(box: Box) -> int:
    """Pixels for a decision-region chart in a third of the page: its plane at equal scales, with
    room for the title and the legend, and no empty band above a wide box."""
    aspect = (box.ymax - box.ymin) / (box.xmax - box.xmin)
    return int(min(380, max(240, 110 + 270 * aspect)))


def _card(column: Any, who: str, result: Result | None, name: str) -> None:
    """One score with ± one standard error under it; its kind is in the caption above (a narrow card
    keeps its label short), its method in the help."""
    if result is None or result.value is None:
        column.metric(name, "—", "once trained", delta_color="off", delta_arrow="off",
                      help=f"{who} {name}: train to see it", border=True)  # fmt: skip
        return
    if name == "accuracy":
        value, spread = f"{100 * result.value:.1f} %", f"± {100 * result.se:.1f} %"
    else:
        value, spread = f"{result.value:.3f}", f"± {result.se:.3f} nats"
    help = f"{who} {name}, {result.kind}: {result.method}; ± one standard error"
    column.metric(name, value, spread, delta_color="off", delta_arrow="off", help=help, border=True)


# ---------------------------------------------------------------- what only the generative one can do


def only_generative(state: ClassifierState, discriminative: Side | None) -> None:
    """New points of each class, and how unusual a point is: things p(y | x) alone cannot give."""
    st.markdown("##### What only the generative model can do")
    samples_column, probe_column = st.columns([1, 2], gap="medium")
    with samples_column:
        class_samples(state)
    with probe_column:
        probe_readout(state, discriminative)


def class_samples(state: ClassifierState) -> None:
    """New points of each class from its density; before training, the labelled training points."""
    live, data = state.live, state.data
    if live is None or not any(s is not None for s in live.samples):
        shown = [data.train.of_class(k)[:SHOWN_POINTS].numpy() for k in range(len(data.classes))]
        _points_chart(state, "data", state.choice, shown, "the labelled training points")
        return
    key = (tuple(id(s) for s in live.samples), id(live))
    _points_chart(state, "class_samples", key, live.samples, "new points drawn from each p(x | y)")


def _points_chart(state: ClassifierState, chart: str, key: Any, points: list, title: str) -> None:
    grid = state.data.box.grid(GRID_RESOLUTION)
    x, y, classes = grid.x.numpy(), grid.y.numpy(), state.data.classes

    def build() -> Any:
        return render.class_samples(x, y, points, classes, title=title, height=FIGURE_HEIGHT)

    live_chart(state.figure(chart, key, build), key=f"c.{chart}", config=PLOTLY_CONFIG)


def probe_readout(state: ClassifierState, discriminative: Side | None) -> None:
    """How unusual a point is, which only the generative model can say, and both posteriors there."""
    x, y = state.probe
    st.markdown(f"**How unusual is the point ({x:g}, {y:g})?** (the star; move it in the sidebar)")
    live = state.live
    unusual = live.unusual() if live is not None else None
    if unusual is None:
        st.caption("Train the classifiers to judge the point.")
        return
    classes, kind = state.data.classes, generative_kind(state.choice.family)
    lines = [
        f"**Generative model:** log p(x) = {unusual.log_px:.2f} ({kind}); **{unusual.percentile:.1f} %** "
        f"of the {N_TEST:,} test points are less likely under it (an estimate: the point's rank among them).",
        f"**The target itself:** log p(x) = {unusual.target_log_px:.2f} (exact); "
        f"{unusual.target_percentile:.1f} % of the test points are less likely.",
        "p(y | x), generative: " + _posterior_words(classes, unusual.posterior),
    ]
    if discriminative is not None:
        lines.append("p(y | x), discriminative: " + _posterior_words(classes, discriminative.probe))
    lines.append(
        "The discriminative network has no p(x): far from every class it still gives a confident "
        "p(y | x), and cannot say the point is unlike the data."
    )
    st.markdown("  \n".join(lines))


def _posterior_words(classes: tuple[str, ...], posterior: np.ndarray) -> str:
    return ", ".join(f"{name} {p:.3f}" for name, p in zip(classes, posterior, strict=True))
