"""The explorer's state, widgets and live view: the only library module that imports streamlit.

Each browser session owns one `Session` (a Trainer plus what the page says about it), kept in
`st.session_state`; nothing per user goes in `st.cache_resource`, which every user shares.
Target density grids never change, so they are cached with `st.cache_data`.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch

from genviz import plot
from genviz.config import DEVICES, SCHEDULES, ConfigError, RunConfig
from genviz.data import target_log_prob_grid
from genviz.metrics import Result
from genviz.models import MODELS, Hyperparameter, hyperparameters
from genviz.targets import TARGETS
from genviz.train import Evaluation, Trainer

DEFAULT = RunConfig(n_test=10_000, steps=3000)
STATE_KEY = "genviz"
LIVE_RESOLUTION = 128  # heat maps while training: cheap enough to redraw every tick
TICK_SECONDS = 0.5  # training per tick: long enough to amortise drawing, short enough for a click
RUN_EVERY = 0.2  # seconds between the end of one tick and the next
QUADRATURE_EVERY = 8  # ticks between quadrature cross-checks while training (a 200² grid)
N_SAMPLES = 1500
REBUILD_FIELDS = ("model", "target", "seed", "device")  # with the hyperparameters: need a fresh model
BATCH_SIZES = [2**k for k in range(4, 14)]
PLOTLY_CONFIG = {"displaylogo": False}

_process_ready = False


def configure_process() -> None:
    """One torch thread per server process: faster for these small models, fairer across users."""
    global _process_ready
    if not _process_ready:
        torch.set_num_threads(1)
        _process_ready = True


# ------------------------------------------------------------------ state


@dataclass
class Session:
    """One user's run: the Trainer, its configuration and what the page says about them."""

    config: RunConfig
    trainer: Trainer
    running: bool = False
    notice: str | None = None  # "Model rebuilt: ...", shown until the next rebuild or reset
    link_error: str | None = None  # a shared link that could not be used
    build_error: str | None = None  # the controls ask for a model that cannot be built here
    rate: float | None = None  # training steps per second of training time, last tick
    wall_rate: float | None = None  # steps per wall-clock second between the last two ticks
    last_tick: tuple[float, int] | None = None  # (time, step) at the end of the last tick
    ticks: int = 0
    checks: list[tuple[int, Result]] = field(default_factory=list)  # quadrature cross-checks
    view: dict[str, Any] | None = None  # the model's density grid (and samples) at view["step"]
    # Streamlit starts a rerun in a new thread while the previous run is still training;
    # everything that touches the Trainer holds this lock.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def apply(self, config: RunConfig) -> None:
        """Training settings apply live; anything that changes the model rebuilds it."""
        with self.lock:
            self._apply(config)

    def _apply(self, config: RunConfig) -> None:
        if config == self.config:
            return
        changes = describe_changes(self.config, config)
        if changes:
            try:
                self.trainer = new_trainer(config)
            except (ValueError, RuntimeError) as error:  # ConfigError, or a family refusing its settings
                self.build_error, self.running = f"Cannot build this model: {error}", False
                return
            self.notice = "Model rebuilt: " + "; ".join(changes)
            self._forget()
        else:
            self.trainer.config = config  # the Trainer reads lr, batch size and schedule every step
        self.config, self.build_error, self.link_error = config, None, None

    def reset(self) -> None:
        with self.lock:
            self.trainer, self.running, self.notice = new_trainer(self.config), False, None
            self._forget()

    def _forget(self) -> None:
        self.checks, self.view, self.ticks = [], None, 0
        self.rate = self.wall_rate = self.last_tick = None

    def tick(self) -> None:
        """Train for a bounded time, then evaluate once."""
        before = self.trainer.train_seconds
        taken = self.trainer.train(max_seconds=TICK_SECONDS)
        spent = self.trainer.train_seconds - before
        self.rate = taken / spent if spent > 0 else None
        if taken:
            self.trainer.record()
        now, step = time.perf_counter(), self.trainer.step
        if self.last_tick is not None and now > self.last_tick[0]:
            self.wall_rate = (step - self.last_tick[1]) / (now - self.last_tick[0])
        self.last_tick = now, step
        self.ticks += 1
        self.running = self.running and not self.trainer.done

    def step_once(self) -> None:
        with self.lock:
            self.running = False
            if self.trainer.train(max_steps=1):
                self.trainer.record()

    def toggle(self) -> None:
        with self.lock:
            self.running = not self.running and not self.trainer.done
            self.last_tick = None  # a pause is not part of the overall rate

    def cross_check(self) -> tuple[int, Result] | None:
        """KL by quadrature: when paused, or every few ticks while training."""
        step = self.trainer.step
        stale = not self.checks or self.checks[-1][0] != step
        if stale and (not self.running or self.ticks % QUADRATURE_EVERY == 1):
            result = self.trainer.kl_by_quadrature()
            if result is not None:
                self.checks.append((step, result))
        return self.checks[-1] if self.checks else None

    def model_view(self, overlay: bool) -> dict[str, Any]:
        """The model's log density grid (and samples), computed once per step."""
        step = self.trainer.step
        if self.view is None or self.view["step"] != step:
            grid, log_q = self.trainer.density_grid(LIVE_RESOLUTION)
            self.view = {"step": step, "x": grid.x.numpy(), "y": grid.y.numpy(), "log_q": log_q.numpy()}
        if overlay and "samples" not in self.view:
            # A private RNG stream: drawing for display must not change the training run.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed + step)
                self.view["samples"] = self.trainer.samples(N_SAMPLES).numpy()
        return self.view


