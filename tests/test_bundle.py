"""Model files: a Trainer exported and imported trains on exactly as the original would, every
family; a corpus of damaged, foreign, oversized and hostile files is refused with one line; and
the command line's --resume continues a run."""

from __future__ import annotations

import io
import json
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from genviz import cli
from genviz.bundle import MAX_FILE_BYTES, MAX_UNPACKED_BYTES, BundleError, npz_bytes, pack, read_npz, unpack
from genviz.config import USER_DATA, ConfigError, RunConfig
from genviz.data import DataSource
from genviz.limits import HostLimits
from genviz.models import MODELS
from genviz.rundir import KNOWN_FILES, export_run, import_run, read_files, save_model, write_run
from genviz.targets import TARGETS
from genviz.train import Trainer

FIRST, MORE = 6, 5  # steps before the export, and after it


def config(model: str = "nsf", **changes: object) -> RunConfig:
    settings = {"steps": 40, "n_test": 200, "batch_size": 64, "seed": 5, "device": "cpu"} | changes
    return RunConfig(model=model, **settings)


def trained(cfg: RunConfig, steps: int, data: DataSource | None = None) -> Trainer:
    trainer = Trainer(cfg, data)
    trainer.record()
    trainer.train(max_steps=steps)
    trainer.record()
    return trainer


def same_state(a: Trainer, b: Trainer, timed: bool = True) -> None:
    """Parameters, optimiser moments, step and curves identical (and the training times, when `timed`:
    two runs measure different times)."""
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name
    for name, optimizer in a.optimizers.items():
        for (_, x), (_, y) in zip(optimizer.state.items(), b.optimizers[name].state.items(), strict=True):
            assert all(torch.equal(x[k], y[k]) for k in x)
    assert (a.step, a.lr, a.lr_scale) == (b.step, b.lr, b.lr_scale)
    if timed:
        assert a.train_seconds == b.train_seconds and a.history == b.history
    else:
        assert [replace(e, seconds=0) for e in a.history] == [replace(e, seconds=0) for e in b.history]


@pytest.mark.parametrize("model", list(MODELS))
def test_export_import_then_train_is_training_straight_through(model: str) -> None:
    straight = trained(config(model), FIRST)
    straight.train(max_steps=MORE)
    straight.record()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        expected_samples = straight.samples(5)

    first = trained(config(model), FIRST)
    restored = import_run(export_run(first))
    same_state(first, restored)
    restored.train(max_steps=MORE)
    restored.record()
    same_state(straight, restored, timed=False)  # the next batches, noise, schedule and moments were the same
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        assert torch.equal(restored.samples(5), expected_samples)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["nsf", "kde", "vae", "ddpm", "gan"])
def test_a_run_on_the_gpu_continues_identically_there_and_moves_to_the_cpu(model: str) -> None:
    straight = trained(config(model, device="cuda"), FIRST)
    straight.train(max_steps=MORE)
    restored = import_run(export_run(trained(config(model, device="cuda"), FIRST)))
    assert restored.device.type == "cuda"
    restored.train(max_steps=MORE)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, restored.model.state_dict()[name]), name
    on_cpu = import_run(export_run(restored), device="cpu")
    assert on_cpu.device.type == "cpu" and on_cpu.step == FIRST + MORE
    on_cpu.train(max_steps=1)


def user_points() -> DataSource:
    points = TARGETS["moons"].sample(300, torch.Generator().manual_seed(0))
    return DataSource.from_points(points, torch.Generator().manual_seed(5), "moons.csv")


def test_a_run_on_your_own_points_carries_them() -> None:
    straight = trained(config("gmm", target=USER_DATA), FIRST, user_points())
    straight.train(max_steps=MORE)
    first = trained(config("gmm", target=USER_DATA), FIRST, user_points())
    restored = import_run(export_run(first))
    assert restored.data.name == "moons.csv" and restored.data.box == first.data.box
    assert torch.equal(restored.data.test, first.data.test)
    assert torch.equal(restored.data.train_points, first.data.train_points)
    restored.train(max_steps=MORE)
    assert all(torch.equal(v, restored.model.state_dict()[k]) for k, v in straight.model.state_dict().items())


def test_the_model_file_is_the_run_directory_zipped(tmp_path: Path) -> None:
    trainer = trained(config("gmm"), FIRST)
    write_run(tmp_path, trainer)
    files = read_files(tmp_path)
    assert set(files) == set(KNOWN_FILES) - {"data.npz"}
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == "genviz-run" and manifest["version"] == 1
    assert sorted(manifest["files"]) == sorted(set(files) - {"manifest.json"})
    (tmp_path / "bundle.zip").write_bytes(pack(files))
    restored = import_run((tmp_path / "bundle.zip").read_bytes())
    same_state(trainer, restored)
    assert set(unpack(export_run(trainer))) == set(files) - {"density.npz", "metrics.json"}
    with_folder = pack({"runs/": b"", **{f"runs/{name}": data for name, data in files.items()}})
    same_state(trainer, import_run(with_folder))  # `zip -r run.zip runs/` keeps the folder's name


