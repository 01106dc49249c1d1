"""The run directory: what `python -m genviz train --out DIR` writes, `eval` reads, and `--resume`
and the Explorer's "Import model" continue from. A model file is the same files in one zip.

    manifest.json  {"format": "genviz-run", "version": 1, "files": [...], "genviz": "0.1.0"}
    config.json    {"config": RunConfig.to_dict(), "box": [xmin, xmax, ymin, ymax]} (+ "data": a CSV's name)
    model.npz      the model's state dict as plain arrays, read back with `allow_pickle=False`
    training.json  step, training seconds, rollbacks, history, optimiser options (see genviz.trainstate)
    training.npz   the optimisers' moments and the random states, so that training continues identically
    data.npz       a user's points: `test` and `train` (n, 2), for a run on your own data
    density.npz    x, y, log_q (and log_p when the target is known) on a GRID_CELLS grid, and the box
    metrics.json   the final labelled results, the configuration and the learning curve

`write_run` writes them all; `read_run` checks a directory and rebuilds the model; `export_run` and
`import_run` turn a Trainer into the zip and back (the last two files are the command line's only).
No pickle anywhere: a run directory or model file from elsewhere cannot run code.
"""

from __future__ import annotations

import json
import math
import textwrap
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genviz import __version__
from genviz.bundle import (
    MAX_FILE_BYTES,
    MAX_UNPACKED_BYTES,
    BundleError,
    check_keys,
    json_bytes,
    npz_bytes,
    pack,
    read_json,
    read_npz,
    unpack,
)
from genviz.config import USER_DATA, ConfigError, RunConfig
from genviz.cost import check_cost
from genviz.data import DataSource
from genviz.grid import Box
from genviz.limits import HostLimits
from genviz.metrics import Result, unavailable
from genviz.models import MODELS, GenerativeModel
from genviz.pointsfile import MAX_POINTS
from genviz.train import Trainer, load_state
from genviz.trainstate import capture, restore

CONFIG_FILE = "config.json"
MODEL_FILE = "model.npz"
METRICS_FILE = "metrics.json"
DENSITY_FILE = "density.npz"
MANIFEST_FILE = "manifest.json"
TRAINING_FILE = "training.json"
STATE_FILE = "training.npz"
DATA_FILE = "data.npz"
FORMAT, VERSION = "genviz-run", 1
RESUME_FILES = (CONFIG_FILE, MODEL_FILE, TRAINING_FILE, STATE_FILE)  # what continuing needs (+ DATA_FILE)
KNOWN_FILES = (MANIFEST_FILE, *RESUME_FILES, DATA_FILE, DENSITY_FILE, METRICS_FILE)
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
    quadrature = trainer.kl_by_quadrature(GRID_CELLS, log_q) or unavailable("KL", _no_quadrature(trainer))
    _write_json(out / METRICS_FILE, run_metrics(trainer, quadrature))
    for name, data in run_files(trainer, (DENSITY_FILE, METRICS_FILE)).items():
        (out / name).write_bytes(data)
    return quadrature


def export_run(trainer: Trainer) -> bytes:
    """The model file: a zip of everything `import_run` needs to continue training."""
    return pack(run_files(trainer))


