"""The classifier page through Streamlit's AppTest: it trains both classifiers live through the
engine and shows their labelled scores, decision regions, samples and the judged point. AppTest
does not fire `run_every`, so a test that waits calls `run()` until the page shows what it waits for."""

from __future__ import annotations

from pathlib import Path

from apptest_helpers import chart_keys, press, run_until
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "classify.py"), default_timeout=60).run()


def scores(at: AppTest) -> list[tuple[str, str, str]]:
    """(label, value, note) of the score cards: generative, discriminative and Bayes-optimal, each
    accuracy then log-loss; the note holds ± one standard error."""
    return [(m.label, m.value, m.delta) for m in at.metric]


def trained(at: AppTest) -> bool:
    """Both classifiers show their accuracy."""
    shown = scores(at)
    return len(shown) == 6 and shown[0][1] != "—" and shown[2][1] != "—"


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_the_page_trains_both_classifiers_and_labels_their_scores() -> None:
    at = page()
    assert not at.exception
    before = scores(at)
    assert [label for label, _, _ in before] == ["accuracy", "log-loss"] * 3
    assert before[0][1] == "—" and before[4][1].endswith("%")  # the Bayes-optimal reference, at once
    assert "test points: **exact**" in texts(at.caption)
    assert chart_keys(at) == ["c.bayes_regions", "c.data"]
    at.sidebar.number_input(key="c.steps").set_value(30).run()
    press(at, "c.train")
    assert not at.exception and not at.error
    run_until(at, trained, timeout=90)
    shown = scores(at)
    assert float(shown[0][1].rstrip(" %")) > 90 and float(shown[1][1]) < 0.5
    assert texts(at.caption).count("test points: **exact**") == 3  # GMM densities are exact
    assert chart_keys(at)[:3] == ["c.generative_regions", "c.discriminative_regions", "c.bayes_regions"]
    run_until(at, lambda at: "c.class_samples" in chart_keys(at), timeout=90)
    assert "test points are less likely" in at.markdown[-1].value
    at.sidebar.number_input(key="c.probe_x").set_value(40.0).run()
    run_until(at, lambda at: "**0.0 %**" in at.markdown[-1].value, timeout=90)  # far from both moons
    assert not at.exception


def test_new_settings_free_the_old_classifiers_and_say_so() -> None:
    at = page()
    at.sidebar.number_input(key="c.steps").set_value(20).run()
    press(at, "c.train")
    state = at.session_state["genviz.classify"]
    handles = list(state.live.handles)
    assert len(handles) == 2
    at.sidebar.selectbox(key="c.target").select("pinwheel").run()
    assert not at.exception
    assert "New settings" in at.info[0].value
    assert state.live is None and all(h.slot is None for h in handles)  # freed at once
    assert scores(at)[4][1].endswith("%")  # the new target's Bayes-optimal accuracy
    press(at, "c.train")
    assert len(state.live.handles) == 5  # one density per arm
    press(at, "c.train")  # pause
    assert not state.live.running
    press(at, "c.reset")
    assert state.live is None and not at.exception
