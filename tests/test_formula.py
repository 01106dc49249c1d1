"""A typed log-density: hostile text is refused with one line and nothing in it runs; accepted
formulas are normalised, their entropies and samples checked against closed forms and an
independent quadrature; the configuration carries them through JSON, links and the command line;
the Explorer applies them and keeps its target when one is refused."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from apptest_helpers import press
from streamlit.testing.v1 import AppTest

from genviz import cli
from genviz.config import FORMULA, ConfigError, RunConfig
from genviz.data import config_target
from genviz.formula import MAX_CHARS, FormulaError, parse_formula
from genviz.grid import Box, Grid
from genviz.targets.formula import FormulaTarget, formula_target
from genviz.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
WIDE = (-8.0, 8.0, -8.0, 8.0)
RING = "-((x**2 + y**2)**0.5 - 2)**2 / 0.08"
CANARY: list[str] = []  # a formula that ran Python would have called `canary()` and filled this


def canary() -> int:
    CANARY.append("ran")
    return 0


# formula -> a part of the one-line refusal
HOSTILE = {
    "attribute": ("x.__class__", "`__class__` is not allowed"),
    "dunder chain": ("().__class__.__bases__[0].__subclasses__()", "is not allowed"),
    "import builtin": ("__import__('os').system('true')", "`__import__('os').system(…)` is not allowed"),
    "bare import": ("__import__", "`__import__` is not allowed"),
    "import statement": ("import os", "cannot read the formula"),
    "exec": ("exec('x=1')", "`exec(…)` is not allowed"),
    "eval": ("eval('1')", "`eval(…)` is not allowed"),
    "open": ("open('/etc/passwd')", "`open(…)` is not allowed"),
    "canary call": ("canary()", "`canary(…)` is not allowed"),
    "canary in an allowed call": ("exp(canary())", "`canary(…)` is not allowed"),
    "getattr": ("getattr(x, 'real')", "`getattr(…)` is not allowed"),
    "comprehension": ("sum([x for x in (1, 2)])", "`sum(…)` is not allowed"),
    "comprehension alone": ("[x for x in y]", "a comprehension is not allowed"),
    "generator": ("exp(i for i in y)", "a comprehension is not allowed"),
    "lambda": ("(lambda: 0)()", "is not allowed"),
    "lambda alone": ("lambda: 0", "a lambda is not allowed"),
    "f-string": ("f'{x}'", "an f-string is not allowed"),
    "string": ("'x'", "text in quotes is not allowed"),
    "walrus": ("(z := x)", "`:=` is not allowed"),
    "subscript": ("x[0]", "a subscript"),
    "tuple": ("x, y", "a tuple is not allowed"),
    "and": ("x and y", "`and`/`or` is not allowed"),
    "conditional": ("x if y else 0", "use where(condition, a, b)"),
    "comparison outside where": ("x < y", "only as the condition of where"),
    "where without a comparison": ("where(x, 1, 2)", "where takes three arguments"),
    "keyword argument": ("exp(x=1)", "takes no keyword arguments"),
    "starred": ("exp(*x)", "`*` is not allowed"),
    "too many terms": ("logsumexp(" + ",".join(["x"] * 9) + ")", "takes 1 to 8 argument(s), got 9"),
    "floor division": ("x // 2", "`//` is not allowed"),
    "modulo": ("x % 2", "`%` is not allowed"),
    "bitwise not": ("~x", "`~` is not allowed"),
    "power tower": ("x**10**10", "an exponent must be a number between −16 and 16"),
    "constant tower": ("9**9**9", "an exponent must be a number between −16 and 16"),
    "huge exponent": ("x**17", "got `17`"),
    "expression exponent": ("x**y", "got `y`"),
    "huge literal": ("1" + "0" * 400, "is not a finite number"),
    "infinite literal": ("1e999 * x", "`1e999` is not a finite number"),
    "complex literal": ("1j * x", "`1j` is not allowed"),
    "deep nesting": ("-" * 150 + "x", "nests deeper than 100 levels"),
    "deep brackets": ("(" * 240 + "x" + ")" * 240, "cannot read the formula"),
    "too many terms overall": ("+".join(["x"] * 150), "more than 200 terms"),
    "very long": ("x+" * 400 + "x", f"the limit is {MAX_CHARS}"),
    "non-ASCII": ("-(x² + y²)", "'²' at position 4 is not allowed: only ASCII"),
    "unicode lookalike": ("ｅxp(x)", "only ASCII"),
    "empty": ("   ", "type a log-density in x and y"),
    "syntax error": ("-(x**2 +", "cannot read the formula"),
    "unknown name": ("z**2", "`z` is not allowed"),
    "statement": ("x = 1", "cannot read the formula"),
}
# formulas that parse but cannot be a density on the box
UNUSABLE = {
    "overflows everywhere": ("exp(exp(10)) + x", "+inf everywhere on the box (it overflows)"),
    "NaN on the box": ("log(x)", "is NaN at (x, y)"),
    "NaN from a square root": ("sqrt(x - 1) + y", "is NaN at"),
    "zero everywhere": ("-exp(1000) + x", "−inf everywhere on the box"),
    "not integrable on the box (1/x²)": ("-2*log(abs(x))", "not integrable on the box"),
    "not integrable on the box (1/r²)": ("-log(x**2 + y**2)", "not integrable on the box"),
    "a peak sharper than the grid": ("1e5 * x", "not integrable on the box"),
}


@pytest.mark.parametrize("text, said", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_formulas_are_refused_with_one_line(text: str, said: str) -> None:
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    message = str(refused.value)
    assert said in message and "\n" not in message
    assert CANARY == []


@pytest.mark.parametrize("text, said", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_formulas_that_are_no_density_on_the_box_are_refused(text: str, said: str) -> None:
    parse_formula(text)  # the syntax is fine: the values are not
    with pytest.raises(FormulaError) as refused:
        formula_target(text, (-4.0, 4.0, -4.0, 4.0))
    assert said in str(refused.value) and "\n" not in str(refused.value)


def test_nothing_in_a_refused_formula_runs(tmp_path: Path) -> None:
    written = tmp_path / "written"
    for text in (
        f"__import__('pathlib').Path({str(written)!r}).write_text('x')",
        f"open({str(written)!r}, 'w').write('x')",
        "[canary() for _ in (1,)]",
        "where(canary() < 1, canary(), canary())",
    ):
        with pytest.raises(FormulaError):
            parse_formula(text)
        with pytest.raises(ConfigError):
            RunConfig(target=FORMULA, formula=text)
        with pytest.raises(ConfigError):
            RunConfig.from_query({"target": FORMULA, "formula": text})
    assert not written.exists() and CANARY == []


@pytest.mark.parametrize(
    "box, said",
    [
        ((-4, 4, 4, -4), "ymin < ymax"),
        ((-4, 4, -4, math.inf), "finite"),
        ((-4, 4, -4, math.nan), "finite"),
        ((-1e6, 1e6, -4, 4), "within ±1000"),
        ((0, 0.01, 0, 0.01), "sides must lie between"),
        ((-50, 50, -1, 1), "at most 4 times"),
    ],
)
def test_bad_boxes_are_refused(box: tuple[float, ...], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        RunConfig(target=FORMULA, formula="-x**2", box=box)


def test_the_functions_compute_what_they_say() -> None:
    points = torch.tensor([[0.5, -1.5], [2.0, 0.25]], dtype=torch.float64)
    x, y = points[:, 0], points[:, 1]
    cases = {
        "exp(x) + log(abs(y)) - sqrt(x**2) * sin(y) / cos(x) + tanh(y) + sigmoid(x)": torch.exp(x)
        + torch.log(y.abs())
        - x * torch.sin(y) / torch.cos(x)
        + torch.tanh(y)
        + torch.sigmoid(x),
        "logsumexp(x, y, -1)": torch.logsumexp(torch.stack([x, y, torch.full_like(x, -1.0)]), 0),
        "minimum(x, y, 0) + maximum(x, y)": torch.clamp(torch.minimum(x, y), max=0) + torch.maximum(x, y),
        "where(-1 < x <= 1, pi, e) + x**-2 + +y": torch.where((x > -1) & (x <= 1), math.pi, math.e)
        + x**-2
        + y,
        "3": torch.full_like(x, 3.0),
    }
    for text, expected in cases.items():
        assert torch.allclose(parse_formula(text)(points), expected), text


def gaussian_entropy(*stds: float) -> float:
    return math.log(2 * math.pi * math.e) + sum(math.log(s) for s in stds)


def test_a_standard_gaussian_has_the_closed_form_entropy_and_normaliser() -> None:
    target = formula_target("-(x**2 + y**2)/2", WIDE)
    assert target.entropy == pytest.approx(gaussian_entropy(1, 1), abs=1e-4)
    assert target.log_z == pytest.approx(math.log(2 * math.pi), abs=1e-6)
    half = 16 / 512 / 2  # the centre of the cell just above and right of the origin
    near_zero = target.log_prob(torch.tensor([[half, half], [half * 1.9, half * 0.1]]))
    assert near_zero.tolist() == pytest.approx([-math.log(2 * math.pi) - half**2] * 2, abs=1e-6)
    assert target.density_known == "quadrature"
    assert target.density_method.startswith("exp(formula) at the centres of a 512² grid of [−8, 8]²")
    assert target.density_method.endswith("zero outside the box")


def test_an_anisotropic_gaussian_matches_its_moments_and_entropy() -> None:
    text = "-((x - 1)**2 / (2 * 4) + (y + 0.5)**2 / (2 * 0.5625))"  # std 2 and 0.75
    target = formula_target(text, (-11.0, 13.0, -6.5, 5.5))
    assert target.entropy == pytest.approx(gaussian_entropy(2, 0.75), abs=1e-4)
    samples = target.sample(200_000, torch.Generator().manual_seed(0)).double()
    assert samples.mean(0).tolist() == pytest.approx([1.0, -0.5], abs=0.02)
    assert torch.cov(samples.T).flatten().tolist() == pytest.approx([4.0, 0.0, 0.0, 0.5625], abs=0.04)
    # the Monte Carlo entropy from its own samples agrees with the quadrature
    assert float(-target.log_prob(samples).mean()) == pytest.approx(target.entropy, abs=0.01)


def test_a_thin_ring_agrees_with_an_independent_radial_quadrature() -> None:
    """p ∝ exp(−(r − 2)² / s) is radial: Z = 2π ∫ r e^{f(r)} dr and H = log Z − E[f], in 1D."""
    for s in (0.08, 0.01):
        target = formula_target(f"-((x**2 + y**2)**0.5 - 2)**2 / {s}", (-4.0, 4.0, -4.0, 4.0))
        r = torch.linspace(0, 4, 400_001, dtype=torch.float64)
        f = -((r - 2) ** 2) / s
        z = 2 * math.pi * torch.trapezoid(r * f.exp(), r)
        mean_f = 2 * math.pi * torch.trapezoid(r * f * f.exp(), r) / z
        assert target.log_z == pytest.approx(float(z.log()), abs=1e-5), s
        assert target.entropy == pytest.approx(float(z.log() - mean_f), abs=1e-4), s


def test_the_density_integrates_to_one_and_is_zero_outside_the_box() -> None:
    target = formula_target(RING, (-4.0, 4.0, -4.0, 4.0))
    finer = Grid(Box(-4.0, 4.0, -4.0, 4.0), 1024, 1024)  # four points in each of the density's cells
    assert finer.mass(target.log_prob(finer.points)) == pytest.approx(1.0, abs=1e-9)
    coarse = Box(-4.0, 4.0, -4.0, 4.0).grid(300)
    assert coarse.mass(target.log_prob(coarse.points)) == pytest.approx(1.0, abs=1e-3)
    outside = torch.tensor([[4.5, 0.0], [0.0, -4.01]])
    assert torch.isneginf(target.log_prob(outside)).all()
    samples = target.sample(10_000, torch.Generator().manual_seed(1))
    assert Box(-4.0, 4.0, -4.0, 4.0).contains(samples).all()
    again = target.sample(10_000, torch.Generator().manual_seed(1))
    assert torch.equal(samples, again)


def test_zero_density_regions_are_allowed_and_never_sampled() -> None:
    """−inf where the density is zero: a disc, uniform inside (area 4π). Every sample has a
    finite log p, also in the cells cut by the circle, so the Monte Carlo KL stays finite."""
    target = formula_target("where(x**2 + y**2 < 4, 0, -exp(1000))", (-4.0, 4.0, -4.0, 4.0))
    assert target.entropy == pytest.approx(math.log(4 * math.pi), abs=2e-3)
    samples = target.sample(200_000, torch.Generator().manual_seed(0))
    assert (samples.norm(dim=1) < 2.02).all()
    assert torch.isfinite(target.log_prob(samples)).all()
    assert float(-target.log_prob(samples).mean()) == pytest.approx(target.entropy, abs=1e-3)


def test_samples_keep_to_their_cells_in_float32() -> None:
    """Far from the origin float32 has few values per cell: a point rounded into a neighbouring
    cell (here one of zero density) is moved to its own cell's centre."""
    text = "where(x < 999.95, 0, -exp(1000)) + where(y < 0.05, 0, -exp(1000))"
    target = formula_target(text, (999.8, 1000.0, -0.1, 0.1))
    samples = target.sample(100_000, torch.Generator().manual_seed(0))
    assert torch.isfinite(target.log_prob(samples)).all()


