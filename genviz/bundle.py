"""A bounded, pickle-free archive: the zip that carries a run, and the `.npz` and JSON inside it.

    data = pack({"config.json": b"...", "model.npz": b"..."})
    files = unpack(data, allowed={"config.json", "model.npz"})
    arrays = read_npz(files["model.npz"])

Every reader here takes bytes from a stranger (an upload, a file given to the command line) and
is bounded before it reads: the file's size, the number of entries (read from the archive's own
directory before Python builds one object per entry), each entry's declared size and their sum,
and every array's declared shape and type against the bytes that carry it. Arrays load with
`allow_pickle=False` and no object dtype, so no file can run code or ask for unbounded memory.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

MAX_FILE_BYTES = 64 * 2**20  # an archive's size: the app's upload cap (server.maxUploadSize)
MAX_UNPACKED_BYTES = 192 * 2**20  # what all entries of one archive may hold once unpacked
MAX_ENTRIES = 4096  # entries in one archive (an .npz holds one per array; Adam keeps three per tensor)
ARRAY_KINDS = "biuf"  # bool, signed and unsigned integers, floats: nothing that holds objects
_END_RECORD = b"PK\x05\x06"  # the zip's end-of-central-directory record
_END_RECORD_SIZE = 22
_MAX_COMMENT = 0xFFFF


class BundleError(ValueError):
    """Bytes that are not a readable archive; the message says what is wrong, in one line."""


# ------------------------------------------------------------------ writing


def pack(files: Mapping[str, bytes]) -> bytes:
    """A deflated zip of `files` (name -> contents), in the given order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """`np.savez` of plain arrays, in memory."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def json_bytes(data: Any) -> bytes:
    """JSON for a file of the format; non-finite floats (a diverged loss) are written as NaN/Infinity."""
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


# ------------------------------------------------------------------ reading


def unpack(
    data: bytes,
    allowed: Iterable[str] | None = None,
    what: str = "file",
    max_unpacked: int = MAX_UNPACKED_BYTES,
) -> dict[str, bytes]:
    """The entries of a zip archive, name -> bytes, refusing anything over the bounds.

    `allowed`: the only entry names accepted (None: any name, as for the arrays of an .npz)."""
    if len(data) > MAX_FILE_BYTES:
        raise BundleError(f"the {what} is {_mb(len(data))}; at most {_mb(MAX_FILE_BYTES)} is accepted")
    entries = _entry_count(data, what)
    if entries > MAX_ENTRIES:
        raise BundleError(f"the {what} lists {entries:,} entries; at most {MAX_ENTRIES} are accepted")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _read_entries(archive, set(allowed) if allowed is not None else None, what, max_unpacked)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
    ) as error:
        raise BundleError(f"the {what} is damaged or truncated ({error})") from None


def _entry_count(data: bytes, what: str) -> int:
    """The number of entries the archive's end record declares, read before zipfile lists them."""
    start = data.rfind(_END_RECORD, max(0, len(data) - _END_RECORD_SIZE - _MAX_COMMENT))
    if start < 0 or len(data) - start < _END_RECORD_SIZE:
        raise BundleError(f"the {what} is not a zip archive, or it is truncated")
    (entries,) = struct.unpack_from("<H", data, start + 10)
    return entries if entries != 0xFFFF else MAX_ENTRIES + 1  # the ZIP64 marker: more than we accept


def _read_entries(
    archive: zipfile.ZipFile, allowed: set[str] | None, what: str, max_unpacked: int
) -> dict[str, bytes]:
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise BundleError(f"the {what} holds an entry twice")
    if allowed is not None and (unknown := sorted(set(names) - allowed)):
        raise BundleError(f"the {what} holds unknown entries: {', '.join(unknown)[:200]}")
    declared = sum(info.file_size for info in infos)
    if declared > max_unpacked:
        raise BundleError(
            f"the {what} would unpack to {_mb(declared)}; at most {_mb(max_unpacked)} is accepted"
        )
    files = {}
    for info in infos:
        with archive.open(info) as entry:
            contents = entry.read(info.file_size + 1)  # never more than declared, whatever the stream holds
        if len(contents) != info.file_size:
            raise BundleError(f"the {what}'s entry {info.filename} is truncated")
        files[info.filename] = contents
    return files


def read_json(data: bytes, name: str) -> Any:
    """Parsed JSON of one entry, or a BundleError naming it."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{name} is not valid JSON ({error})") from None


def read_npz(data: bytes, name: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz held in memory: each entry's header is checked before its data is read."""
    entries = unpack(data, None, name)
    arrays = {}
    for entry, raw in entries.items():
        if not entry.endswith(".npy"):
            raise BundleError(f"{name} holds {entry}, which is not an array")
        arrays[entry[: -len(".npy")]] = _read_array(raw, f"{name}: {entry[:-4]}")
    return arrays


def _read_array(raw: bytes, what: str) -> np.ndarray:
    """One .npy: its declared dtype must be plain numbers and its shape must fit the bytes given."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = (
            np.lib.format.read_array_header_2_0 if version >= (2, 0) else np.lib.format.read_array_header_1_0
        )
        shape, _, dtype = read_header(stream)
    except (ValueError, SyntaxError, TypeError) as error:
        raise BundleError(f"{what} is not a readable array ({error})") from None
    if dtype.hasobject or dtype.kind not in ARRAY_KINDS:
        raise BundleError(f"{what} has dtype {dtype}; only plain numbers are accepted")
    size = math.prod(shape) * dtype.itemsize
    if size != len(raw) - stream.tell():
        raise BundleError(f"{what} declares shape {shape} of {dtype}, which does not match its data")
    stream.seek(0)
    try:
        return np.load(stream, allow_pickle=False)
    except ValueError as error:
        raise BundleError(f"{what} is not a readable array ({error})") from None


def check_keys(item: Any, keys: set[str], where: str, optional: Iterable[str] = ()) -> None:
    """`item` is a JSON object with exactly `keys` (those in `optional` may be left out)."""
    if not isinstance(item, dict):
        raise BundleError(f"{where} must be an object, got {type(item).__name__}")
    if missing := sorted(keys - set(optional) - set(item)):
        raise BundleError(f"{where} is missing {', '.join(missing)}")
    if unknown := sorted(set(item) - keys):
        raise BundleError(f"{where} has unknown key(s): {', '.join(map(str, unknown))[:200]}")


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB" if n < 10 * 2**20 else f"{n / 2**20:.0f} MB"
