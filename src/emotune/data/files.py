"""Reading corpus files with one-line errors that name the file and the problem."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotune.errors import EmotuneError


def require_dir(data_dir: str | None, dataset: str, files: str) -> Path:
    """The dataset folder, or a clear error saying which files it should hold."""
    if not data_dir:
        raise EmotuneError(f"dataset '{dataset}' needs data_dir (the folder with {files})", settings=("data_dir",))
    return Path(data_dir)


def numbered_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file's non-blank lines, numbered from 1 as an editor does.

    Raises:
        EmotuneError: If the file is missing.
    """
    if not path.is_file():
        raise EmotuneError(f"{path}: file not found")
    for lineno, line in enumerate(path.read_text(encoding=encoding).splitlines(), 1):
        if line.strip():
            yield lineno, line


def read_csv_rows(path: Path, columns: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a UTF-8 (optionally BOM-prefixed) CSV file that must have ``columns``."""
    if not path.is_file():
        raise EmotuneError(f"{path}: file not found")
    with path.open(encoding="utf-8-sig", newline="") as fh, decoded(path):
        rows = list(csv.DictReader(fh))
    if not rows:
        raise EmotuneError(f"{path}: no rows")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise EmotuneError(f"{path}: missing columns {missing} (has {list(rows[0])})")
    return rows


def iter_records(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, dict[str, Any]]]:
    """Streams ``(line number, row)`` from a ``.csv``, ``.tsv`` or ``.jsonl`` file.

    Reads the file handle itself (not split lines) so quoted CSV fields may hold newlines,
    and never holds the whole file in memory. UTF-8 files may start with a byte-order mark.

    Raises:
        EmotuneError: For a missing file, an unsupported type or a line that is not JSON.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl"):
        raise EmotuneError(f"{path}: unsupported file type '{suffix}' (use .csv, .tsv or .jsonl)")
    if not path.is_file():
        raise EmotuneError(f"{path}: file not found")
    with path.open(encoding=python_codec(encoding), newline="") as fh, decoded(path, encoding):
        if suffix == ".jsonl":
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    yield lineno, _json_line(line, path, lineno)
        else:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            for row in reader:
                yield reader.line_num, row


def python_codec(encoding: str) -> str:
    """UTF-8 is read as ``utf-8-sig``: a spreadsheet's byte-order mark is not part of the header."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


@contextmanager
def decoded(path: Path, encoding: str = "utf-8") -> Iterator[None]:
    """Turns a decoding error (a Latin-1 export from a spreadsheet, say) into one line naming the
    file, the byte where it stops being ``encoding``, and how to name the right one."""
    try:
        yield
    except UnicodeDecodeError:
        # The reader decodes in chunks, so its error's offset is within a chunk: decode the whole
        # file once more (only on this path) for the offset in the file.
        at = "a byte that is not"
        try:
            path.read_bytes().decode(python_codec(encoding))
        except UnicodeDecodeError as err:
            at = f"byte {err.start} is 0x{err.object[err.start]:02x}"
        raise EmotuneError(
            f"{path}: not {encoding} ({at}); re-save it as UTF-8 or set encoding (e.g. latin-1)",
            settings=("encoding",),
        ) from None


def _json_line(line: str, path: Path, lineno: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        raise EmotuneError(f"{path}:{lineno}: not valid JSON") from None
    if not isinstance(row, dict):
        raise EmotuneError(f"{path}:{lineno}: expected a JSON object")
    return row
