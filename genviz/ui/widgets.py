"""Sidebar controls built from the registries and the families' signatures, and the buttons."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from genviz.config import (
    BATCH_SIZES,
    DEVICES,
    FORMULA,
    MAX_LR,
    MAX_SEED,
    MAX_STEPS,
    MIN_LR,
    MIN_SEED,
    MIN_STEPS,
    SCHEDULES,
    USER_DATA,
    ConfigError,
    RunConfig,
)
from genviz.data import TEST_FRACTION, config_target
from genviz.formula import EXAMPLE, MAX_CHARS
from genviz.models import MODELS, Hyperparameter, hyperparameters
from genviz.models.kinds import DENSITY_KINDS
from genviz.targets import TARGETS
from genviz.ui.polling import rerun_group
from genviz.ui.sketch import SKETCH, drawing_input
from genviz.ui.state import DEFAULT, DRAWN_KEY, RESEED_KEY, Session, _show


def _init(key: str, value: Any) -> None:
    """Seed a widget from the session's configuration when it is first drawn (or redrawn after
    another page, which drops its state), and again when a link or another page changed it."""
    if key not in st.session_state or st.session_state.get(RESEED_KEY):
        st.session_state[key] = value


def sidebar(state: Session) -> RunConfig | None:
    """Controls -> a RunConfig, or None (with the reason shown) when they do not make one."""
    config = state.config
    if config not in st.session_state.get(DRAWN_KEY, ()):  # neither drawn nor made here: a link, a page
        st.session_state[RESEED_KEY] = True
    with st.sidebar:
        st.header("Data and model")
        targets = [*TARGETS, USER_DATA, SKETCH, FORMULA]
        target = _choice("Target", targets, "target", config.target, TARGET_HELP, _target_name)
        typed: dict[str, Any] = {}
        if target == USER_DATA:
            target = data_upload(state)
        elif target == SKETCH:
            target = drawing_input(state)
        elif target == FORMULA:
            typed = formula_input(state)
            target = typed.pop("target")
        model = _choice("Model", list(MODELS), "model", config.model, MODEL_HELP, _title)
        params = model_params(model, config.params if model == config.model else {})
        st.header("Training")
        changes = training_controls(config, model)
    st.session_state.pop(RESEED_KEY, None)  # the controls now hold the configuration
    try:
        made = config.with_changes(target=target, model=model, params=params, **typed, **changes)
    except ConfigError as error:
        st.sidebar.error(str(error))
        made = None
    st.session_state[DRAWN_KEY] = (config, made)
    return made


TARGET_HELP = (
    "the data distribution p; 'your data' trains on a CSV of your own points, 'draw your data' on points "
    "around strokes you draw, 'type a density' on a log-density you write in x and y"
)


def _target_name(name: str) -> str:
    return TARGET_NAMES.get(name, name)


TARGET_NAMES = {
    USER_DATA: "your data (CSV upload)",
    SKETCH: "draw your data",
    FORMULA: "type a density (formula)",
}


def data_upload(state: Session) -> str:
    """The uploader for a user's CSV; returns the target to use: 'data' once points are loaded,
    else the current target (nothing is thrown away while no valid file is given)."""
    upload = st.file_uploader(
        "Points (CSV: x,y per line, header optional)", type=["csv", "txt"], key="points_upload"
    )
    if upload is not None:
        state.upload(upload.file_id, upload.name, upload.getvalue())
    if state.points_error:
        st.error(state.points_error)
    if state.points is None:
        st.info(f"Upload a CSV to train on your own points; still showing {state.config.target}.")
        return state.config.target
    st.caption(f"{state.points_name}: {len(state.points):,} points, 20 % held out")
    return USER_DATA


FORMULA_HELP = (
    "log p(x, y) up to a constant: numbers, x, y, pi, e, + - * / ** (a number as exponent, at most 16), "
    "where(condition, a, b) with < <= > >=, and exp, log, sqrt, abs, sin, cos, tanh, sigmoid, "
    "logsumexp, minimum, maximum. It is normalised by quadrature on the box and zero outside it."
)
BOX_HELP = "xmin, xmax, ymin, ymax: where the density is normalised and drawn"


def formula_input(state: Session) -> dict[str, Any]:
    """A typed log-density and its box, applied with a button; returns the configuration's fields
    for the target to use: the typed density once one normalises, else the current target (a
    refused formula keeps the target and model the session had)."""
    config = state.config
    _init("formula_text", config.formula or EXAMPLE)
    _init("formula_box", _show(config.box).replace(",", ", "))
    with st.form("formula_form", border=False):
        text = st.text_input(
            "log p(x, y) + const", max_chars=MAX_CHARS, key="formula_text", help=FORMULA_HELP
        )
        box = st.text_input("Box", key="formula_box", help=BOX_HELP)
        applied = st.form_submit_button("Apply", icon=":material/functions:")
    current = {"target": config.target, "formula": config.formula, "box": config.box}
    if applied:
        fields = state.typed_density(text, box)
        if fields is not None:
            return fields
    if state.formula_error:
        st.error(state.formula_error)
    if config.target != FORMULA:
        st.info(f"Type a log-density and press Apply; still showing {_target_name(config.target)}.")
    return current


MODEL_HELP = (
    "the family q is drawn from, in the order of the taxonomy of generative models: explicit density "
    "(tractable, then approximate), implicit density, then diffusion and flow matching"
)


def _title(name: str) -> str:
    return f"{MODELS[name].title} ({name})"


def branch_caption(name: str) -> str:
    """Where the family sits in the taxonomy and what kind of density it gives."""
    family = MODELS[name]
    return f"{family.branch} · {DENSITY_KINDS[family.density_kind].words}"


def _choice(label: str, options: list[Any], key: str, current: Any, help: str, fmt: Any = str) -> Any:
    _init(key, current if current in options else options[0])
    return st.selectbox(label, options, key=key, help=help, format_func=fmt)


def _log_slider(label: str, key: str, options: list[float], current: float, help: str | None) -> float:
    _init(key, current)
    return st.select_slider(label, options, key=key, help=help, format_func=lambda v: f"{v:g}")


def training_controls(config: RunConfig, model: str) -> dict[str, Any]:
    family_rate = MODELS[model].learning_rate
    current = config.learning_rate if model == config.model else family_rate
    if model != config.model:  # a new family starts from its own rate
        st.session_state["lr"] = current
    lr = _log_slider("Learning rate", "lr", nice_log_grid(MIN_LR, MAX_LR, current), current, LR_HELP)
    lr = None if lr == family_rate else lr  # the family's rate follows the family
    _init("batch_size", config.batch_size)
    batch = st.select_slider("Batch size", sorted({*BATCH_SIZES, config.batch_size}), key="batch_size")
    schedule = _choice("Schedule", list(SCHEDULES), "schedule", config.schedule, SCHEDULE_HELP)
    _init("steps", config.steps or DEFAULT.steps)
    steps = st.number_input("Step budget", MIN_STEPS, MAX_STEPS, step=500, key="steps", help=BUDGET_HELP)
    device = _choice("Device", list(DEVICES), "device", config.device, DEVICE_HELP)
    _init("seed", config.seed)
    seed = st.number_input("Seed", MIN_SEED, MAX_SEED, step=1, key="seed", help="same seed, same numbers")
    return dict(lr=lr, batch_size=batch, schedule=schedule, steps=int(steps), device=device, seed=int(seed))


LR_HELP = "Adam's step size (each family has its own default); changes apply live"
SCHEDULE_HELP = "cosine decays the learning rate to 2 % of its value over the step budget"
BUDGET_HELP = "training pauses here; the cosine schedule decays over it"
DEVICE_HELP = "auto uses a CUDA GPU when there is one; cuda without one is an error"


def nice_log_grid(low: float, high: float, current: float | None = None) -> list[float]:
    """1-2-3-5 steps per decade from low to high (plus `current`), for a log-scale slider."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    values = {float(f"{m * 10.0**d:.3g}") for d in decades for m in (1, 2, 3, 5)}
    values = {v for v in values if low <= v <= high} | {low, high}
    return sorted(values | ({current} if current is not None else set()))