def test_built_targets_are_cached_by_formula_and_box() -> None:
    first = formula_target(RING, (-4.0, 4.0, -4.0, 4.0))
    assert formula_target(RING, (-4.0, 4.0, -4.0, 4.0)) is first
    assert formula_target(RING, (-5.0, 5.0, -5.0, 5.0)) is not first
    assert isinstance(first, FormulaTarget)


# ------------------------------------------------------------------ configuration


def test_a_typed_density_round_trips_through_json_and_links() -> None:
    config = RunConfig(target=FORMULA, formula=RING, box=(-5.0, 5.0, -4.5, 4.5), model="gmm")
    assert RunConfig.from_dict(json.loads(config.to_json())) == config
    query = config.to_query()
    assert query["formula"] == RING and query["box"] == "-5,5,-4.5,4.5"
    assert RunConfig.from_query(query) == config
    assert "formula" not in RunConfig(target="moons").to_query()


@pytest.mark.parametrize(
    "query, said",
    [
        ({"target": FORMULA}, "type a log-density"),
        ({"target": FORMULA, "formula": "x.__class__"}, "`__class__` is not allowed"),
        ({"target": FORMULA, "formula": "-x**2", "box": "1,2,3"}, "box: cannot read '1,2,3'"),
        ({"target": FORMULA, "formula": "-x**2", "box": "a,b,c,d"}, "expected four numbers"),
    ],
)
def test_a_bad_typed_density_in_a_link_says_why(query: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace("*", r"\*")):
        RunConfig.from_query(query)


