"""The command line: end to end through `python -m genviz`, and every bad input in-process."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from genviz import cli, pointsfile, rundir
from genviz.metrics import density_log_prob
from genviz.models import MODELS, hyperparameters
from genviz.rundir import load_model
from genviz.targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--model", "nsf", "--set", "transforms=1", "--steps", "30", "--set", "n_test=500"]
METRIC_KEYS = {
    "target", "model", "steps", "seconds", "device", "test_nll", "test_nll_se", "nll_kind", "nll_method",
    "entropy", "kl", "kl_se", "kl_kind", "kl_method", "kl_quadrature", "other_nlls", "rollbacks", "config",
    "history",
}  # fmt: skip


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, "-m", "genviz", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def write_points(path: Path, points: torch.Tensor, header: bool = True) -> Path:
    lines = ["x,y"] * header + [f"{x!r},{y!r}" for x, y in points.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path


def banana(n: int, seed: int) -> torch.Tensor:
    return TARGETS["banana"].sample(n, torch.Generator().manual_seed(seed))


def strict_json(text: str) -> object:
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))


@pytest.fixture(scope="module")
def target_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("runs") / "eight"
    return out, run_cli("train", "--target", "8gaussians", *FAST, "--out", out)


@pytest.fixture(scope="module")
def data_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    base = tmp_path_factory.mktemp("data")
    points = write_points(base / "points.csv", banana(300, seed=1))
    return base / "run", run_cli("train", "--data", points, *FAST, "--out", base / "run")


# ------------------------------------------------------------------ end to end


def test_list_prints_every_target_and_model() -> None:
    done = run_cli("list")
    assert done.returncode == 0, done.stderr
    for name in [*TARGETS, *MODELS]:
        assert name in done.stdout


def test_list_json_is_one_document_with_defaults() -> None:
    done = run_cli("list", "--json")
    assert done.returncode == 0, done.stderr
    listing = strict_json(done.stdout)
    assert [t["name"] for t in listing["targets"]] == list(TARGETS)
    assert [m["name"] for m in listing["models"]] == list(MODELS)
    nsf = next(m for m in listing["models"] if m["name"] == "nsf")
    expected = {h.name: h.default for h in hyperparameters(MODELS["nsf"])}
    listed = {h["name"]: h["default"] for h in nsf["hyperparameters"]}
    assert listed == {k: list(v) if isinstance(v, tuple) else v for k, v in expected.items()}


def test_train_writes_metrics_density_and_model(target_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, done = target_run
    assert done.returncode == 0, done.stderr
    metrics = strict_json((out / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS
    assert metrics["steps"] == 30 and metrics["kl_kind"] == "exact" and metrics["entropy"] > 0
    assert metrics["kl_quadrature"]["value"] is not None
    assert [row["step"] for row in metrics["history"]][-1] == 30
    assert (out / "config.json").is_file() and (out / "model.npz").is_file()
    assert done.stdout.strip().splitlines()[-2].startswith("KL = ")
    assert "step" in done.stderr


def test_density_grid_is_laid_out_as_documented(target_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = target_run
    with np.load(out / "density.npz") as arrays:
        x, y, log_q, log_p = (arrays[name] for name in ("x", "y", "log_q", "log_p"))
    assert len(x) >= 200 and len(y) >= 200
    assert log_q.shape == log_p.shape == (len(y), len(x))
    _, model, box = load_model(out)
    i, j = 17, 151  # log_q[i, j] belongs to (x[j], y[i])
    point = torch.tensor([[x[j], y[i]]])
    assert log_q[i, j] == pytest.approx(float(density_log_prob(model, point, box)[0]), abs=1e-5)
    assert log_p[i, j] == pytest.approx(float(TARGETS["8gaussians"].log_prob(point)[0]))


def test_eval_prints_the_models_own_nll(
    target_run: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    out, _ = target_run
    points = TARGETS["8gaussians"].sample(400, torch.Generator().manual_seed(5))
    done = run_cli("eval", out, "--data", write_points(tmp_path / "fresh.csv", points, header=False))
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    result = strict_json(line)
    _, model, _ = load_model(out)
    with torch.no_grad():
        nll = -model.log_prob(points).double().mean().item()
    assert result["n"] == 400
    assert result["nll"] == pytest.approx(nll, rel=1e-5)
    assert 0 < result["nll_se"] < 1


def test_train_on_data_reports_no_kl(data_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, done = data_run
    assert done.returncode == 0, done.stderr
    metrics = strict_json((out / "metrics.json").read_text())
    assert metrics["target"] == "data" and metrics["test_nll"] is not None
    assert metrics["entropy"] is None and metrics["kl"] is None and metrics["kl_quadrature"] is None
    assert metrics["kl_kind"] == "unavailable"
    assert {"entropy", "kl", "kl_quadrature"} <= set(metrics["why_null"])
    with np.load(out / "density.npz") as arrays:
        assert "log_p" not in arrays.files and arrays["log_q"].shape == (len(arrays["y"]), len(arrays["x"]))


def test_non_finite_values_become_null_with_a_reason() -> None:
    why: dict[str, str] = {}
    assert rundir.json_ready({"a": math.inf, "b": [1.0, math.nan]}, "", why) == {"a": None, "b": [1.0, None]}
    assert set(why) == {"a", "b[1]"}


# ------------------------------------------------------------------- bad input


def good_rows(n: int) -> str:
    return "".join(f"{i * 0.1},{(i * 7) % 11}\n" for i in range(n))


BAD_FILES = {
    "empty": (b"", "is empty"),
    "header only": (b"x,y\n", "header but no points"),
    "blank lines only": (b"\n \n\n", "no points"),
    "one column": (b"1\n2\n3\n", "found 1"),
    "three columns": (b"x,y\n1,2,3\n", "line 2: expected 2 comma-separated values (x, y), found 3"),
    "text cell": (("x,y\n1,2\n1,abc\n" + good_rows(60)).encode(), "line 3, column 2: 'abc' is not a number"),
    "empty cell": (b"1,2\n,3\n", "line 2, column 1: empty cell"),
    "nan": (b"1,2\nnan,3\n", "'nan' is not a finite number"),
    "infinity": (b"1,2\n3,-inf\n", "'-inf' is not a finite number"),
    "huge value": (b"1,2\n3,2e7\n", "'2e7' is too large"),
    "too few points": (good_rows(49).encode(), "only 49 points; at least 50"),
    "identical points": (b"1.5,2\n" * 60, "all points are identical"),
    "no spread in x": ("".join(f"3,{i}\n" for i in range(60)).encode(), "every point has x = 3"),
    "binary": (bytes(range(256)) * 4, "binary"),
    "not utf-8": (b"x,y\n1,2\n\xe9t\xe9,3\n", "line 3: not UTF-8"),
    "semicolons": (b"1;2\n3;4\n", "separated by commas, not ';'"),
    "unclosed quote": (('1,2\n"3,4\n' + good_rows(60)).encode(), "line 2: a quoted value runs past"),
    "text after data": ((good_rows(60) + "x,y\n").encode(), "line 61, column 1: 'x' is not a number"),
}


@pytest.mark.parametrize("content, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_points_file(content: bytes, message: str, tmp_path: Path) -> None:
    (tmp_path / "points.csv").write_bytes(content)
    assert_one_error(f"train --data {tmp_path}/points.csv --out {tmp_path}/r", message)


def test_too_many_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pointsfile, "MAX_POINTS", 100)
    (tmp_path / "points.csv").write_text(good_rows(101))
    assert_one_error(f"train --data {tmp_path}/points.csv --out {tmp_path}/r", "more than 100 points")


def test_too_many_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.truncate(pointsfile.MAX_BYTES + 1)  # sparse: costs no disk
    assert_one_error(f"train --data {big} --out {tmp_path}/r", "the limit is 64 MB")


GOOD_FILES = {
    "plain": good_rows(50),
    "header, BOM, CRLF, empty rows": "\ufeffx,y\r\n" + good_rows(50).replace("\n", "\r\n") + ",\n\n",
    "old Mac line endings": good_rows(50).replace("\n", "\r"),
    "quotes and spaces": "".join(f'"{x}", {y}\n' for x, y in (r.split(",") for r in good_rows(50).split())),
}


@pytest.mark.parametrize("text", GOOD_FILES.values(), ids=GOOD_FILES.keys())
def test_good_points_files(text: str, tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_bytes(text.encode())
    points = pointsfile.read_points(path)
    assert points.shape == (50, 2) and points.dtype == torch.float64
    assert points[3].tolist() == pytest.approx([0.3, 21 % 11])


# Commands as they would be typed; {tmp} is a directory holding points.csv, not_a_run/ and broken/.
BAD_COMMANDS = {
    "unknown target": ("train --target spiral9 --out {tmp}/r", "unknown target 'spiral9'"),
    "unknown model": ("train --target banana --model vae9 --out {tmp}/r", "unknown model 'vae9'"),
    "unknown setting": ("train --target banana --set depth=3 --out {tmp}/r", "unknown setting 'depth'"),
    "bad setting value": ("train --target banana --set lr=fast --out {tmp}/r", "lr: cannot read 'fast'"),
    "setting out of range": ("train --target banana --set bins=1 --out {tmp}/r", "bins must lie in"),
    "setting without value": ("train --target banana --set lr --out {tmp}/r", "expects key=value"),
    "negative steps": ("train --target banana --steps -5 --out {tmp}/r", "steps must be a whole number"),
    "negative seconds": ("train --target banana --seconds -1 --out {tmp}/r", "argument --seconds"),
    "steps and seconds": ("train --target banana --steps 1 --seconds 1 --out {tmp}/r", "not allowed"),
    "target and data": ("train --target banana --data {tmp}/points.csv --out {tmp}/r", "not allowed"),
    "no source": ("train --out {tmp}/r", "--target --data --formula --resume is required"),
    "no out": ("train --target banana", "--out"),
    "out is a file": ("train --target banana --out {tmp}/points.csv", "is not a directory"),
    "unknown command": ("fit", "invalid choice"),
    "missing data file": ("train --data {tmp}/nope.csv --out {tmp}/r", "no such file"),
    "data is a directory": ("train --data {tmp} --out {tmp}/r", "is a directory"),
    "eval not a run": ("eval {tmp}/not_a_run --data {tmp}/points.csv", "is not a run directory"),
    "eval missing run": ("eval {tmp}/gone --data {tmp}/points.csv", "no such run directory"),
    "eval damaged run": ("eval {tmp}/broken --data {tmp}/points.csv", "model.npz is not an .npz archive"),
    "eval without data": ("eval {tmp}/broken", "--data"),
}


@pytest.mark.parametrize("command, message", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_bad_command(command: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "not_a_run").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "broken" / "model.npz").write_bytes(b"junk")
    (tmp_path / "points.csv").write_text(good_rows(60))
    assert_one_error(command.format(tmp=tmp_path), message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu(tmp_path: Path) -> None:
    assert_one_error(f"train --target banana --device cuda --out {tmp_path}/r", "no CUDA GPU")


def test_bad_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.THREADS_VARIABLE, "many")
    assert_one_error(f"train --target banana --out {tmp_path}/r", "must be a positive integer")


def assert_one_error(command: str, message: str) -> None:
    """The command fails with status 2 and exactly one line on stderr, naming the problem."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = cli.main(command.split())
    lines = stderr.getvalue().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr.getvalue()
    assert message in lines[0]
    assert stdout.getvalue() == ""


# ------------------------------------------------------------------- slow


@pytest.mark.slow
def test_trained_on_points_the_nll_reaches_the_entropy(tmp_path: Path) -> None:
    """20,000 banana points, the default model for 30 s: the NLL on fresh points is within 0.1
    nats of H(p), and never below it by more than the noise (an NLL below the entropy would
    mean an unnormalised density)."""
    train = write_points(tmp_path / "train.csv", banana(20_000, seed=1))
    fresh = write_points(tmp_path / "fresh.csv", banana(20_000, seed=2))
    done = run_cli("train", "--data", train, "--seconds", "30", "--out", tmp_path / "run", timeout=300)
    assert done.returncode == 0, done.stderr
    done = run_cli("eval", tmp_path / "run", "--data", fresh)
    assert done.returncode == 0, done.stderr
    result, entropy = strict_json(done.stdout), TARGETS["banana"].entropy
    print(f"H(p) = {entropy:.4f}, NLL = {result['nll']:.4f} ± {result['nll_se']:.4f}")
    assert abs(result["nll"] - entropy) < 0.1
    assert result["nll"] >= entropy - 3 * result["nll_se"]
