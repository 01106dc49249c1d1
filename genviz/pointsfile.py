"""Reading a user's CSV of 2D points, with checks whose messages say what to fix.

The format: two comma-separated numbers per line, an optional header (a first
row of two non-numeric cells), blank lines ignored, UTF-8 text. Cells are read
with `float`, never evaluated. Numbers go into a flat array of doubles (16 bytes
a point) rather than a list of Python floats, so the largest file accepted costs
tens of megabytes, not hundreds. A file on disk is read with `read_points`; an
upload is read from memory with `parse_points`, its name only ever shown.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import torch

MAX_BYTES = 64 * 1024 * 1024  # checked before reading
MAX_POINTS = 1_000_000
MIN_POINTS = 50  # to train: fewer leaves a held-out split too small to say anything
MAX_ABS = 1e6  # larger coordinates lose too much precision in float32 training
BINARY_PROBE = 8192  # bytes scanned for NUL, the sign of a binary file
SHOWN_CHARS = 30  # characters of a bad cell quoted back to the user
SHOWN_NAME = 60  # characters of an uploaded file's name in a message


class PointsError(ValueError):
    """A points file that cannot be used; the message names the file and, where it can, the line."""


def read_points(path: Path, *, min_points: int = MIN_POINTS, need_spread: bool = True) -> torch.Tensor:
    """Read and validate a CSV of 2D points. Returns (n, 2) float64.

    `need_spread` rejects data with no spread in a coordinate, which no density can fit.
    """
    check_file(path)
    try:
        with path.open("rb") as handle:
            return _points(handle, str(path), min_points, need_spread)
    except OSError as error:
        raise PointsError(f"cannot read {path}: {error.strerror or error}") from None


def parse_points(
    raw: bytes, name: str, *, min_points: int = MIN_POINTS, need_spread: bool = True
) -> torch.Tensor:
    """`read_points` for a file's bytes in memory (an upload): `name` appears in messages only."""
    where = shown_name(name)
    if len(raw) > MAX_BYTES:
        raise PointsError(f"{where} is {len(raw) / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB")
    if not raw:
        raise PointsError(f"{where} is empty")
    _check_text(raw[:BINARY_PROBE], where)
    return _points(io.BytesIO(raw), where, min_points, need_spread)


def shown_name(name: str) -> str:
    """An uploaded file's name as a message shows it: printable, and shortened in the middle."""
    name = "".join(c if c.isprintable() else "?" for c in name) or "the file"
    if len(name) <= SHOWN_NAME:
        return name
    return name[: SHOWN_NAME - 16] + "…" + name[-15:]


def _points(handle: BinaryIO, where: str, min_points: int, need_spread: bool) -> torch.Tensor:
    values = array("d")
    header = _read_rows(_text_lines(handle, where), where, values)
    n = len(values) // 2
    if n == 0:
        raise PointsError(f"{where} has {'a header but ' if header else ''}no points")
    if n < min_points:
        raise PointsError(f"{where} has only {n} point{'s' * (n != 1)}; at least {min_points} are needed")
    points = torch.frombuffer(values, dtype=torch.float64).reshape(n, 2).clone()
    if need_spread:
        _check_spread(points, where)
    return points