def test_the_trainer_trains_on_a_typed_density_with_exact_labels() -> None:
    config = RunConfig(target=FORMULA, formula=RING, model="gmm", steps=30, n_test=2000)
    trainer = Trainer(config)
    trainer.train()
    evaluation = trainer.record()
    assert evaluation.entropy.kind == "exact" and evaluation.entropy.value == pytest.approx(2.3405, abs=1e-3)
    assert evaluation.kl.kind == "exact" and "log p by quadrature" in evaluation.kl.method
    assert evaluation.kl.value > -3 * evaluation.kl.se  # a KL: never below zero beyond its error
    # NLL − KL is −mean log p over the held-out points: H(p) up to its Monte Carlo error
    monte_carlo_entropy = float(-trainer.data.log_p_test.mean())
    assert evaluation.nll.value - evaluation.kl.value == pytest.approx(monte_carlo_entropy, abs=1e-9)
    assert monte_carlo_entropy == pytest.approx(evaluation.entropy.value, abs=0.06)
    assert trainer.kl_by_quadrature() is not None
    assert config_target(config) is trainer.data.target


# ------------------------------------------------------------------ command line


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "genviz", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_the_command_line_trains_on_a_typed_density(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli("train", "--formula", "-(x**2 + y**2)/2", "--box", "-8,8,-8,8", "--model", "gmm",
                   "--steps", "40", "--set", "n_test=2000", "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["target"] == FORMULA and metrics["config"]["formula"] == "-(x**2 + y**2)/2"
    assert metrics["entropy"] == pytest.approx(gaussian_entropy(1, 1), abs=1e-4)
    assert metrics["kl_kind"] == "exact" and metrics["kl"] > -3 * metrics["kl_se"]
    assert "H(p) = 2.838" in done.stdout
    evaluated = run_cli("eval", out, "--data", write_csv(tmp_path / "more.csv"))
    assert evaluated.returncode == 0, evaluated.stderr


def write_csv(path: Path) -> Path:
    points = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    path.write_text("\n".join(f"{a},{b}" for a, b in points.tolist()))
    return path


@pytest.mark.parametrize(
    "args, said",
    [
        (["--formula", "__import__('os').system('touch pwned')"], "is not allowed"),
        (["--formula", "log(x)"], "is NaN at"),
        (["--formula", "-x**2 - y**2", "--box", "4,-4,-4,4"], "xmin < xmax"),
        (["--formula", "-x**2 - y**2", "--box", "1,2"], "--box: cannot read"),
        (["--target", "moons", "--box", "-4,4,-4,4"], "--box goes with --formula"),
    ],
)
def test_a_bad_typed_density_on_the_command_line_runs_nothing(
    args: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", *args, "--model", "gmm", "--steps", "5", "--out", str(out)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert not out.exists() and not (ROOT / "pwned").exists()


def test_the_command_line_takes_a_hostile_formula_in_a_fresh_process(tmp_path: Path) -> None:
    done = run_cli("train", "--formula", "__import__('os').system('touch pwned')", "--out", tmp_path / "r")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "is not allowed" in done.stderr
    assert not (tmp_path / "r").exists() and not (ROOT / "pwned").exists()


@pytest.mark.parametrize("args", [["--formula", "a.b"], ["--formula=x**99"], ["--formula", "-x**2 +* y"]])
def test_an_unreadable_formula_is_refused_before_torch_is_imported(args: list[str], tmp_path: Path) -> None:
    """`-X importtime` lists every module the process imported: a refusal that waited for torch's
    import (about two seconds) would list it."""
    command = [sys.executable, "-X", "importtime", "-m", "genviz", "train", *args]
    command += ["--out", str(tmp_path / "r")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert done.returncode == 2 and len(said) == 1 and said[0].startswith("error: ")
    assert "torch" not in imported and "genviz.formula" in imported, imported


# ------------------------------------------------------------------ the page

SMALL = {"model": "nsf", "p.transforms": "1", "p.hidden": "16,16"}


def explorer(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "explorer.py"), default_timeout=60)
    at.query_params = dict(SMALL if query is None else query)
    return at.run()


def type_density(at: AppTest, text: str, box: str | None = None) -> AppTest:
    """Type into the form's fields and press Apply (a form sends its fields with the button)."""
    at.text_input(key="formula_text").input(text)
    if box is not None:
        at.text_input(key="formula_box").input(box)
    next(b for b in at.button if b.label == "Apply").click()
    return at.run()


def step_metric(at: AppTest) -> int:
    return int(next(m for m in at.metric if m.label == "Step").value.replace(",", ""))


def page_text(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.info, *at.error, *at.caption])


def test_the_page_trains_on_a_typed_density() -> None:
    at = explorer()
    at.selectbox(key="target").set_value(FORMULA).run()
    assert "Type a log-density and press Apply; still showing 8gaussians" in page_text(at)
    type_density(at, "-(x**2 + y**2)/2", "-6, 6, -6, 6")
    assert not at.exception
    assert "Model rebuilt: target changed from 8gaussians to formula" in page_text(at)
    assert "`-(x**2 + y**2)/2`" in page_text(at) and "512² grid of [−6, 6]²" in page_text(at)
    assert "-(x**2 + y**2)/2" in at.query_params["formula"]  # the link carries it
    labels = [m.label for m in at.metric]
    assert "KL(p‖q) · exact" in labels and "H(p) · exact" in labels
    for _ in range(3):
        press(at, "step")
    assert step_metric(at) == 3 and not at.exception
    type_density(at, RING)
    assert "Model rebuilt: density changed to" in page_text(at) and step_metric(at) == 0


def test_a_hostile_formula_on_the_page_keeps_the_target_and_model() -> None:
    at = explorer()
    press(at, "step")
    at.selectbox(key="target").set_value(FORMULA).run()
    for text, said in (
        ("().__class__.__bases__", "`__bases__` is not allowed"),
        ("log(x)", "is NaN at"),
        ("x**10**10", "an exponent must be a number"),
    ):
        type_density(at, text)
        assert not at.exception
        assert said in " ".join(e.value for e in at.error)
        assert "still showing 8gaussians" in page_text(at)
        assert step_metric(at) == 1  # the model trained on 8gaussians is still there
    assert CANARY == []


def test_a_link_with_a_typed_density_reproduces_it() -> None:
    at = explorer({**SMALL, "target": FORMULA, "formula": RING, "box": "-5,5,-5,5"})
    assert not at.exception and not at.error
    assert at.selectbox(key="target").value == FORMULA
    assert at.text_input(key="formula_text").value == RING
    assert "[−5, 5]²" in page_text(at)
    bad = explorer({**SMALL, "target": FORMULA, "formula": "log(x)"})
    assert "Could not read this link" in " ".join(e.value for e in bad.error)