def model_params(model: str, current: dict[str, Any]) -> dict[str, Any]:
    """One widget per hyperparameter; returns the values that differ from the family's defaults."""
    specs = hyperparameters(MODELS[model])
    values = [hyperparameter_widget(h, f"hp.{model}.{h.name}", current.get(h.name, h.default)) for h in specs]
    return {h.name: v for h, v in zip(specs, values, strict=True) if v != h.default}


def hyperparameter_widget(h: Hyperparameter, key: str, current: Any) -> Any:
    """The widget that fits the hyperparameter's type and bounds."""
    label, help, bounds = h.name.replace("_", " ").capitalize(), h.help or None, h.range
    if h.choices is not None:
        return _choice(label, list(h.choices), key, current, h.help)
    if h.kind is bool:
        _init(key, bool(current))
        return st.toggle(label, key=key, help=help)
    if h.kind is float and bounds is not None and bounds.log:
        return _log_slider(label, key, nice_log_grid(bounds.low, bounds.high, current), current, help)
    if h.kind in (int, float):
        _init(key, current)
        low, high = (h.kind(bounds.low), h.kind(bounds.high)) if bounds else (None, None)
        if h.kind is int and bounds is not None and high - low <= 128:
            return st.slider(label, low, high, key=key, help=help)
        return st.number_input(label, low, high, key=key, help=help)
    _init(key, _show(current))
    hint = " (comma-separated, e.g. 64,64)" if h.kind is tuple else ""
    return _parsed(h, st.text_input(label, key=key, help=(h.help + hint) or None), current)


