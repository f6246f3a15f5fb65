"""A newcomer's first commands, timed: `emotune quickstart` from an empty cache, then the
start-up of `emotune --help`, `models`, `datasets` and one `emotune predict` from the run it left.

    python benchmarks/quickstart.py  ->  benchmarks/results/quickstart.json

Each command runs as its own process (as a user would type it); wall time and the peak RSS of
that process are recorded. The quickstart table is read from the run directories it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from emotune.bench.record import header, versions

METHODS = ("zero-shot", "lora", "ptuning-v2")


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Runs ``cmd``; wall seconds, peak RSS (MB) of that process, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    # ru_maxrss of children is the largest child so far; report it only when this one raised it.
    return {
        "command": " ".join(cmd),
        "seconds": round(seconds, 2),
        "peak_rss_mb": peak // 1024 if peak > before else None,
        "stdout": proc.stdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/quickstart.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="emotune-quickstart-"))
    env = dict(os.environ, EMOTUNE_CACHE=str(work / "cache"))  # empty: the first run converts the backbone
    quick = timed(["emotune", "quickstart", "--output", str(work / "runs")], env)
    table = {}
    for method in METHODS:
        metrics = json.loads((work / "runs" / method / "metrics.json").read_text())
        table[method] = {k: metrics[k] for k in ("accuracy", "macro_f1", "ua", "n", "train_seconds")}
    startup = {
        name: timed(["emotune", *argv], env)
        for name, argv in {
            "help": ["--help"],
            "models": ["models"],
            "datasets": ["datasets"],
            "predict_one_text": ["predict", "--run", str(work / "runs" / "lora"), "what a wonderful day"],
        }.items()
    }
    result = {
        # Whether it trained under bf16 autocast (AVX-512 with bf16) or in fp32 changes both its time
        # and its scores: the machine line names torch's CPU capability.
        **header("python benchmarks/quickstart.py"),
        "python": versions()["python"],
        "quickstart": {"seconds": quick["seconds"], "peak_rss_mb": quick["peak_rss_mb"], "empty_cache": True},
        # What the command prints, with the temporary folder written as the default runs/quickstart.
        "quickstart_output": quick["stdout"].strip().replace(str(work / "runs"), "runs/quickstart"),
        "quickstart_table": table,
        "startup_seconds": {name: r["seconds"] for name, r in startup.items()},
        "predict_one_text_output": startup["predict_one_text"]["stdout"].strip(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("quickstart", "quickstart_table", "startup_seconds")}, indent=2))


if __name__ == "__main__":
    main()
