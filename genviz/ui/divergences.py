"""Forward against reverse KL: one family fitted to one target twice, the two configurations differing
only in the objective, both trained live in the engine (`genviz.engine`) and drawn side by side.

The pair's handles live in `st.session_state` (one pair per browser session, never shared); a
fragment polls their snapshots while either trains and draws them, and only the script thread calls
streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from genviz.config import ConfigError, RunConfig, reverse_kl_models
from genviz.engine import SessionHandle, Snapshot, scheduler
from genviz.metrics import REVERSE_KL, Result
from genviz.models import MODELS
from genviz.targets import REVERSE_KL_TARGETS, TARGETS
from genviz.train import density_title
from genviz.ui import polling
from genviz.ui.charts import live_chart
from genviz.ui.state import PLOTLY_CONFIG, TARGET_RESOLUTION, CachedFigures, target_density
from genviz.views import render

PAIR_KEY = "genviz.divergences"
OBJECTIVES = {"forward-kl": "Forward KL: maximum likelihood", "reverse-kl": "Reverse KL: fit to p's density"}
DEFAULT_TARGET, DEFAULT_MODEL = "2gaussians", "gaussian"
PAIR_STEPS = 4000  # each fit's step budget
PAIR_N_TEST = 5000  # held-out points of each fit
# The reverse KL trains a mixture by gradient (EM needs samples of p); the forward fit does the same,
# so that the two differ only in the objective.
FAMILY_SETTINGS: dict[str, dict[str, Any]] = {"gmm": {"fit": "gradient", "components": 8}}
POLL_EVERY = 0.4  # seconds between redraws while a fit trains
PAIR_GROUP = "pair.live"  # the fragment group of the live panels and their buttons
PANEL_HEIGHT = 270


def offered_models() -> list[str]:
    """The families that can take both objectives (reparameterised samples with exact log q)."""
    return [name for name in MODELS if MODELS[name].reparameterised]


def pair_configs(target: str, model: str) -> dict[str, RunConfig]:
    """The forward and the reverse fit's configurations: the same in everything but the objective."""
    base = RunConfig(
        target=target,
        model=model,
        params=FAMILY_SETTINGS.get(model, {}),
        steps=PAIR_STEPS,
        n_test=PAIR_N_TEST,
    )
    return {objective: base.with_changes(objective=objective) for objective in OBJECTIVES}


@dataclass
class PairSession(CachedFigures):
    """One browser session's two fits and what the page says about them."""

    target: str
    model: str
    handles: dict[str, SessionHandle]
    error: str | None = None
    figures: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def build(self) -> None:
        """A fresh model for each fit (a new pair, or a Reset)."""
        try:
            configs = pair_configs(self.target, self.model)
        except ConfigError as error:
            self.error = str(error)
            return
        errors = [err for o, c in configs.items() if (err := self.handles[o].build(c)) is not None]
        self.error = f"Cannot build this pair: {errors[0]}" if errors else None

    def choose(self, target: str, model: str) -> None:
        if (target, model) != (self.target, self.model):
            self.target, self.model = target, model
            self.build()

    @property
    def snapshots(self) -> dict[str, Snapshot]:
        return {objective: handle.watch(False, {}) for objective, handle in self.handles.items()}

    @property
    def running(self) -> bool:
        return any(handle.snapshot.running for handle in self.handles.values())

    @property
    def polling(self) -> bool:
        """Training, or a paused fit's full evaluation (or a command's answer) still on its way."""
        return any(h.snapshot.running or h.snapshot.evaluating or h.pending for h in self.handles.values())

    def set_training(self, wanted: bool) -> None:
        """Train or pause both fits, as the button the user saw said (a repeated click is harmless)."""
        for handle in self.handles.values():
            handle.run(wanted and not handle.snapshot.done)


def pair_session() -> PairSession:
    """This browser session's pair, built on its first visit."""
    if PAIR_KEY not in st.session_state:
        handles = {objective: scheduler().open() for objective in OBJECTIVES}
        state = PairSession(DEFAULT_TARGET, DEFAULT_MODEL, handles)
        state.build()
        st.session_state[PAIR_KEY] = state
    return st.session_state[PAIR_KEY]


# ------------------------------------------------------------------ controls


def controls(state: PairSession) -> None:
    """Target and family pickers; a change of pair rebuilds both fits."""
    target_column, model_column = st.columns(2, vertical_alignment="bottom")
    targets, models = list(REVERSE_KL_TARGETS), offered_models()
    target = target_column.selectbox(
        "Target", targets, index=targets.index(state.target), key="pair.target", help=TARGET_HELP
    )
    model = model_column.selectbox(
        "Model", models, index=models.index(state.model), key="pair.model", help=MODEL_HELP,
        format_func=lambda name: f"{MODELS[name].title} ({name})",
    )  # fmt: skip
    state.choose(target, model)


