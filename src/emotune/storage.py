"""Files on disk, written atomically and read with one-line errors.

Every writer goes through a temporary file or folder and a rename, so a process killed at any
moment leaves either the previous or the new version of a file, never half of one.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotune.errors import EmotuneError

_UMASK = os.umask(0)
os.umask(_UMASK)


def check_encoding(encoding: str) -> None:
    """Raises a one-line error for a text encoding Python does not know (a file's, a config's).

    Raises:
        EmotuneError: For an unknown encoding name.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise EmotuneError(f"encoding '{encoding}' is unknown (e.g. latin-1, cp1252)", settings=("encoding",)) from None


def make_dirs(folder: Path) -> Path:
    """Creates ``folder`` and its parents (an output location); returns it.

    Raises:
        EmotuneError: One line naming the folder when it cannot be created (a parent that is a
            file, no permission, a read-only or missing mount).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EmotuneError(f"{folder}: cannot create this folder ({err.strerror or err})") from None
    return folder


def write_text(path: Path, text: str) -> None:
    """Writes a text file atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; results are meant to be shared like any file
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Writes JSON atomically (indented, UTF-8)."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    """A JSON document, with the position of a syntax error.

    Raises:
        EmotuneError: For a missing file, invalid JSON or text that is not UTF-8.
    """
    if not path.is_file():
        raise EmotuneError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise EmotuneError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise EmotuneError(f"{path}: not UTF-8 text") from None


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yields a temporary folder that replaces ``target`` only if the block succeeds."""
    make_dirs(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp creates 0700; an export is meant to be shared like any folder
    try:
        yield tmp
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def quiet_hub_retries() -> Iterator[None]:
    """Within the block the Hugging Face Hub client logs errors only, then its level is restored.

    Offline, a download logs two lines per retry for half a minute before it gives up, and
    importing ``datasets`` resets the client's level to warnings, so a caller's setting does not
    hold; the one-line error raised after it says what failed.
    """
    hub = logging.getLogger("huggingface_hub")
    level = hub.level
    hub.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub.setLevel(level)


def read_yaml_mapping(path: Path, what: str = "config") -> dict[str, Any]:
    """The top-level mapping of a YAML file (an empty file: ``{}``), read with one-line errors.

    Args:
        path: The file.
        what: What the file is, for the message of a missing one (``config``, ``matrix``).

    Raises:
        EmotuneError: For a missing file, one that is not UTF-8 or not YAML, or a top level that
            is not a mapping.
    """
    import yaml

    if not path.is_file():
        raise EmotuneError(f"{path}: {what} file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise EmotuneError(f"{path}: not UTF-8 (byte {err.start} is 0x{err.object[err.start]:02x})") from None
    except yaml.YAMLError as err:
        raise EmotuneError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise EmotuneError(f"{path}: expected a mapping at the top level")
    return data