def run_files(trainer: Trainer, also: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The manifest and the files that continuing needs, name -> bytes; `also` names the other
    files written beside them, for the manifest."""
    scalars, arrays = capture(trainer)
    files = {
        CONFIG_FILE: _config_bytes(trainer.config, trainer.data.box, trainer.data),
        MODEL_FILE: npz_bytes(_weights(trainer.model)),
        TRAINING_FILE: json_bytes(scalars),
        STATE_FILE: npz_bytes(arrays),
    }
    if trainer.config.target == USER_DATA:
        points = {"test": trainer.data.test.numpy(), "train": trainer.data.train_points.numpy()}
        files[DATA_FILE] = npz_bytes(points)
    listed = sorted([*files, *also])
    manifest = {"format": FORMAT, "version": VERSION, "files": listed, "genviz": __version__}
    return {MANIFEST_FILE: json_bytes(manifest), **files}


def save_model(directory: Path, config: RunConfig, model: GenerativeModel, box: Box) -> None:
    """Write config.json (with the evaluation box) and model.npz into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_bytes(_config_bytes(config, box))
    np.savez(directory / MODEL_FILE, **_weights(model))


def _config_bytes(config: RunConfig, box: Box, data: DataSource | None = None) -> bytes:
    record = {"config": config.to_dict(), "box": box.as_list()}
    if config.target == USER_DATA and data is not None:
        record["data"] = data.name
    return json_bytes(record)


def _weights(model: GenerativeModel) -> dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy() for name, value in model.state_dict().items()}


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
    reverse = last.reverse_kl or unavailable("KL(q‖p)", "needs p's density and q's exact density")
    results = {"test_nll": last.nll, "entropy": last.entropy, "kl": last.kl, "kl_quadrature": quadrature}
    results["reverse_kl"] = reverse
    why_null = {key: result.method for key, result in results.items() if result.value is None}
    cross_check = (
        {"value": quadrature.value, "kind": quadrature.kind, "method": quadrature.method}
        if quadrature.value is not None
        else None
    )
    metrics = {
        "target": trainer.config.target,
        "model": trainer.config.model,
        "objective": trainer.config.objective,
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
        **_labelled("reverse_kl", "reverse_kl", reverse),
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


# ------------------------------------------------------------------ continuing


def import_run(data: bytes, limits: HostLimits | None = None, device: str | None = None) -> Trainer:
    """A Trainer restored from a model file's bytes, ready to train on from where it stopped.

    Raises BundleError (or ConfigError) with one line for anything that is not such a file or that
    this host cannot run: see `resume`."""
    return resume(model_file_entries(data), limits, device)


def model_file_entries(data: bytes) -> dict[str, bytes]:
    """The files of a model file; a run directory zipped with its folder (run/manifest.json, …) is
    read as if zipped from inside it."""
    entries = unpack(data, None, "model file")
    files = {name: contents for name, contents in entries.items() if not name.endswith("/")}
    folders = {name.split("/", 1)[0] for name in files}
    if len(folders) == 1 and all("/" in name for name in files):
        files = {name.split("/", 1)[1]: contents for name, contents in files.items()}
    if unknown := sorted(set(files) - set(KNOWN_FILES)):
        raise BundleError(f"the model file holds unknown entries: {', '.join(unknown)[:200]}")
    return files


def read_files(source: Path) -> dict[str, bytes]:
    """The files of a model file (a zip) or of a run directory, bounded like an upload."""
    if source.is_dir():
        return _directory_files(source)
    if not source.is_file():
        raise BundleError(f"no such model file or run directory: {source}")
    size = source.stat().st_size
    if size > MAX_FILE_BYTES:
        raise BundleError(
            f"{source} is {size / 2**20:.0f} MB; a model file may hold {MAX_FILE_BYTES >> 20} MB"
        )
    return model_file_entries(source.read_bytes())


def _directory_files(directory: Path) -> dict[str, bytes]:
    """The files a run directory's manifest lists (any others in it are not the run's)."""
    if not (directory / MANIFEST_FILE).is_file():
        raise BundleError(
            f"{directory} has no {MANIFEST_FILE}: it is not a run directory, or it was written by a "
            "genviz that did not save the training state (it can be evaluated, not continued)"
        )
    names = [MANIFEST_FILE, *_listed(_read_manifest(_read_bounded(directory / MANIFEST_FILE)))]
    files, budget = {}, MAX_UNPACKED_BYTES
    for name in names:
        path = directory / name
        if not path.is_file():
            raise BundleError(f"{directory}: {name} is listed in {MANIFEST_FILE} but missing")
        files[name] = _read_bounded(path, budget)
        budget -= len(files[name])
    return files


def _read_bounded(path: Path, budget: int = MAX_UNPACKED_BYTES) -> bytes:
    if path.stat().st_size > budget:
        raise BundleError(f"{path} is larger than a run may hold ({MAX_UNPACKED_BYTES >> 20} MB in all)")
    return path.read_bytes()


def resume(
    files: Mapping[str, bytes], limits: HostLimits | None = None, device: str | None = None
) -> Trainer:
    """A Trainer with the saved weights, optimiser state, step, curves and random states.

    Everything is checked before training can use it: the manifest's format and version, the
    configuration (its ranges, and `limits`' cost check when given, before anything is built), the
    box, a user's points, and every array's name, shape and type against the model it belongs to."""
    listed = _listed(_read_manifest(files.get(MANIFEST_FILE)))
    if extra := sorted(set(files) - {MANIFEST_FILE, *listed}):
        raise BundleError(f"the model file holds files its manifest does not list: {', '.join(extra)}")
    if missing := [name for name in RESUME_FILES if name not in files]:
        raise BundleError(f"the run has no {' or '.join(missing)}: it cannot be continued")
    config, box, data_name = _read_config(files[CONFIG_FILE], device)
    data = _read_points(files, config, box, data_name)
    if limits is not None:
        check_cost(config, limits, None if data is None else len(data.test))
    weights = read_npz(files[MODEL_FILE], MODEL_FILE)
    scalars, arrays = read_json(files[TRAINING_FILE], TRAINING_FILE), read_npz(files[STATE_FILE], STATE_FILE)
    trainer = Trainer(config, data)
    _load_weights(trainer.model, weights)
    restore(trainer, scalars, arrays)
    return trainer


def _read_manifest(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise BundleError(f"not a genviz model file: it has no {MANIFEST_FILE}")
    manifest = read_json(raw, MANIFEST_FILE)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"not a genviz model file: {MANIFEST_FILE} does not name the format {FORMAT!r}")
    if manifest.get("version") != VERSION:
        raise BundleError(
            f"this file is version {manifest.get('version')!r:.20} of the genviz run format; "
            f"this genviz reads version {VERSION}"
        )
    check_keys(manifest, {"format", "version", "files", "genviz"}, MANIFEST_FILE)
    return manifest


def _listed(manifest: dict[str, Any]) -> list[str]:
    listed = manifest["files"]
    known = set(KNOWN_FILES) - {MANIFEST_FILE}
    if not isinstance(listed, list) or not all(isinstance(name, str) and name in known for name in listed):
        raise BundleError(f"{MANIFEST_FILE}: files must list some of {', '.join(sorted(known))}")
    return listed


def _read_config(raw: bytes, device: str | None) -> tuple[RunConfig, Box, str | None]:
    record = read_json(raw, CONFIG_FILE)
    check_keys(record, {"config", "box", "data"}, CONFIG_FILE, optional={"data"})
    try:
        config = RunConfig.from_dict(record["config"])
        if device is not None:
            config = config.with_changes(device=device)
    except (ConfigError, TypeError) as error:
        raise BundleError(f"{CONFIG_FILE}: {error}") from None
    box = record["box"]
    numbers = isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box)
    if not numbers or not (box[0] < box[1] and box[2] < box[3]):
        raise BundleError(f"{CONFIG_FILE}: box must be four finite numbers xmin < xmax, ymin < ymax")
    name = record.get("data")
    if name is not None and not (isinstance(name, str) and len(name) <= 200):
        raise BundleError(f"{CONFIG_FILE}: data must be the name of the points' file")
    return config, Box(*map(float, box)), name


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_points(
    files: Mapping[str, bytes], config: RunConfig, box: Box, name: str | None
) -> DataSource | None:
    """A user's points from data.npz, for a run on them; None for a target, which draws its own."""
    if config.target != USER_DATA:
        if DATA_FILE in files:
            raise BundleError(f"{DATA_FILE} is given, but the run's target is {config.target}")
        return None
    if DATA_FILE not in files:
        raise BundleError(f"the run trained on a user's points, but {DATA_FILE} is missing")
    points = read_npz(files[DATA_FILE], DATA_FILE)
    check_keys(points, {"test", "train"}, DATA_FILE)
    for part, array in points.items():
        if array.ndim != 2 or array.shape[1] != 2 or len(array) < 1 or array.dtype != np.float32:
            raise BundleError(
                f"{DATA_FILE}: {part} must be (n, 2) float32 points, got {array.shape} {array.dtype}"
            )
        if not np.isfinite(array).all():
            raise BundleError(f"{DATA_FILE}: {part} holds values that are not finite")
    if len(points["test"]) + len(points["train"]) > MAX_POINTS:
        raise BundleError(f"{DATA_FILE} holds more than {MAX_POINTS:,} points")
    test, train = torch.from_numpy(points["test"]), torch.from_numpy(points["train"])
    return DataSource(name or USER_DATA, box, test, train_points=train)


