"""What a host allows: training slots, per-session caps and cost budgets, read once from the environment.

Every limit has a default that keeps a shared demo on a small machine responsive; a host
changes one with an environment variable, e.g. `GENVIZ_SLOTS=8 streamlit run app.py`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class HostLimits:
    """Limits of one server process. Each field is read from `GENVIZ_<FIELD>` when set."""

    slots: int = 0  # training slots shared round-robin by the running sessions; 0: one per core
    slice_seconds: float = 0.05  # training a session gets per turn when sessions share a slot
    idle_pause_seconds: float = 30.0  # a session whose page stopped polling pauses after this
    max_session_steps: int = 1_000_000  # optimisation steps one session may take in all
    max_session_train_seconds: float = 3600.0  # seconds of training one session may take in all
    # What one model may cost, estimated before it is built (`genviz.cost.check_cost`); 0: no limit.
    max_parameters: int = 5_000_000  # trainable parameters of one model
    max_session_mb: float = 300.0  # memory of one session's model: weights, optimiser, snapshots, work
    max_eval_seconds: float = 3.0  # one full evaluation (held-out metrics, heat map and cross-check)
    max_step_seconds: float = 0.5  # one training step, which a training slice cannot interrupt
    # Live-page redraws (fragment runs) the server starts per second, all sessions together; beyond
    # it every page polls less often (`genviz.ui.polling.DrawingLoad`), and each run waits its turn
    # (`genviz.ui.polling.RunGate`).
    page_runs_per_second: float = 45.0

    @property
    def training_slots(self) -> int:
        return self.slots if self.slots > 0 else max(1, os.cpu_count() or 1)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> HostLimits:
        """The defaults, overridden by `GENVIZ_<FIELD>` variables; a bad value is an error naming it."""
        environ = dict(os.environ if environ is None else environ)
        values = {}
        for spec in fields(cls):
            text = environ.get(f"GENVIZ_{spec.name.upper()}")
            if text is None:
                continue
            kind = type(spec.default)
            try:
                value = kind(text)
            except ValueError:
                raise ValueError(f"GENVIZ_{spec.name.upper()}: cannot read {text!r} as a number") from None
            if not value >= 0 or value == math.inf:  # NaN fails the first test
                raise ValueError(f"GENVIZ_{spec.name.upper()} must be a finite number ≥ 0, got {text!r}")
            values[spec.name] = value
        return cls(**values)