def buttons(state: PairSession) -> None:
    """Start/Pause and Reset. Drawn in the live group, so that their labels follow training as it
    ends by itself; a click reruns the group, which sets its refresh timer."""
    train, reset, _ = st.columns([1, 1, 4], vertical_alignment="center")
    running = state.running
    label, icon = ("Pause", ":material/pause:") if running else ("Start", ":material/play_arrow:")
    done = all(h.snapshot.done for h in state.handles.values())
    start_or_pause = polling.rerun_group(PAIR_GROUP, lambda: state.set_training(not running))
    train.button(label, key="pair.train", icon=icon, type="primary", disabled=done, width="stretch",
                 on_click=start_or_pause)  # fmt: skip
    reset.button("Reset", key="pair.reset", icon=":material/restart_alt:", width="stretch",
                 on_click=polling.rerun_group(PAIR_GROUP, state.build))  # fmt: skip
    if state.error:
        st.error(state.error)


TARGET_HELP = "targets whose normalised log density is known and differentiable, as the reverse KL needs"
MODEL_HELP = "families that draw reparameterised samples with their exact log q: " + ", ".join(
    reverse_kl_models()
)


# ------------------------------------------------------------------ the live panels


def live_pair(state: PairSession) -> None:
    """The buttons, the target and the two fits, redrawn while either trains (see
    `genviz.ui.polling`)."""
    polling.group(PAIR_GROUP, _pair_group)


def _pair_group() -> None:
    state = pair_session()
    buttons(state)
    polling.part(_panels, POLL_EVERY if state.polling else None)


def _panels() -> None:
    state = pair_session()
    snapshots = state.snapshots
    x, y, log_p = target_density(state.target, TARGET_RESOLUTION)
    cmax = render.density_scale(log_p, None)
    columns = st.columns(3, gap="small")
    with columns[0]:
        target_figure = state.figure("target", (state.target, cmax), lambda: _target_panel(x, y, log_p, cmax))
        live_chart(target_figure, key="pair.target_density", config=PLOTLY_CONFIG)
        st.caption(f"**{state.target}**: {TARGETS[state.target].description}")
    for column, (objective, snapshot) in zip(columns[1:], snapshots.items(), strict=True):
        with column:
            fit_panel(state, objective, snapshot, cmax)


def _target_panel(x: Any, y: Any, log_p: Any, cmax: float) -> Any:
    return render.density_panel(
        x, y, log_p, cmax=cmax, title="target p(x)", height=PANEL_HEIGHT, colorbar=False
    )


def fit_panel(state: PairSession, objective: str, snapshot: Snapshot, cmax: float) -> None:
    """One fit: its density, both divergences as labelled numbers, and their curves."""
    frame = snapshot.density
    if frame is not None:
        title = f"{objective.replace('-kl', ' KL')} fit · step {frame.step:,}, {frame.resolution}²"
        key = (frame.step, frame.resolution, cmax, title)
        figure = state.figure(f"{objective}.density", key, lambda: _fit_density(frame, cmax, title))
        live_chart(figure, key=f"pair.{objective}.density", config=PLOTLY_CONFIG)
    st.caption(f"**{OBJECTIVES[objective]}** · {density_title(MODELS[state.model])}")
    if not snapshot.ready:
        st.caption("Building…")
        return
    last = snapshot.history[-1]
    forward, reverse = st.columns(2, gap="small")
    _divergence_card(forward, "KL(p‖q)", last.kl)
    _divergence_card(reverse, REVERSE_KL, last.reverse_kl)
    key = (len(snapshot.history), last.step)
    rows = [e.row() for e in snapshot.history]
    curves = state.figure(f"{objective}.curves", key, lambda: render.divergence_curves(rows, height=230))
    live_chart(curves, key=f"pair.{objective}.curves", config=PLOTLY_CONFIG)


def _fit_density(frame: Any, cmax: float, title: str) -> Any:
    return render.density_panel(
        frame.x, frame.y, frame.log_q, cmax=cmax, title=title, height=PANEL_HEIGHT, colorbar=False
    )


def _divergence_card(column: Any, label: str, result: Result | None) -> None:
    """A divergence, its kind and ± one standard error below it, its method in the help."""
    if result is None or result.value is None:
        why = "not computable here" if result is None else result.method
        column.metric(label, "—", "unavailable", delta_color="off", delta_arrow="off", help=why, border=True)
        return
    note = result.kind + (f" ± {result.se:.3f}" if result.se is not None else "")
    column.metric(
        label, f"{result.value:.3f}", note, delta_color="off", delta_arrow="off",
        help=f"{result.kind}: {result.method}", border=True,
    )  # fmt: skip
