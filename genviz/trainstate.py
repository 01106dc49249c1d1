"""A Trainer's training state as JSON-ready scalars and plain arrays, and back onto a fresh Trainer.

What `Trainer.train` reads besides the configuration and the weights: the step and training time
(the schedule's progress), the learning-rate factor left by rollbacks, each optimiser's moments,
the data generator and torch's random state (the next batches and the model's own noise), the
loss not yet averaged into the curve, and the history and rollbacks the page draws. Restored
onto a Trainer built from the same configuration, training goes on exactly as it would have.

The one difference: the rollback point becomes the restored step (a rollback would otherwise
return to the last multiple of SNAPSHOT_EVERY before it, whose state is not saved).
"""

from __future__ import annotations

import math
import types
from dataclasses import MISSING, asdict, fields, is_dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np
import torch

from genviz.bundle import BundleError, check_keys
from genviz.train import Evaluation, Rollback, Trainer

SCALARS = ("step", "train_seconds", "lr_scale", "stopped", "loss_sum", "loss_count")
STATE_KEYS = {*SCALARS, "rollbacks", "history", "optimizers"}
RNG_ARRAYS = ("rng.data", "rng.torch")  # the data generator, torch's default generator
CUDA_RNG = "rng.cuda"  # the GPU's generator (a model's noise on the GPU), for a run trained on one
OPTIMIZER_PREFIX = "optimizer."


# ------------------------------------------------------------------ capture


