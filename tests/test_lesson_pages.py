"""The Home and Theory pages through AppTest, from app.py as a visitor gets them: Home's tree has a
link for every family that opens the Explorer training it; the Theory page trains and shows the
chain's numbers, consistent with the run's snapshot, and the underflow table."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from apptest_helpers import chart_keys, press, run_until
from streamlit.testing.v1 import AppTest

from genviz.config import RunConfig
from genviz.models import MODELS
from genviz.taxonomy import SHOWCASE

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()


def links(at: AppTest) -> dict[str, dict[str, str]]:
    """Each page link to the Explorer: its label -> its query parameters."""
    found = {}
    for link in at.get("page_link"):
        if link.proto.page == "explorer":
            found[link.proto.label] = {k: v[0] for k, v in parse_qs(link.proto.query_string).items()}
    return found


def follow(at: AppTest, query: dict[str, str]) -> AppTest:
    """What a click on a page link does: the Explorer, with the link's query parameters."""
    at.query_params = dict(query)
    return at.switch_page("pages/explorer.py").run()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def step(at: AppTest) -> int:
    return int(metric(at, "Step").replace(",", ""))


def test_home_is_the_default_page_with_a_link_for_every_family() -> None:
    at = app()
    assert not at.exception
    assert "The families of generative models" in [h.value for h in at.header]
    found = links(at)
    models = [query["model"] for query in found.values()]
    assert sorted(set(models)) == sorted(MODELS)  # every family, plus the start-here link
    for label, query in found.items():
        assert query.pop("autostart") == "1", label
        config = RunConfig.from_query(query)
        if not label.startswith("Start here"):
            assert config.target == SHOWCASE[config.model]
            assert label == MODELS[config.model].title


def test_a_leaf_opens_the_explorer_on_its_family_training() -> None:
    at = app()
    start = next(q for label, q in links(at).items() if label.startswith("Start here"))
    gmm = next(q for q in links(at).values() if q["model"] == "gmm")
    follow(at, start)
    assert not at.exception
    assert at.selectbox(key="model").value == "nsf" and at.selectbox(key="target").value == "8gaussians"
    run_until(at, lambda at: step(at) > 0)  # autostarted: nobody pressed Train
    assert "autostart" not in at.query_params  # honoured once: the address no longer asks for it
    at.switch_page("pages/home.py").run()
    follow(at, gmm)  # the same browser session: the link rebuilds its model
    assert not at.exception
    assert at.selectbox(key="model").value == "gmm"
    assert at.query_params["model"] == "gmm"
    run_until(at, lambda at: step(at) > 0)


@pytest.mark.slow  # a build and an evaluation of every family: about a minute and a half
def test_every_leaf_opens_the_explorer_on_its_family_and_target_training() -> None:
    at = app()
    for label, query in links(at).items():
        follow(at, query)
        state = at.session_state["genviz"]
        assert not at.exception and not at.error, label
        assert (state.config.model, state.config.target) == (query["model"], query["target"]), label
        assert at.selectbox(key="model").value == query["model"], label
        assert state.running or state.handle.pending, label  # started: Train now reads Pause
        at.switch_page("pages/home.py").run()


def test_an_old_link_to_the_root_still_opens_the_explorer() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params = {"target": "moons", "model": "gaussian"}
    at.run()
    assert not at.exception
    assert at.selectbox(key="model").value == "gaussian" and at.selectbox(key="target").value == "moons"


def theory(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params = query or {}
    at.run()
    return at.switch_page("pages/theory.py").run()


def number(at: AppTest, label: str) -> float:
    return float(metric(at, label).replace(",", ""))


def test_theory_trains_and_its_numbers_match_the_snapshot() -> None:
    at = theory()
    assert not at.exception
    at.selectbox(key="theory.model").select("gmm").run()
    press(at, "train")
    run_until(at, lambda at: at.session_state["genviz"].snapshot.history[-1].step > 0)
    press(at, "train")  # paused: the numbers stay put while they are compared
    state = at.session_state["genviz"]
    run_until(at, lambda at: not state.snapshot.evaluating and not state.handle.pending)
    at.run()
    evaluation = state.snapshot.history[-1]
    nll, kl, entropy = evaluation.nll.value, evaluation.kl.value, evaluation.entropy.value
    assert number(at, "cross-entropy") == round(nll, 3)
    assert number(at, "held-out mean log q") == round(-nll, 3)
    assert number(at, "H(p*)") == round(entropy, 3)
    assert number(at, "KL(p*‖q)") == round(kl, 3)
    assert number(at, "CE − H(p*)") == round(nll - entropy, 3)
    assert abs((nll - entropy) - kl) < 4 * evaluation.nll.se  # the identity, up to Monte Carlo error
    assert number(at, "training mean log q · estimate") == round(-evaluation.loss, 3)
    assert chart_keys(at) == ["derivation"]
    table = at.table[0].value
    assert list(table["n held-out points"]) == ["10", "100", "1,000", "10,000"]
    for row, product in zip(table.to_dict("records"), evaluation.products, strict=True):
        assert row["Σ log q(xᵢ)"] == f"{product.log_sum:,.2f}"
        assert math.isclose(product.log_sum, -product.n * nll, rel_tol=0.2)
        for column, value in (("float32", product.product32), ("float64", product.product64)):
            shown = row[f"Π q(xᵢ) in {column}"]
            assert shown == ("0 (underflow)" if value == 0 else f"{value:.3e}")
    assert table["Π q(xᵢ) in float64"].iloc[-1] == "0 (underflow)"  # e^(−28,000) is no float
    assert table["Π q(xᵢ) in float32"].iloc[0] != "0 (underflow)"  # e^(−28) still is


def test_changing_the_target_moves_the_floor_and_says_so() -> None:
    at = theory({"model": "gaussian"})
    assert number(at, "H(p*)") == round(2.83188, 3)
    at.selectbox(key="theory.target").select("moons").run()
    run_until(at, lambda at: at.session_state["genviz"].config.target == "moons" and at.metric)
    assert not at.exception
    assert number(at, "H(p*)") == round(2.393879, 3)
    assert "H(p\\*) moved from 2.832 nats (8gaussians) to 2.394 (moons)" in at.success[0].value
    assert "KL = 0" in at.success[0].value


def test_a_family_not_trained_by_likelihood_says_so() -> None:
    at = theory({"model": "gan"})
    assert not at.exception
    assert "not trained by maximum likelihood" in at.info[0].value
    assert metric(at, "training mean log q · unavailable") == "—"


def test_the_explorer_and_the_theory_page_share_one_run() -> None:
    at = theory({"model": "gaussian"})
    at.selectbox(key="theory.target").select("banana").run()
    at.switch_page("pages/explorer.py").run()  # the sidebar follows the change made on the other page
    assert not at.exception
    assert at.selectbox(key="target").value == "banana" and at.selectbox(key="model").value == "gaussian"
    at.selectbox(key="model").select("gmm").run()
    at.switch_page("pages/theory.py").run()
    assert not at.exception
    assert (
        at.selectbox(key="theory.model").value == "gmm"
        and at.selectbox(key="theory.target").value == "banana"
    )
    assert at.session_state["genviz"].config.target == "banana"
