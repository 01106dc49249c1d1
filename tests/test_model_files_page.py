"""The Explorer's files, through the live engine and Streamlit's AppTest: a model exported from one
session (the download button's own data) continues in a fresh one through the real uploader; bad
files are refused there with one line and the session keeps its model; the downloads hold what
the page shows; the share link carries every setting."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from apptest_helpers import charts, press
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from genviz.bundle import MAX_FILE_BYTES, pack, unpack
from genviz.config import RunConfig
from genviz.engine import Scheduler
from genviz.limits import HostLimits
from genviz.rundir import export_run
from genviz.train import Trainer
from genviz.ui.state import DEFAULT, page_budget

ROOT = Path(__file__).resolve().parents[1]
GMM = {"model": "gmm", "p.components": "4", "target": "moons", "lr": "0.02"}
SMALL = {"model": "nsf", "p.transforms": "1", "p.hidden": "16,16"}


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], bytes]]:
    """The functions behind the page's download buttons, by file name, as Streamlit registers them."""
    registered: dict[str, Callable[[], bytes]] = {}
    register = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):  # noqa: ANN001
        registered[file_name] = data_callable
        return register(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return registered


def explorer(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/explorer.py"), default_timeout=60)
    at.query_params = dict(query)
    return at.run()


def step_metric(at: AppTest) -> int:
    return int(next(m for m in at.metric if m.label == "Step").value.replace(",", ""))


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def stepped(query: dict[str, str], steps: int) -> AppTest:
    at = explorer(query)
    for _ in range(steps):
        press(at, "step")
    at.run()  # the whole page (a click may rerun only the live part): the popover is drawn too
    assert step_metric(at) == steps and not at.exception
    return at


def upload(at: AppTest, data: bytes, name: str = "model.zip") -> AppTest:
    return at.file_uploader(key="import_model").set_value((name, data, "application/zip")).run()


def test_export_then_import_into_a_fresh_session_continues_the_model(downloads) -> None:
    source = stepped(GMM, 3)
    data = downloads["genviz-gmm-moons-model.zip"]()
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    exported = source.session_state["genviz"]

    fresh = explorer(SMALL)
    upload(fresh, data)
    assert not fresh.exception and not fresh.error
    state = fresh.session_state["genviz"]
    assert state.config == exported.config
    assert "Imported model.zip: gmm on moons at step 3" in texts(fresh.info)
    assert step_metric(fresh) == 3
    assert [e.step for e in state.snapshot.history] == [e.step for e in exported.snapshot.history]
    assert fresh.selectbox(key="model").value == "gmm"  # the controls follow the imported model
    assert fresh.selectbox(key="target").value == "moons"
    press(fresh, "step")  # training continues from the imported step
    assert step_metric(fresh) == 4
    assert not fresh.exception and state.config == exported.config


def version_two(data: bytes) -> bytes:
    files = unpack(data)
    manifest = json.loads(files["manifest.json"])
    files["manifest.json"] = json.dumps(manifest | {"version": 2}).encode()
    return pack(files)


def too_costly(data: bytes) -> bytes:
    files = unpack(data)
    record = json.loads(files["config.json"])
    record["config"] |= {
        "model": "nsf",
        "params": {"transforms": 16, "hidden": [512] * 8},
    }  # ~30 M parameters
    files["config.json"] = json.dumps(record).encode()
    return pack(files)


BAD_UPLOADS = {
    "junk": (lambda good: b"not a model at all", "not a zip archive"),
    "truncated": (lambda good: good[: len(good) // 3], "truncated"),
    "newer version": (version_two, "version 2 of the genviz run format"),
    "oversized": (lambda good: bytes(MAX_FILE_BYTES + 1), "a model file may hold 64 MB"),
    "over the host's budget": (too_costly, "GENVIZ_MAX_PARAMETERS"),
}


@pytest.fixture(scope="module")
def good_file() -> bytes:
    trainer = Trainer(RunConfig.from_query(GMM, base=DEFAULT))
    trainer.record()
    trainer.train(max_steps=2)
    return export_run(trainer)


@pytest.mark.parametrize("make, words", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_a_bad_file_in_the_uploader_is_refused_and_the_model_kept(good_file: bytes, make, words: str) -> None:
    at = stepped(SMALL, 2)
    config = at.session_state["genviz"].config
    upload(at, make(good_file), "bad.zip")
    assert not at.exception
    assert "Cannot import bad.zip" in texts(at.error) and words in texts(at.error)
    assert at.session_state["genviz"].config == config and step_metric(at) == 2
    press(at, "step")  # the model it had trains on
    assert step_metric(at) == 3


def test_downloads_hold_what_the_page_shows(downloads) -> None:
    at = stepped(SMALL, 2)
    state = at.session_state["genviz"]
    rows = list(csv.DictReader(io.StringIO(downloads["genviz-nsf-8gaussians-metrics.csv"]().decode())))
    assert [int(row["step"]) for row in rows] == [e.step for e in state.snapshot.history]
    assert {"step", "seconds", "loss", "lr", "nll", "nll_se", "kl", "kl_se", "nll_kind", "kl_kind"} <= set(
        rows[0]
    )
    assert rows[-1]["nll_kind"] == "exact" and float(rows[-1]["nll"]) == state.snapshot.history[-1].nll.value
    grid = np.load(io.BytesIO(downloads["genviz-nsf-8gaussians-density.npz"]()), allow_pickle=False)
    assert {"x", "y", "log_q", "log_p", "step"} <= set(grid.files)
    assert grid["log_q"].shape == grid["log_p"].shape == (len(grid["y"]), len(grid["x"]))
    assert np.array_equal(grid["log_q"], state.snapshot.density.log_q)
    html = downloads["genviz-nsf-8gaussians-nll.html"]().decode()
    assert "<html>" in html and 'src="https://cdn.plot.ly' not in html  # plotly.js is inside
    assert len(html) < 6_000_000
    configs = {chart.key: chart.config for chart in charts(at)}
    assert configs["nll"]["toImageButtonOptions"]["filename"] == "genviz-nll"  # the toolbar's PNG


def test_the_share_link_carries_every_setting() -> None:
    query = SMALL | {"target": "moons", "seed": "7", "steps": "900", "batch_size": "128", "n_test": "2000"}
    at = explorer(query | {"seconds": "40"})
    link = at.code[0].value
    settings = dict(parse_qsl(urlsplit(link).query))
    assert RunConfig.from_query(settings, base=DEFAULT) == at.session_state["genviz"].config
    assert settings["n_test"] == "2000" and settings["seconds"] == "40.0"
    assert "trained model itself is not in it" in texts(at.caption)
    assert "lives only in this session" in texts(at.caption)


# ------------------------------------------------------------------ the engine's commands


@pytest.fixture(scope="module")
def engine() -> Iterator[Scheduler]:
    scheduler = Scheduler(HostLimits(slots=1))
    yield scheduler
    scheduler.shutdown()


def test_the_engine_exports_and_restores_between_sessions(engine: Scheduler) -> None:
    config = RunConfig(model="gaussian", n_test=500, steps=50)
    first, second = engine.open(), engine.open()
    assert first.build(config) is None and second.build(config.with_changes(seed=3)) is None
    for _ in range(4):
        first.step()
    data, error = first.export()
    assert error is None and data is not None
    reply, error = second.restore(data)
    assert error is None and reply.payload == config and reply.step == 4
    assert second.snapshot.step == 4 and len(second.snapshot.history) == len(first.snapshot.history)
    reply, error = second.restore(b"junk")
    assert reply is None and "not a zip archive" in error
    second.step()
    assert second.snapshot.step == 5  # the restored model was kept
    first.close()
    second.close()


def test_an_imported_time_budget_that_is_spent_becomes_a_step_budget() -> None:
    timed = RunConfig(steps=None, seconds=30.0)
    assert page_budget(timed, 5000, 31.0) == timed.with_changes(steps=5000, seconds=None)
    assert page_budget(timed, 100, 12.0) == timed.with_changes(steps=DEFAULT.steps)  # time left: kept
    assert page_budget(RunConfig(steps=800), 200, 3.0) == RunConfig(steps=800)