def capture(trainer: Trainer) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(scalars for JSON, arrays for an .npz) of everything training reads besides config and weights."""
    scalars: dict[str, Any] = {
        "step": trainer.step,
        "train_seconds": trainer.train_seconds,
        "lr_scale": trainer.lr_scale,
        "stopped": trainer.stopped,
        "loss_sum": trainer._loss_sum,
        "loss_count": trainer._loss_count,
        "rollbacks": [asdict(rollback) for rollback in trainer.rollbacks],
        "history": [asdict(evaluation) for evaluation in trainer.history],
        "optimizers": {},
    }
    arrays = {"rng.data": trainer.generator.get_state().numpy(), "rng.torch": torch.get_rng_state().numpy()}
    if trainer.device.type == "cuda":
        arrays[CUDA_RNG] = torch.cuda.get_rng_state(trainer.device).numpy()
    for name, optimizer in trainer.optimizers.items():
        state = optimizer.state_dict()
        scalars["optimizers"][name] = [_options(group) for group in state["param_groups"]]
        for index, values in state["state"].items():
            for key, value in values.items():
                arrays[f"{OPTIMIZER_PREFIX}{name}.{index}.{key}"] = (
                    torch.as_tensor(value).detach().cpu().numpy()
                )
    return scalars, arrays


def _options(group: dict[str, Any]) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in group.items()
        if key != "params"
    }


# ------------------------------------------------------------------ restore


def restore(trainer: Trainer, scalars: Any, arrays: dict[str, np.ndarray]) -> None:
    """Put a captured state onto `trainer`, built fresh from the same configuration and weights.

    Raises BundleError, naming the field, for anything that does not fit this Trainer: a missing or
    unknown key, a value of the wrong type or range, an array of the wrong shape."""
    check_keys(scalars, STATE_KEYS, "training.json")
    _check_arrays(trainer, scalars["optimizers"], arrays)
    step = _whole(scalars["step"], "step")
    train_seconds = _number(scalars["train_seconds"], "train_seconds", low=0.0)
    lr_scale = _number(scalars["lr_scale"], "lr_scale", low=0.0)
    stopped = _text(scalars["stopped"], "stopped", optional=True)
    loss_sum = _number(scalars["loss_sum"], "loss_sum", finite=False)
    loss_count = _whole(scalars["loss_count"], "loss_count")
    rollbacks = list(decode(scalars["rollbacks"], tuple[Rollback, ...], "training.json: rollbacks"))
    history = list(decode(scalars["history"], tuple[Evaluation, ...], "training.json: history"))
    _load_optimizers(trainer, scalars["optimizers"], arrays)
    _load_rng(trainer, arrays)
    trainer.step, trainer.train_seconds, trainer.stopped = step, train_seconds, stopped
    trainer.lr_scale = lr_scale
    trainer._loss_sum, trainer._loss_count = loss_sum, loss_count
    trainer.rollbacks, trainer.history = rollbacks, history
    trainer._snapshot = trainer._take_snapshot()


def _check_arrays(trainer: Trainer, options: Any, arrays: dict[str, np.ndarray]) -> None:
    """Every array is one this Trainer expects, with the shape it expects."""
    check_keys(options, set(trainer.optimizers), "training.json: optimizers")
    expected = {name: _param_shapes(optimizer) for name, optimizer in trainer.optimizers.items()}
    fresh = {"rng.data": trainer.generator.get_state(), "rng.torch": torch.get_rng_state()}
    for key in RNG_ARRAYS:
        if key not in arrays:
            raise BundleError(f"training.npz has no {key}")
        _shaped(arrays[key], tuple(fresh[key].shape), np.uint8, f"training.npz: {key}")
    if CUDA_RNG in arrays and (arrays[CUDA_RNG].dtype != np.uint8 or arrays[CUDA_RNG].ndim != 1):
        raise BundleError(f"training.npz: {CUDA_RNG} must be a random state (bytes)")
    for key, array in arrays.items():
        if key in (*RNG_ARRAYS, CUDA_RNG):
            continue
        name, index, what = _optimizer_key(key, expected)
        shape = () if what == "step" else expected[name][index]
        _shaped(array, shape, None, f"training.npz: {key}")


def _param_shapes(optimizer: torch.optim.Optimizer) -> dict[int, tuple[int, ...]]:
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    return {index: tuple(p.shape) for index, p in enumerate(parameters)}


def _optimizer_key(key: str, expected: dict[str, dict[int, tuple[int, ...]]]) -> tuple[str, int, str]:
    parts = key.split(".")
    known = len(parts) == 4 and parts[0] + "." == OPTIMIZER_PREFIX and parts[1] in expected
    if not known or not parts[2].isdigit() or int(parts[2]) not in expected[parts[1]]:
        raise BundleError(f"training.npz holds an unknown array {key[:80]!r}")
    if parts[3] not in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        raise BundleError(f"training.npz holds an unknown optimiser state {key[:80]!r}")
    return parts[1], int(parts[2]), parts[3]


def _shaped(array: np.ndarray, shape: tuple[int, ...], dtype: Any, what: str) -> None:
    if array.shape != shape:
        raise BundleError(f"{what} has shape {array.shape}, this model needs {shape}")
    if dtype is not None and array.dtype != dtype:
        raise BundleError(f"{what} has dtype {array.dtype}, expected {np.dtype(dtype)}")
    if dtype is None and (array.dtype.kind != "f" or not np.isfinite(array).all()):
        raise BundleError(f"{what} must hold finite floats")


def _load_optimizers(trainer: Trainer, options: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    for name, optimizer in trainer.optimizers.items():
        template = optimizer.state_dict()
        groups = _list(options[name], f"optimizers.{name}")
        if len(groups) != len(template["param_groups"]):
            count = len(template["param_groups"])
            raise BundleError(
                f"training.json: optimizer {name} has {len(groups)} groups, this model has {count}"
            )
        param_groups = []
        for saved, fresh in zip(groups, template["param_groups"], strict=True):
            param_groups.append(_param_group(saved, fresh, f"training.json: optimizers.{name}"))
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"{OPTIMIZER_PREFIX}{name}."
        for key, array in arrays.items():
            if key.startswith(prefix):
                _, index, what = key.split(".")[1:]
                state.setdefault(int(index), {})[what] = torch.from_numpy(array.copy())
        try:
            optimizer.load_state_dict({"state": state, "param_groups": param_groups})
        except (ValueError, TypeError, KeyError, RuntimeError) as error:
            raise BundleError(f"training.json: optimizer {name} does not fit this model ({error})") from None


def _param_group(saved: Any, fresh: dict[str, Any], where: str) -> dict[str, Any]:
    """The saved options of one parameter group: the learning rate, and the family's own options,
    which must be this model's (they come from its configuration)."""
    check_keys(saved, set(fresh) - {"params"}, where)
    for key, value in saved.items():
        wanted = list(fresh[key]) if isinstance(fresh[key], tuple) else fresh[key]  # JSON has no tuples
        if key != "lr" and value != wanted:
            raise BundleError(f"{where}.{key} is {value!r:.40}, this model's is {fresh[key]!r}")
    return {**fresh, "lr": _number(saved["lr"], f"{where}.lr", low=0.0)}