# ------------------------------------------------------------------ refusals


@pytest.fixture(scope="module")
def good() -> bytes:
    return export_run(trained(config("nsf", params={"transforms": 1, "hidden": (16, 16)}), 3))


def changed(data: bytes, **files: bytes | None) -> bytes:
    """The model file with some files replaced (None: removed)."""
    contents = unpack(data)
    for name, value in files.items():
        name = name.replace("_", ".")
        if value is None:
            contents.pop(name)
        else:
            contents[name] = value
    return pack(contents)


def edit_json(data: bytes, name: str, edit) -> bytes:
    record = json.loads(unpack(data)[name])
    edit(record)
    return changed(data, **{name.replace(".", "_"): json.dumps(record).encode()})


def edit_npz(data: bytes, name: str, edit) -> bytes:
    arrays = read_npz(unpack(data)[name], name)
    edit(arrays)
    return changed(data, **{name.replace(".", "_"): npz_bytes(arrays)})


def first_key(arrays: dict, prefix: str = "") -> str:
    return next(k for k in arrays if k.startswith(prefix))


def object_array_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, evil=np.array([{"a": 1}, None], dtype=object))
    return buffer.getvalue()


def lying_npz() -> bytes:
    """An array whose header claims 8 GB, carried by 8 bytes."""
    header = io.BytesIO()
    claim = {"descr": "<f4", "fortran_order": False, "shape": (10**9, 2)}
    np.lib.format.write_array_header_1_0(header, claim)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(8))
    return buffer.getvalue()


