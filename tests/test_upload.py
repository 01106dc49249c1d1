"""Uploads through the Explorer's real uploader: read from memory whatever the file's name,
recognised by content rather than by name and size, and UTF-16 named as such; every bad file of
the command line's corpus is refused the same way from memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from apptest_helpers import press
from streamlit.testing.v1 import AppTest
from test_cli import BAD_FILES, GOOD_FILES

from genviz import pointsfile
from genviz.pointsfile import PointsError, parse_points, shown_name

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"model": "nsf", "p.transforms": "1", "p.hidden": "16,16"}


def csv_bytes(points: torch.Tensor) -> bytes:
    return ("x,y\n" + "\n".join(f"{a:.5f},{b:.5f}" for a, b in points.tolist())).encode()


def points(seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(300, 2, generator=torch.Generator().manual_seed(seed)) + shift


def explorer_on_data() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "explorer.py"), default_timeout=60)
    at.query_params = dict(SMALL)
    at.run()
    return at.selectbox(key="target").set_value("data").run()


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    return at.file_uploader(key="points_upload").set_value((name, content, "text/csv")).run()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def step_metric(at: AppTest) -> int:
    return int(next(m for m in at.metric if m.label == "Step").value.replace(",", ""))


def loaded(at: AppTest) -> torch.Tensor:
    return at.session_state["genviz"].points


def test_a_file_name_longer_than_the_filesystem_allows_is_read() -> None:
    at = explorer_on_data()
    name = "p" * 300 + ".csv"
    upload(at, name, csv_bytes(points(0)))
    assert not at.exception and not at.error
    assert "Model rebuilt" in texts(at.info)
    shown = texts(at.caption)
    assert shown_name(name) in shown and name not in shown  # shortened in the middle
    bad = upload(explorer_on_data(), "q" * 300 + ".csv", b"x,y\n1,2\n3,oops\n")
    assert not bad.exception and "line 3, column 2: 'oops' is not a number" in texts(bad.error)


def test_a_corrected_file_with_the_same_name_and_size_is_read() -> None:
    at = explorer_on_data()
    first, second = csv_bytes(points(0)), csv_bytes(points(0).flip(1))  # the same numbers, swapped
    assert len(first) == len(second) and first != second
    upload(at, "mine.csv", first)
    assert torch.allclose(loaded(at), points(0).double(), atol=1e-5)
    press(at, "step")
    assert step_metric(at) == 1
    upload(at, "mine.csv", second)
    assert not at.exception
    assert torch.allclose(loaded(at), points(0).flip(1).double(), atol=1e-5)
    assert "Model rebuilt: new data from mine.csv" in texts(at.info) and step_metric(at) == 0


def test_the_same_content_again_changes_nothing() -> None:
    at = explorer_on_data()
    upload(at, "mine.csv", csv_bytes(points(1)))
    press(at, "step")
    upload(at, "renamed.csv", csv_bytes(points(1)))  # a new upload of the same bytes
    assert not at.exception and step_metric(at) == 1  # no rebuild


def utf16(text: str, bom: bool) -> bytes:
    return text.encode("utf-16") if bom else text.encode("utf-16-le")


@pytest.mark.parametrize("bom", [True, False], ids=["with a byte-order mark", "without"])
def test_a_utf16_file_is_named_as_such(bom: bool, tmp_path: Path) -> None:
    content = utf16("x,y\n" + "".join(f"{i},{i % 7}\n" for i in range(60)), bom)
    at = upload(explorer_on_data(), "excel.csv", content)
    assert not at.exception
    message = texts(at.error)
    assert "excel.csv is UTF-16 text; save it as UTF-8 CSV" in message and "binary" not in message
    assert "Upload a CSV" in texts(at.info)  # nothing was loaded
    (tmp_path / "excel.csv").write_bytes(content)  # the command line says the same
    with pytest.raises(PointsError, match="is UTF-16 text"):
        pointsfile.read_points(tmp_path / "excel.csv")


def test_a_bad_upload_keeps_the_points_loaded_before() -> None:
    at = explorer_on_data()
    upload(at, "good.csv", csv_bytes(points(2)))
    upload(at, "good.csv", b"x,y\n1,2\nnan,3\n")
    assert "good.csv line 3, column 1: 'nan' is not a finite number" in texts(at.error)
    assert torch.allclose(loaded(at), points(2).double(), atol=1e-5)
    assert "good.csv: 300 points" in texts(at.caption)


@pytest.mark.parametrize("content, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_every_bad_file_is_refused_from_memory(content: bytes, message: str) -> None:
    with pytest.raises(PointsError) as refused:
        parse_points(content, "upload.csv")
    assert message in str(refused.value) and str(refused.value).startswith("upload.csv")


@pytest.mark.parametrize("text", GOOD_FILES.values(), ids=GOOD_FILES.keys())
def test_good_files_read_from_memory_as_from_disk(text: str, tmp_path: Path) -> None:
    (tmp_path / "points.csv").write_bytes(text.encode())
    from_disk = pointsfile.read_points(tmp_path / "points.csv")
    assert torch.equal(parse_points(text.encode(), "points.csv"), from_disk)


def test_too_many_bytes_in_memory_are_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pointsfile, "MAX_BYTES", 100)
    with pytest.raises(PointsError, match="the limit is 0 MB"):
        parse_points(b"1,2\n" * 30, "big.csv")


def test_shown_names_are_printable_and_short() -> None:
    assert shown_name("a\x00b\nc.csv") == "a?b?c.csv"
    assert len(shown_name("x" * 5000)) <= pointsfile.SHOWN_NAME
    assert shown_name("") == "the file"
