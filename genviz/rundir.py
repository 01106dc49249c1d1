"""The run directory: what `python -m genviz train --out DIR` writes and `eval` reads back.

    config.json   {"config": RunConfig.to_dict(), "box": [xmin, xmax, ymin, ymax]}
    model.npz     the model's state dict as plain arrays, read back with `allow_pickle=False`
    density.npz   x, y, log_q (and log_p when the target is known) on a GRID_CELLS grid, and the box
    metrics.json  the final labelled results, the configuration and the learning curve

`write_run` writes all four; `read_run` checks the directory and rebuilds the model.
No pickle anywhere: a run directory from elsewhere cannot run code.
"""

from __future__ import annotations

import json
import math
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.metrics import Result, unavailable
from genviz.models import MODELS, GenerativeModel
from genviz.train import Trainer, load_state

CONFIG_FILE = "config.json"
MODEL_FILE = "model.npz"
METRICS_FILE = "metrics.json"
DENSITY_FILE = "density.npz"
GRID_CELLS = 200  # cells along the shorter side of the grid in density.npz
# What a damaged or foreign run directory makes loading raise (a bad zip, bad JSON, a wrong state).
LOAD_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile)
MAX_DETAIL = 200  # characters of a library error quoted in a message (a state-dict mismatch lists every key)


class RunDirError(ValueError):
    """A directory that is not a readable run; the message says what is wrong with it."""


# ------------------------------------------------------------------ writing


def write_run(out: Path, trainer: Trainer) -> Result:
    """Write density.npz, the model and metrics.json; returns the quadrature cross-check of the KL."""
    log_q = _write_density(out / DENSITY_FILE, trainer, GRID_CELLS)
    save_model(out, trainer.config, trainer.model, trainer.data.box)
    quadrature = trainer.kl_by_quadrature(GRID_CELLS, log_q) or unavailable("KL", _no_quadrature(trainer))
    _write_json(out / METRICS_FILE, run_metrics(trainer, quadrature))
    return quadrature


def save_model(directory: Path, config: RunConfig, model: GenerativeModel, box: Box) -> None:
    """Write config.json (with the evaluation box) and model.npz into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    record = {"config": config.to_dict(), "box": box.as_list()}
    (directory / CONFIG_FILE).write_text(json.dumps(record, indent=2))
    arrays = {name: value.detach().cpu().numpy() for name, value in model.state_dict().items()}
    np.savez(directory / MODEL_FILE, **arrays)


def _no_quadrature(trainer: Trainer) -> str:
    if trainer.data.target is None:
        return "no quadrature: the data's density is unknown"
    return f"no quadrature: the model's density is {trainer.model.density_kind}, not exact"


def _write_density(path: Path, trainer: Trainer, resolution: int) -> torch.Tensor:
    """Write density.npz; returns the model's log density grid for reuse."""
    grid, log_q = trainer.density_grid(resolution)
    arrays = {"x": grid.x.numpy(), "y": grid.y.numpy(), "log_q": log_q.numpy()}
    target = trainer.target_grid(resolution)
    if target is not None:
        arrays["log_p"] = target[1].double().numpy()
    np.savez(path, box=np.array(grid.box.as_list()), **arrays)
    return log_q


def run_metrics(trainer: Trainer, quadrature: Result) -> dict[str, Any]:
    """metrics.json: the final labelled results, the configuration and the learning curve."""
    last = trainer.history[-1]
    results = {"test_nll": last.nll, "entropy": last.entropy, "kl": last.kl, "kl_quadrature": quadrature}
    why_null = {key: result.method for key, result in results.items() if result.value is None}
    cross_check = (
        {"value": quadrature.value, "kind": quadrature.kind, "method": quadrature.method}
        if quadrature.value is not None
        else None
    )
    metrics = {
        "target": trainer.config.target,
        "model": trainer.config.model,
        "steps": trainer.step,
        "seconds": trainer.train_seconds,
        "device": str(trainer.device),
        "n_test": len(trainer.data.test),
        **_labelled("test_nll", "nll", last.nll),
        "entropy": last.entropy.value,
        "entropy_kind": last.entropy.kind,
        "entropy_method": last.entropy.method,
        **_labelled("kl", "kl", last.kl),
        "kl_quadrature": cross_check,
        "other_nlls": [other.to_dict() for other in last.others],
        "rollbacks": [rollback.message() for rollback in trainer.rollbacks],
        "stopped": trainer.stopped,
        "config": trainer.config.to_dict(),
        "history": [evaluation.row() for evaluation in trainer.history],
    }
    return {**json_ready(metrics, "", why_null), "why_null": why_null}


def _labelled(key: str, label: str, result: Result) -> dict[str, Any]:
    return {
        key: result.value,
        f"{key}_se": result.se,
        f"{label}_kind": result.kind,
        f"{label}_method": result.method,
    }


def json_ready(value: Any, path: str, why_null: dict[str, str]) -> Any:
    """`value` with every non-finite float replaced by None, the reason noted under its path."""
    if isinstance(value, float) and not math.isfinite(value):
        why_null[path] = f"the value was {value}, which JSON cannot hold"
        return None
    if isinstance(value, dict):
        return {k: json_ready(v, f"{path}.{k}" if path else str(k), why_null) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v, f"{path}[{i}]", why_null) for i, v in enumerate(value)]
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ reading


def read_run(directory: Path, device: str = "cpu") -> tuple[RunConfig, GenerativeModel, Box]:
    """The configuration, the rebuilt model and the evaluation box of a run directory.

    Anything that is not a readable run raises RunDirError with a message a user can act on."""
    if not directory.exists():
        raise RunDirError(f"no such run directory: {directory}")
    if not directory.is_dir():
        raise RunDirError(f"{directory} is not a directory; give the DIR that train --out wrote")
    missing = " or ".join(name for name in (CONFIG_FILE, MODEL_FILE) if not (directory / name).is_file())
    if missing:
        raise RunDirError(f"{directory} is not a run directory (no {missing}); write one with train --out")
    if not zipfile.is_zipfile(directory / MODEL_FILE):
        raise RunDirError(f"{directory}: {MODEL_FILE} is not an .npz archive; the run is damaged")
    try:
        return load_model(directory, device)
    except LOAD_ERRORS as error:
        why = textwrap.shorten(f"{type(error).__name__}: {error}", MAX_DETAIL)
        raise RunDirError(f"{directory}: cannot load the saved model ({why})") from None


def load_model(directory: Path, device: str = "cpu") -> tuple[RunConfig, GenerativeModel, Box]:
    """Rebuild the model saved by `save_model`.

    A damaged directory raises what reading it raised (OSError, ValueError, KeyError,
    RuntimeError for a state that does not fit the model); `read_run` turns that into a message."""
    record = json.loads((directory / CONFIG_FILE).read_text())
    config = RunConfig.from_dict(record["config"])
    model = MODELS[config.model](**config.model_kwargs())
    with np.load(directory / MODEL_FILE, allow_pickle=False) as arrays:
        state = {name: torch.from_numpy(arrays[name].copy()) for name in arrays.files}
    load_state(model, state)
    return config, model.to(device).eval(), Box(*record["box"])
