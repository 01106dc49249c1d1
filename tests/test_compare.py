"""Comparing families: the specification's limits, the leaderboard's numbers against the runs behind
them, the command line's files, and the two pages (Compare; Forward vs reverse KL) through AppTest."""

from __future__ import annotations

import csv
import io
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from apptest_helpers import chart_keys, press, run_until
from streamlit.testing.v1 import AppTest

from genviz import cli, compare
from genviz.compare import CompareSpec
from genviz.config import ConfigError
from genviz.metrics import Result
from genviz.train import Evaluation
from genviz.views import render

ROOT = Path(__file__).resolve().parents[1]


def evaluation(step: int, seconds: float, kl: float | None) -> Evaluation:
    nll = Result("NLL", 3.0, 0.01, "exact", "mean")
    kl_result = Result("KL", kl, 0.01 if kl is not None else None, "exact", "Monte Carlo")
    return Evaluation(
        step, seconds, None, 1e-3, nll, kl_result, Result("H(p)", 2.8, None, "exact", "closed form")
    )


# ------------------------------------------------------------------ the library


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"models": ()}, "at least one model"),
        ({"models": ("nsf", "wings")}, "unknown model(s) wings"),
        ({"models": ("nsf", "nsf")}, "each model once"),
        ({"steps": 10, "seconds": 5.0}, "one budget"),
        ({"seconds": None}, "one budget"),
        ({"seconds": 1e9}, "seconds must lie in"),
        ({"seeds": 9}, "seeds must lie in [1, 5]"),
        ({"models": tuple(compare.MODELS), "seeds": 2}, "at most 24"),
        ({"kl_goal": -1.0}, "KL goal"),
        ({"target": "nowhere"}, "unknown target"),
    ],
)
def test_a_spec_out_of_bounds_says_what_is_wrong(changes: dict, said: str) -> None:
    arguments = {"target": "8gaussians", "models": ("nsf", "gmm"), "seconds": 5.0} | changes
    with pytest.raises(ConfigError) as caught:
        CompareSpec(**arguments)
    assert said in str(caught.value)


def test_time_to_goal_is_the_first_evaluation_at_or_below_it() -> None:
    history = [
        evaluation(0, 0.0, 1.0),
        evaluation(10, 0.5, 0.2),
        evaluation(20, 1.0, 0.05),
        evaluation(30, 1.5, 0.01),
    ]
    assert compare.time_to_goal(history, 0.1) == (1.0, 20)
    assert compare.time_to_goal(history, 1.0) == (0.0, 0)
    assert compare.time_to_goal(history, 0.001) is None and compare.time_to_goal(history, None) is None
    assert compare.time_to_goal([evaluation(0, 0.0, None)], 0.1) is None  # an unavailable KL reaches nothing


@pytest.fixture(scope="module")
def results() -> list[compare.RunResult]:
    spec = CompareSpec("8gaussians", ("gaussian", "gmm"), steps=8, seeds=2, kl_goal=2.0, n_test=1000)
    return compare.run_compare(spec)


def test_every_run_trains_to_the_same_budget(results: list[compare.RunResult]) -> None:
    assert [(r.model, r.seed) for r in results] == [("gaussian", 0), ("gaussian", 1), ("gmm", 0), ("gmm", 1)]
    assert all(r.steps == 8 and r.seconds > 0 and len(r.curve) >= 3 for r in results)
    assert all(r.kl.kind == "exact" and r.kl.value > 0 for r in results)
    assert results[0].parameters == 6 and results[2].parameters == 32 * 7  # 32 components: 1 + 2 + 4 each


def test_the_leaderboard_is_the_mean_and_spread_of_its_runs(results: list[compare.RunResult]) -> None:
    rows = compare.leaderboard(results)
    assert [row.model for row in rows] == ["gmm", "gaussian"]  # best KL first
    gaussian = rows[1]
    kls = [r.kl.value for r in results if r.model == "gaussian"]
    assert gaussian.runs == 2 and gaussian.kl == pytest.approx(sum(kls) / 2)
    assert gaussian.kl_spread == pytest.approx(abs(kls[0] - kls[1]) / 2**0.5)  # the sample standard deviation
    assert rows[0].goal_reached == 2 and rows[0].goal_seconds is not None
    table = list(csv.DictReader(io.StringIO(compare.to_csv(rows))))
    assert [t["model"] for t in table] == ["gmm", "gaussian"] and table[0]["rank"] == "1"
    assert set(table[0]) == set(compare.COLUMNS)