def _parsed(h: Hyperparameter, text: str, current: Any) -> Any:
    """Parse a text widget; on bad text say why and keep the value the model has."""
    try:
        return h.parse(text)
    except ValueError as error:
        st.error(f"{error}. Keeping {_show(current)}.")
        return current


LIVE_KEY = "live"  # the fragment group of the Explorer's live view, which its buttons rerun


def buttons(state: Session) -> None:
    """Train/Pause, Step and Reset, drawn in the live group: a click reruns the group, which sets its
    refresh timers, and the group's heartbeat makes their labels follow training as it ends by itself."""
    train, step, reset, _ = st.columns([1, 1, 1, 1.4], vertical_alignment="center")
    done, running = state.snapshot.done, state.running
    label, icon = ("Pause", ":material/pause:") if running else ("Train", ":material/play_arrow:")
    common: dict[str, Any] = {"width": "stretch"}
    toggle, step_once, reset_model = (
        rerun_group(LIVE_KEY, a)
        for a in (lambda: state.set_training(not running), state.step_once, state.reset)
    )
    train.button(label, key="train", icon=icon, type="primary", on_click=toggle, disabled=done, **common)
    step.button("Step", key="step", icon=":material/skip_next:", on_click=step_once, disabled=done, **common)
    reset.button("Reset", key="reset", icon=":material/restart_alt:", on_click=reset_model, **common)


def describe_target(state: Session) -> str:
    if state.config.target == FORMULA:
        target = config_target(state.config)
        return f"Your density **log p(x, y)** = `{state.config.formula}` + const: {target.density_method}."
    if state.config.target != USER_DATA:
        target = TARGETS[state.config.target]
        return f"Target **{target.name}**: {target.description}."
    count = len(state.points) if state.points is not None else 0
    return (
        f"Your data **{state.points_name}**: {count:,} points, {TEST_FRACTION:.0%} held out. Its density "
        "is unknown, so the NLL has no floor drawn and the KL is unavailable."
    )


def header(state: Session) -> None:
    """What is being fitted to what, and any notice about the last change."""
    family = MODELS[state.config.model]
    st.markdown(f"**{family.title}** · {branch_caption(state.config.model)}")
    st.caption(f"{family.summary}  \n{describe_target(state)}")
    for message, show in (
        (state.link_error, st.error),
        (state.build_error, st.error),
        (state.notice, st.info),
    ):
        if message:
            show(message)