def new_trainer(config: RunConfig) -> Trainer:
    """A fresh Trainer, evaluated once so that every curve starts at step 0."""
    configure_process()
    trainer = Trainer(config)
    trainer.record()
    return trainer


def describe_changes(old: RunConfig, new: RunConfig) -> list[str]:
    """The changes that need a new model, in words: 'target changed from moons to rings'."""
    names = [n for n in REBUILD_FIELDS if getattr(old, n) != getattr(new, n)]
    changes = [f"{n} changed from {getattr(old, n)} to {getattr(new, n)}" for n in names]
    if old.model == new.model:
        before, after = old.model_kwargs(), new.model_kwargs()
        changes += [
            f"{k} changed from {_show(before[k])} to {_show(v)}" for k, v in after.items() if before[k] != v
        ]
    return changes


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def session() -> Session:
    """This browser session's state, created on its first load from the URL."""
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = start_session(st.query_params.to_dict())
    return st.session_state[STATE_KEY]


def start_session(query: dict[str, str]) -> Session:
    """Build from a link; a link that cannot run here falls back to the defaults, saying why."""
    config, error = config_from_link(query)
    try:
        return Session(config, new_trainer(config), link_error=error)
    except ConfigError as problem:
        message = f"This link cannot run here ({problem}); showing the defaults instead."
        return Session(DEFAULT, new_trainer(DEFAULT), link_error=message)


def config_from_link(query: dict[str, str]) -> tuple[RunConfig, str | None]:
    try:
        config = RunConfig.from_query(query, base=DEFAULT)
        if config.target not in TARGETS:
            raise ConfigError(
                f"target {config.target!r} needs uploaded points; choose one of {', '.join(TARGETS)}"
            )
        if "steps" in query:  # not among RunConfig's query fields, so read here
            config = config.with_changes(steps=_budget(query["steps"]))
    except ValueError as error:
        return DEFAULT, f"Could not read this link: {error}. Showing the defaults instead."
    return config, None


def _budget(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"steps: cannot read {text!r} as a step budget (a whole number ≥ 1)")
    return int(text)


def sync_url(config: RunConfig) -> None:
    """Mirror the configuration in the address bar, so that a link reproduces the run."""
    query = config.to_query() | {"steps": str(config.steps)}
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


