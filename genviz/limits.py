"""What a host allows: training slots, per-session caps and cost budgets, read once from the environment.

Every limit has a default that keeps a shared demo on a small machine responsive; a host
changes one with an environment variable, e.g. `GENVIZ_SLOTS=8 streamlit run app.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class HostLimits:
    """Limits of one server process. Each field is read from `GENVIZ_<FIELD>` when set."""

    slots: int = 0  # training slots shared round-robin by the running sessions; 0: one per core
    slice_seconds: float = 0.1  # training a session gets per turn when sessions share a slot
    idle_pause_seconds: float = 30.0  # a session whose page stopped polling pauses after this
    max_session_steps: int = 1_000_000  # optimisation steps one session may take in all
    max_session_train_seconds: float = 3600.0  # seconds of training one session may take in all

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
            if value < 0:
                raise ValueError(f"GENVIZ_{spec.name.upper()} must be ≥ 0, got {text!r}")
            values[spec.name] = value
        return cls(**values)