def zip_bomb() -> bytes:
    """A few hundred kilobytes that would unpack to more than MAX_UNPACKED_BYTES."""
    buffer = io.BytesIO()
    chunk = bytes(2**22)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entry = archive.open("model.npz", "w", force_zip64=True)
        for _ in range(MAX_UNPACKED_BYTES // len(chunk) + 1):
            entry.write(chunk)
        entry.close()
    return buffer.getvalue()


def many_entries() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(5000):
            archive.writestr(f"x{i}.npy", b"")
    return buffer.getvalue()


def poison(arrays: dict) -> None:
    name = first_key(arrays)
    arrays[name] = np.full_like(arrays[name], np.nan)


def bad_moment(arrays: dict) -> None:
    arrays[first_key(arrays, "optimizer.")] = np.zeros(7, np.float32)


def bad_random_state(arrays: dict) -> None:
    arrays["rng.torch"] = np.zeros(3, np.uint8)


def big_model(record: dict) -> None:
    record["config"]["params"] = {"transforms": 16, "hidden": [512] * 8}  # ~30 million parameters


BAD = {
    "empty": (lambda g: b"", "not a zip archive"),
    "text": (lambda g: b"hello, this is not a model", "not a zip archive"),
    "truncated": (lambda g: g[: len(g) // 2], "not a zip archive, or it is truncated"),
    "damaged inside": (lambda g: g[:200] + bytes(2000) + g[2200:], "damaged or truncated"),
    "oversized": (lambda g: g + bytes(MAX_FILE_BYTES), "at most 64 MB is accepted"),
    "zip bomb": (lambda g: zip_bomb(), "would unpack to"),
    "too many entries": (lambda g: many_entries(), "5,000 entries"),
    "unknown file": (lambda g: changed(g, evil_py=b"import os"), "unknown entries: evil.py"),
    "no manifest": (lambda g: changed(g, manifest_json=None), "no manifest.json"),
    "bad json": (lambda g: changed(g, training_json=b"{not json"), "training.json is not valid JSON"),
    "foreign format": (lambda g: edit_json(g, "manifest.json", lambda m: m.update(format="other")), "format"),
    "newer version": (lambda g: edit_json(g, "manifest.json", lambda m: m.update(version=2)), "version 2"),
    "manifest key": (lambda g: edit_json(g, "manifest.json", lambda m: m.update(extra=1)), "unknown key"),
    "unlisted file": (lambda g: changed(g, density_npz=npz_bytes({})), "does not list: density.npz"),
    "no training state": (lambda g: changed(g, training_json=None), "cannot be continued"),
    "config key": (lambda g: edit_json(g, "config.json", lambda c: c.update(extra=1)), "unknown key"),
    "bad config": (
        lambda g: edit_json(g, "config.json", lambda c: c["config"].update(model="x")),
        "unknown model",
    ),
    "bad box": (lambda g: edit_json(g, "config.json", lambda c: c.update(box=[1, 0, 0, 1])), "box"),
    "training key": (lambda g: edit_json(g, "training.json", lambda t: t.update(extra=1)), "unknown key"),
    "negative step": (lambda g: edit_json(g, "training.json", lambda t: t.update(step=-3)), "step must be"),
    "history kind": (
        lambda g: edit_json(g, "training.json", lambda t: t["history"][0]["nll"].update(kind="guess")),
        "history[0].nll.kind",
    ),
    "optimiser option": (
        lambda g: edit_json(g, "training.json", lambda t: t["optimizers"]["model"][0].update(betas=[0, 0])),
        "betas",
    ),
    "weight shape": (
        lambda g: edit_npz(g, "model.npz", lambda a: a.update({first_key(a): np.zeros((3, 3), np.float32)})),
        "has shape (3, 3)",
    ),
    "missing weight": (lambda g: edit_npz(g, "model.npz", lambda a: a.pop(first_key(a))), "is missing"),
    "NaN weight": (lambda g: edit_npz(g, "model.npz", poison), "not finite"),
    "object dtype": (lambda g: changed(g, model_npz=object_array_npz()), "only plain numbers"),
    "lying header": (lambda g: changed(g, model_npz=lying_npz()), "does not match its data"),
    "moment shape": (lambda g: edit_npz(g, "training.npz", bad_moment), "this model needs"),
    "unknown array": (
        lambda g: edit_npz(g, "training.npz", lambda a: a.update(extra=np.zeros(1))),
        "unknown array",
    ),
    "random state": (lambda g: edit_npz(g, "training.npz", bad_random_state), "rng.torch"),
    "points for a target": (lambda g: changed(g, data_npz=npz_bytes({})), "data.npz"),
}


@pytest.mark.parametrize("make, words", BAD.values(), ids=BAD.keys())
def test_a_bad_model_file_is_refused_with_one_line(good: bytes, make, words: str) -> None:
    with pytest.raises(BundleError) as refused:
        import_run(make(good))
    message = str(refused.value)
    assert words in message and "\n" not in message


def test_a_model_over_the_hosts_budget_is_refused_before_it_is_built(good: bytes) -> None:
    with pytest.raises(ConfigError, match="GENVIZ_MAX_PARAMETERS"):
        import_run(edit_json(good, "config.json", big_model), limits=HostLimits())


# ------------------------------------------------------------------ the command line

FAST = ["--model", "nsf", "--set", "transforms=1", "--set", "hidden=16,16", "--set", "n_test=300"]
CONSTANT = [*FAST, "--set", "schedule=constant", "--set", "batch_size=64"]


def run(*args: object) -> tuple[int, str]:
    stderr = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(stderr):
        code = cli.main([str(a) for a in args])
    return code, stderr.getvalue()


def weights(directory: Path) -> dict[str, np.ndarray]:
    return read_npz((directory / "model.npz").read_bytes(), "model.npz")


def test_resume_continues_a_run_as_if_it_had_not_stopped(tmp_path: Path) -> None:
    assert run("train", "--target", "moons", *CONSTANT, "--steps", 24, "--out", tmp_path / "whole")[0] == 0
    assert run("train", "--target", "moons", *CONSTANT, "--steps", 12, "--out", tmp_path / "half")[0] == 0
    code, err = run("train", "--resume", tmp_path / "half", "--steps", 12, "--out", tmp_path / "resumed")
    assert code == 0, err
    assert "resuming nsf at step 12" in err
    whole, resumed = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    assert all(np.array_equal(whole[name], resumed[name]) for name in whole)
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert metrics["steps"] == 24 and metrics["history"][0]["step"] == 0  # the saved curve, continued
    zipped = tmp_path / "half.zip"
    zipped.write_bytes(pack(read_files(tmp_path / "half")))
    assert run("train", "--resume", zipped, "--steps", 3, "--out", tmp_path / "from_zip")[0] == 0


RESUME_REFUSALS = {
    "a setting": (["--model", "gmm"], "--model cannot change a resumed run"),
    "no budget left": ([], "used its budget of 12 steps"),
    "missing": (["--steps", "5"], "no such model file"),
    "old directory": (["--steps", "5"], "has no manifest.json"),
}


@pytest.mark.parametrize("extra, words", RESUME_REFUSALS.values(), ids=RESUME_REFUSALS.keys())
def test_resume_refusals_are_one_line(tmp_path: Path, extra: list[str], words: str) -> None:
    source = tmp_path / "half"
    if words == "has no manifest.json":
        trainer = trained(config("gmm"), 2)
        save_model(source, trainer.config, trainer.model, trainer.data.box)  # written before the format
    elif words != "no such model file":
        run("train", "--target", "moons", *FAST, "--steps", 12, "--out", source)
    code, err = run("train", "--resume", source, *extra, "--out", tmp_path / "out")
    assert code == 2 and words in err and len(err.splitlines()) == 1, err