def _load_rng(trainer: Trainer, arrays: dict[str, np.ndarray]) -> None:
    try:
        trainer.generator.set_state(torch.from_numpy(arrays["rng.data"].copy()))
        torch.set_rng_state(torch.from_numpy(arrays["rng.torch"].copy()))
        if CUDA_RNG in arrays and trainer.device.type == "cuda":  # a GPU run resumed on the CPU needs none
            torch.cuda.set_rng_state(torch.from_numpy(arrays[CUDA_RNG].copy()), trainer.device)
    except RuntimeError as error:
        raise BundleError(f"training.npz: a random state is not valid ({error})") from None


def decode(value: Any, hint: Any, where: str) -> Any:
    """A JSON value read as the type `hint`: numbers, text, flags, Literal choices, optionals, tuples
    and dataclasses (Evaluation, Result, Rollback), each field checked; BundleError names the field."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [arg for arg in args if arg is not type(None)]  # our optionals hold one type
        return decode(value, hint, where)
    if origin is Literal:
        if value not in args:
            raise BundleError(f"{where} must be one of {', '.join(map(str, args))}, got {value!r:.40}")
        return value
    if origin is tuple:
        return tuple(decode(item, args[0], f"{where}[{i}]") for i, item in enumerate(_list(value, where)))
    if is_dataclass(hint):
        return _dataclass(value, hint, where)
    readers = {bool: _flag, int: _whole, float: _any_float, str: _text}
    if hint not in readers:
        raise BundleError(f"{where}: a field of type {hint} cannot be read")
    return readers[hint](value, where)


def _dataclass(item: Any, kind: type, where: str) -> Any:
    hints = get_type_hints(kind)
    every = {f.name for f in fields(kind)}
    required = {f.name for f in fields(kind) if f.default is MISSING and f.default_factory is MISSING}
    check_keys(item, every, where, optional=every - required)
    return kind(**{name: decode(value, hints[name], f"{where}.{name}") for name, value in item.items()})


# ------------------------------------------------------------------ field checks


def _list(item: Any, where: str) -> list[Any]:
    if not isinstance(item, list):
        raise BundleError(f"{where} must be a list, got {type(item).__name__}")
    return item


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleError(f"{where} must be a whole number ≥ 0, got {value!r:.40}")
    return value


def _number(
    value: Any, where: str, low: float | None = None, optional: bool = False, finite: bool = True
) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BundleError(f"{where} must be a number, got {value!r:.40}")
    if (finite and not math.isfinite(value)) or (low is not None and not value >= low):
        raise BundleError(f"{where} is out of range: {value!r:.40}")
    return float(value)


def _any_float(value: Any, where: str) -> float:
    """A float field of the history: a diverged loss or an infinite NLL is a value it may hold."""
    return _number(value, where, finite=False)


def _text(value: Any, where: str, optional: bool = False) -> str | None:
    if (value is None and optional) or isinstance(value, str):
        return value
    raise BundleError(f"{where} must be text, got {type(value).__name__}")


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BundleError(f"{where} must be true or false, got {value!r:.40}")
    return value
