"""The emotion generalist shipped inside the package (``emotune/resources/generalist/``).

A LoRA adapter on the default backbone, trained by ``configs/generalist.yaml`` on corpora whose
terms allow redistributing derived weights, with one temperature fitted on the dev texts of its
own corpora (label-independent, so it also calibrates label sets given at call time). The folder
is a run directory: ``--run generalist`` (or a path to it) loads it wherever a run is taken, and
it is the default of ``emotune predict``, ``predict --labels``, ``serve`` and ``--init-from``.

``manifest.json`` lists every shipped file with its sha256; each load checks them, so a file
altered on disk is one line naming it, not silently different predictions.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

from emotune.errors import EmotuneError
from emotune.storage import read_json

#: What ``--run`` and ``--init-from`` take to mean the shipped generalist.
NAME = "generalist"
#: Its labels when none are given: Ekman's six emotions and neutral.
DEFAULT_LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
MANIFEST = "manifest.json"


def shipped_dir() -> Path:
    """Where the shipped generalist lies inside the installed package."""
    return Path(str(resources.files("emotune"))) / "resources" / NAME


def is_shipped(folder: Path | None = None) -> bool:
    """Whether the package holds a generalist (a manifest in `shipped_dir`)."""
    return ((folder or shipped_dir()) / MANIFEST).is_file()


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path | None = None) -> dict[str, Any]:
    """Checks every file the manifest lists against its sha256 and returns the manifest.

    Raises:
        EmotuneError: One line naming the missing or altered file (reinstall emotune).
    """
    folder = folder or shipped_dir()
    if not is_shipped(folder):
        raise EmotuneError(f"this emotune has no shipped generalist ({folder / MANIFEST} missing): reinstall emotune")
    manifest = read_json(folder / MANIFEST)
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise EmotuneError(f"shipped generalist: {name} is missing; reinstall emotune")
        if sha256(path) != digest:
            raise EmotuneError(f"shipped generalist: {name} does not match its manifest (sha256); reinstall emotune")
    return manifest


def resolve_run(run: str | Path | None) -> Path | None:
    """A run directory from what a user gave: ``generalist`` is the shipped one (checked)."""
    if run is None:
        return None
    if str(run) == NAME:
        verify()
        return shipped_dir()
    return Path(run)


def is_generalist(folder: Path | None) -> bool:
    """Whether ``folder`` is the shipped generalist's folder."""
    return folder is not None and folder.resolve() == shipped_dir().resolve()