def check_file(path: Path) -> None:
    """Existence, kind, size and a binary sniff, before any parsing."""
    try:
        if not path.exists():
            raise PointsError(f"no such file: {path}")
        if path.is_dir():
            raise PointsError(f"{path} is a directory, not a CSV file")
        if not path.is_file():
            raise PointsError(f"{path} is not a regular file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise PointsError(f"{path} is {size / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB")
        if size == 0:
            raise PointsError(f"{path} is empty")
        with path.open("rb") as handle:
            probe = handle.read(BINARY_PROBE)
    except OSError as error:
        raise PointsError(f"cannot read {path}: {error.strerror or error}") from None
    _check_text(probe, str(path))


def _check_text(probe: bytes, where: str) -> None:
    """The first bytes of a file: UTF-16 text and binary files are refused, saying which."""
    if _looks_utf16(probe):
        raise PointsError(f"{where} is UTF-16 text; save it as UTF-8 CSV (two numbers per line)")
    if b"\x00" in probe:
        raise PointsError(f"{where} looks like a binary file; expected CSV text with two numbers per line")


def _looks_utf16(probe: bytes) -> bool:
    """A UTF-16 byte-order mark, or ASCII with a NUL after (or before) every character."""
    if probe.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if len(probe) < 4:
        return False
    even, odd = probe[0::2], probe[1::2]
    return any(
        zeros.count(0) == len(zeros) and 0 not in text and text.isascii()
        for zeros, text in ((odd, even[: len(odd)]), (even, odd))
    )


def _text_lines(handle: BinaryIO, where: str) -> Iterator[str]:
    # Decoding line by line, rather than through a text wrapper, pins a bad byte to its line;
    # bytes.splitlines also breaks on a lone \r, the line ending of old Mac files.
    lines = (line for raw in handle for line in raw.splitlines(keepends=True))
    for number, raw in enumerate(lines, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PointsError(f"{where} line {number}: not UTF-8 text; save the file as UTF-8 CSV") from None
        yield text.removeprefix("\ufeff") if number == 1 else text  # a spreadsheet's byte-order mark


def _read_rows(lines: Iterable[str], where: str, values: array) -> bool:
    """Append each data row's two numbers to `values`; returns whether a header was seen."""
    rows = csv.reader(lines)
    seen_row = header = False
    line = 0  # the line the current row starts on (a quoted cell may span lines)
    try:
        for row in rows:
            line, previous = rows.line_num, line
            if all(not cell.strip() for cell in row):
                continue  # blank lines, and the "," a spreadsheet writes for an empty row
            if not seen_row and len(row) == 2 and _number(row[0]) is None and _number(row[1]) is None:
                seen_row = header = True
                continue
            seen_row = True
            if len(values) >= 2 * MAX_POINTS:
                raise PointsError(f"{where} has more than {MAX_POINTS:,} points, the limit")
            values.extend(_row_numbers(row, where, previous + 1))
    except csv.Error as error:
        raise PointsError(f"{where} line {line + 1}: {error}") from None
    return header


def _row_numbers(row: list[str], where: str, line: int) -> tuple[float, float]:
    """The row's (x, y): the fast path; messages are built only for a bad row."""
    try:
        x, y = map(float, row)
    except ValueError:
        raise PointsError(_row_problem(row, f"{where} line {line}")) from None
    if not (abs(x) <= MAX_ABS and abs(y) <= MAX_ABS):  # also false for NaN
        raise PointsError(_row_problem(row, f"{where} line {line}"))
    return x, y


def _row_problem(row: list[str], where: str) -> str:
    """What is wrong with a row that failed to parse."""
    if any("\n" in cell or "\r" in cell for cell in row):
        return f"{where}: a quoted value runs past the end of the line; is a closing quote missing?"
    if len(row) != 2:
        separator = next((s for s in ";\t|" if len(row) == 1 and s in row[0]), None)
        hint = f"; values must be separated by commas, not {separator!r}" if separator else ""
        return f"{where}: expected 2 comma-separated values (x, y), found {len(row)}{hint}"
    for column, text in enumerate(row, 1):
        value, shown = _number(text), _shown(text)
        if not text.strip():
            return f"{where}, column {column}: empty cell"
        if value is None:
            return f"{where}, column {column}: {shown} is not a number"
        if not math.isfinite(value):
            return f"{where}, column {column}: {shown} is not a finite number"
        if abs(value) > MAX_ABS:
            return f"{where}, column {column}: {shown} is too large; the limit is ±{MAX_ABS:,.0f}"
    raise AssertionError(f"no problem found in {row!r}")


def _shown(text: str) -> str:
    text = text.strip()
    return repr(text[:SHOWN_CHARS]) + ("…" if len(text) > SHOWN_CHARS else "")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _check_spread(points: torch.Tensor, where: str) -> None:
    # Checked in float32, the precision the models train in.
    single = points.float()
    flat = [name for name, column in zip("xy", single.T, strict=True) if column.min() == column.max()]
    if len(flat) == 2:
        raise PointsError(f"{where}: all points are identical; a density needs spread in both coordinates")
    if flat:
        value = float(single[0, "xy".index(flat[0])])
        raise PointsError(
            f"{where}: every point has {flat[0]} = {value:g}; a density needs spread in both coordinates"
        )
