"""Saving and reloading a trained model without pickle.

A run directory holds `config.json` (the RunConfig) and `model.npz` (the state
dict as plain arrays, read back with `allow_pickle=False`), plus whatever the
caller adds (metrics, density grids).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.models import MODELS, GenerativeModel
from genviz.train import load_state

CONFIG_FILE = "config.json"
MODEL_FILE = "model.npz"


def save_model(directory: Path, config: RunConfig, model: GenerativeModel, box: Box) -> None:
    """Write config.json (with the evaluation box) and model.npz into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    record = {"config": config.to_dict(), "box": box.as_list()}
    (directory / CONFIG_FILE).write_text(json.dumps(record, indent=2))
    arrays = {name: value.detach().cpu().numpy() for name, value in model.state_dict().items()}
    np.savez(directory / MODEL_FILE, **arrays)


def load_model(directory: Path, device: str = "cpu") -> tuple[RunConfig, GenerativeModel, Box]:
    """Rebuild the model saved by `save_model`.

    A damaged directory raises what reading it raised (OSError, ValueError, KeyError,
    RuntimeError for a state that does not fit the model); callers turn that into a message."""
    record = json.loads((directory / CONFIG_FILE).read_text())
    config = RunConfig.from_dict(record["config"])
    model = MODELS[config.model](**config.model_kwargs())
    with np.load(directory / MODEL_FILE, allow_pickle=False) as arrays:
        state = {name: torch.from_numpy(arrays[name].copy()) for name in arrays.files}
    load_state(model, state)
    return config, model.to(device).eval(), Box(*record["box"])
