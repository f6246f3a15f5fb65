"""What every benchmark result file opens with: the date, the machine, the commit and the command
that wrote it, so a figure read from it can name where and how it was measured."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from emotune.models.precision import cpuinfo


def machine() -> str:
    """The hardware a cell ran on, e.g. "AMD EPYC, 2 cores, 2 torch threads, AVX2": its wall time
    means little without it, and one matrix may be filled on several machines. torch's CPU
    capability tells an AVX-512 machine, whose bf16 units ``runtime.precision: auto`` uses, from an
    AVX2 one that runs fp32: the same config then gives other scores as well as other times."""
    import torch

    lines = cpuinfo().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    where = f"{model or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    where += f", {torch.backends.cpu.get_cpu_capability()}"
    if torch.cuda.is_available():
        where += f", {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return where


def commit() -> str:
    """This checkout's short commit; on a device machine, which gets no .git, ``$EMOTUNE_COMMIT``."""
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    except OSError:
        return os.environ.get("EMOTUNE_COMMIT", "")
    return git.stdout.strip() or os.environ.get("EMOTUNE_COMMIT", "")


def versions(*packages: str) -> dict[str, str | None]:
    """Python's version and each installed package's (None where it is not installed): a speed or
    a score may change with torch or transformers as well as with the code."""
    import importlib.metadata as md

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return found


def header(command: str) -> dict[str, Any]:
    """The date, machine, commit and ``command`` of a result file."""
    today = datetime.date.today().isoformat()
    return {"date": today, "machine": machine(), "commit": commit(), "command": command}


def write_result(path: str | Path, result: dict[str, Any], indent: int = 1) -> None:
    """Writes a result file (UTF-8 JSON, one trailing newline), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=indent, ensure_ascii=False) + "\n")