@st.cache_data(show_spinner=False, max_entries=64)
def target_density(name: str, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, log p) of a target on its box grid."""
    grid, log_p = target_log_prob_grid(name, resolution)
    return grid.x.numpy(), grid.y.numpy(), log_p.numpy()


# ---------------------------------------------------------------- widgets


def _init(key: str, value: Any) -> None:
    """Seed a widget from the session's configuration when it is first drawn (or redrawn after
    another page, which drops its state)."""
    if key not in st.session_state:
        st.session_state[key] = value


def sidebar(state: Session) -> RunConfig | None:
    """Controls -> a RunConfig, or None (with the reason shown) when they do not make one."""
    config = state.config
    with st.sidebar:
        st.header("Data and model")
        target = _choice("Target", list(TARGETS), "target", config.target, "the data distribution p")
        model = _choice("Model", list(MODELS), "model", config.model, "the family q is drawn from", _title)
        params = model_params(model, config.params if model == config.model else {})
        st.header("Training")
        changes = training_controls(config)
    try:
        return config.with_changes(target=target, model=model, params=params, **changes)
    except ConfigError as error:
        st.sidebar.error(str(error))
        return None


def _title(name: str) -> str:
    return f"{MODELS[name].title} ({name})"


def _choice(label: str, options: list[Any], key: str, current: Any, help: str, fmt: Any = str) -> Any:
    _init(key, current if current in options else options[0])
    return st.selectbox(label, options, key=key, help=help, format_func=fmt)


def _log_slider(label: str, key: str, options: list[float], current: float, help: str | None) -> float:
    _init(key, current)
    return st.select_slider(label, options, key=key, help=help, format_func=lambda v: f"{v:g}")


def training_controls(config: RunConfig) -> dict[str, Any]:
    lr = _log_slider("Learning rate", "lr", nice_log_grid(1e-4, 1e-1, config.lr), config.lr, LR_HELP)
    _init("batch_size", config.batch_size)
    batch = st.select_slider("Batch size", sorted({*BATCH_SIZES, config.batch_size}), key="batch_size")
    schedule = _choice("Schedule", list(SCHEDULES), "schedule", config.schedule, SCHEDULE_HELP)
    _init("steps", config.steps or DEFAULT.steps)
    steps = st.number_input("Step budget", 1, 1_000_000, step=500, key="steps", help=BUDGET_HELP)
    device = _choice("Device", list(DEVICES), "device", config.device, DEVICE_HELP)
    _init("seed", config.seed)
    seed = st.number_input("Seed", 0, 2**31 - 1, step=1, key="seed", help="same seed, same numbers")
    return dict(lr=lr, batch_size=batch, schedule=schedule, steps=int(steps), device=device, seed=int(seed))


LR_HELP = "Adam's step size; changes apply live"
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


def buttons(state: Session) -> None:
    """Train/Pause, Step and Reset; callbacks run before the page is drawn, so labels are current."""
    train, step, reset, _ = st.columns([1, 1, 1, 3])
    done, running = state.trainer.done, state.running
    label, icon = ("Pause", ":material/pause:") if running else ("Train", ":material/play_arrow:")
    common: dict[str, Any] = {"width": "stretch"}
    train.button(
        label, key="train", icon=icon, type="primary", on_click=state.toggle, disabled=done, **common
    )
    step.button(
        "Step", key="step", icon=":material/skip_next:", on_click=state.step_once, disabled=done, **common
    )
    reset.button("Reset", key="reset", icon=":material/restart_alt:", on_click=state.reset, **common)


def header(state: Session) -> None:
    """What is being fitted to what, and any notice about the last change."""
    family, target = MODELS[state.config.model], TARGETS[state.config.target]
    st.markdown(f"**{family.title}** · {family.branch} · density: **{family.density_kind}**")
    st.caption(f"{family.summary}  \nTarget **{target.name}**: {target.description}.")
    for message, show in (
        (state.link_error, st.error),
        (state.build_error, st.error),
        (state.notice, st.info),
    ):
        if message:
            show(message)


# --------------------------------------------------------------- live view


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
    left.plotly_chart(plot.nll_curve(rows, evaluation.entropy), key="nll", config=PLOTLY_CONFIG)
    right.plotly_chart(plot.kl_curve(rows, kl_label, checks=checks), key="kl", config=PLOTLY_CONFIG)


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
    lines = [evaluation.nll.text(), evaluation.entropy.text(), evaluation.kl.text()]
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
    target = state.trainer.data.target
    log_p = None if target is None else target_density(target.name, LIVE_RESOLUTION)[2]
    samples = view.get("samples") if overlay else None
    fig = plot.density_pair(view["x"], view["y"], log_p, view["log_q"], samples)
    st.plotly_chart(fig, key="density", config=PLOTLY_CONFIG)


def page_style() -> None:
    """Less empty space above the page title than Streamlit's default, so the charts fit a screen."""
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")