def test_the_markdown_table_says_what_its_numbers_are(results: list[compare.RunResult]) -> None:
    spec = CompareSpec("8gaussians", ("gaussian", "gmm"), steps=8, seeds=2, kl_goal=2.0, n_test=1000)
    text = compare.to_markdown(compare.leaderboard(results), spec)
    assert "8 steps per run, 2 seeds, mean ± standard deviation" in text
    assert (
        "| rank | model | held-out NLL | KL(p‖q) | KL kind | parameters | steps/s | time to KL ≤ 2 |" in text
    )
    assert text.count("\n| ") == 3  # header and two rows


def test_command_line_writes_the_leaderboard(tmp_path: Path) -> None:
    args = ["compare", "--target", "moons", "--models", "gaussian,gmm", "--steps", "4", "--seeds", "1"]
    with redirect_stdout(io.StringIO()) as printed, redirect_stderr(io.StringIO()):
        assert cli.main([*args, "--kl-goal", "0.5", "--out", str(tmp_path)]) == 0
    assert "Leaderboard on moons" in printed.getvalue()
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert {row["model"] for row in rows} == {"gaussian", "gmm"} and rows[0]["kl_kind"] == "exact"
    assert (tmp_path / "leaderboard.md").read_text().startswith("Leaderboard on moons: 4 steps per run")
    assert (tmp_path / "curves.csv").read_text().startswith("model,seed,step,seconds,kl\n")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--models", "gaussian", "--steps", "2", "--seconds", "1"], "not allowed with argument"),
        (["--models", "gaussian"], "one of the arguments --steps --seconds is required"),
        (["--models", "gaussian,wings", "--steps", "2"], "unknown model(s) wings"),
        (["--models", "gaussian", "--steps", "2", "--seeds", "99"], "seeds must lie in"),
    ],
)
def test_command_line_refuses_a_bad_comparison_in_one_line(
    args: list[str], said: str, tmp_path: Path
) -> None:
    with redirect_stderr(io.StringIO()) as message:
        assert cli.main(["compare", "--target", "moons", *args, "--out", str(tmp_path)]) == 2
    assert said in message.getvalue() and message.getvalue().count("\n") == 1


def test_overlaid_curves_draw_every_series_and_keep_non_positive_values_on_the_log_axis() -> None:
    series = [("nsf", [0.0, 1.0, 2.0], [0.5, 0.05, -0.001]), ("gmm", [0.0, 1.0], [0.3, None])]
    figure = render.overlay_curves(series, title="KL", x_title="seconds", goal=0.1, goal_label="goal 0.1")
    assert [trace.name for trace in figure.data] == ["nsf", "gmm"] and figure.layout.yaxis.type == "log"
    assert figure.data[0].y[2] == render.LOG_FLOOR and math.isnan(figure.data[1].y[1])
    assert figure.layout.shapes[0].y0 == 0.1  # the goal line
    label = figure.layout.annotations[0]  # plotly places it on a log axis by the exponent
    assert label.text == "goal 0.1" and label.y == -1 and label.yref == "y"
    linear = render.overlay_curves(series, title="", x_title="", log_y=False, goal=0.1, goal_label="goal")
    assert linear.layout.annotations[0].y == 0.1
    assert render.overlay_curves([("nsf", [0], [None])], title="", x_title="").layout.annotations
    rows = [{"step": 0, "kl": 1.2, "reverse_kl": 6.0}, {"step": 5, "kl": 1.1}]
    pair = render.divergence_curves(rows)
    assert [t.name for t in pair.data] == ["KL(p‖q), forward", "KL(q‖p), reverse"]
    assert math.isnan(pair.data[1].y[1])  # a row without the reverse KL leaves a gap


# ------------------------------------------------------------------ the pages


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / name), default_timeout=90).run()