def _load_weights(model: GenerativeModel, weights: dict[str, np.ndarray]) -> None:
    """The saved state dict onto a fresh model of the same configuration: the same names, the shapes
    and kinds of number the model has, finite values. A buffer a family grows (a KDE's centres) may
    differ in its first dimension, up to the family's `max_points`."""
    fresh = model.state_dict()
    check_keys(weights, set(fresh), MODEL_FILE)
    state = {}
    for name, array in weights.items():
        expected = fresh[name]
        shape, wanted = tuple(array.shape), tuple(expected.shape)
        grown = (
            len(shape) == len(wanted) > 0 and shape[1:] == wanted[1:] and name in dict(model.named_buffers())
        )
        if shape != wanted and not (grown and shape[0] <= getattr(model, "max_points", 0)):
            raise BundleError(f"{MODEL_FILE}: {name} has shape {shape}, this model needs {wanted}")
        if (array.dtype.kind == "f") != expected.is_floating_point():
            raise BundleError(
                f"{MODEL_FILE}: {name} has dtype {array.dtype}, this model's is {expected.dtype}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise BundleError(f"{MODEL_FILE}: {name} holds values that are not finite")
        state[name] = torch.from_numpy(array.copy()).to(expected.dtype)
    try:
        load_state(model, state)
    except (RuntimeError, ValueError, KeyError, AttributeError) as error:
        raise BundleError(
            f"{MODEL_FILE}: the weights do not fit this model ({textwrap.shorten(str(error), 160)})"
        ) from None