def labelled(at: AppTest) -> list[str]:
    """Each divergence card's name and kind, e.g. 'KL(q‖p) exact'."""
    return [f"{m.label} {str(m.proto.delta).split(' ')[0]}" for m in at.metric]


def test_divergence_page_trains_both_fits_and_labels_both_divergences() -> None:
    at = page("divergences.py")
    assert not at.exception
    assert labelled(at) == ["KL(p‖q) exact", "KL(q‖p) exact"] * 2
    assert chart_keys(at) == [
        "pair.target_density", "pair.forward-kl.density", "pair.forward-kl.curves",
        "pair.reverse-kl.density", "pair.reverse-kl.curves",
    ]  # fmt: skip
    assert any("mode seeking" in str(m.value) for m in at.markdown)
    press(at, "pair.train")
    state = at.session_state["genviz.divergences"]
    run_until(at, lambda at: min(h.snapshot.step for h in state.handles.values()) > 50, timeout=90)
    assert at.button(key="pair.train").label == "Pause" and not at.exception
    press(at, "pair.train")
    assert not any(h.snapshot.running for h in state.handles.values())
    configs = [h.snapshot for h in state.handles.values()]
    assert all(s.history[-1].reverse_kl is not None for s in configs)


def test_divergence_page_rebuilds_the_pair_for_another_family() -> None:
    at = page("divergences.py")
    at.selectbox(key="pair.model").select("gmm").run()
    assert not at.exception and not at.error
    state = at.session_state["genviz.divergences"]
    assert state.model == "gmm" and labelled(at) == ["KL(p‖q) exact", "KL(q‖p) exact"] * 2
    at.selectbox(key="pair.target").select("U2").run()
    assert not at.exception and state.target == "U2"
    assert "restricted to where p > 0" in state.handles["reverse-kl"].snapshot.history[-1].reverse_kl.method


def test_compare_page_ranks_four_families() -> None:
    at = page("compare.py")
    assert not at.exception
    assert at.multiselect(key="compare.models").value == ["nsf", "maf", "gmm", "gaussian"]
    at.radio(key="compare.budget").set_value("steps").run()
    at.number_input(key="compare.steps").set_value(10).run()
    press(at, "compare.run")
    state = at.session_state["genviz.compare"]
    run_until(at, lambda at: not state.active and bool(at.dataframe), timeout=90)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert sorted(table["model"]) == ["gaussian", "gmm", "maf", "nsf"] and list(table["rank"]) == [
        "1",
        "2",
        "3",
        "4",
    ]
    assert "time to KL ≤ 0.1" in table.columns
    charts = chart_keys(at)
    assert charts[0] == "compare.curves" and "compare.thumb.target" in charts and len(charts) == 6
    assert all(run.snapshot.step == 10 for run in state.runs)


def test_compare_page_refuses_too_many_runs_runs_a_few_at_a_time_and_stops() -> None:
    at = page("compare.py")
    at.number_input(key="compare.seeds").set_value(4).run()
    assert "16 runs asked for" in " ".join(str(e.value) for e in at.error)
    assert at.button(key="compare.run").disabled
    at.number_input(key="compare.seeds").set_value(2).run()
    at.multiselect(key="compare.models").set_value(["gaussian", "maf", "gmm"]).run()
    at.number_input(key="compare.s").set_value(60.0).run()
    press(at, "compare.run")
    state = at.session_state["genviz.compare"]
    assert [run.started for run in state.runs] == [True] * 4 + [False] * 2  # at most 4 at a time
    assert "4 training, 2 waiting" in at.get("progress")[0].proto.text
    run_until(at, lambda at: all(run.snapshot.step > 0 for run in state.runs if run.started), timeout=90)
    press(at, "compare.stop")
    run_until(at, lambda at: not state.active and bool(at.dataframe), timeout=90)
    assert not at.exception and "stopped" in at.get("progress")[0].proto.text
    assert [run.skipped for run in state.runs] == [False] * 4 + [True] * 2
    assert sorted(at.dataframe[0].value["model"]) == ["gaussian", "maf"]  # gmm never started
