"""Re-scores a trained run on this machine and compares it with the run's own test scoring.

A run trained on one device (a GPU under bf16 autocast) is usually served on another (a CPU in
fp32). This runs ``emotune evaluate --run RUN --split test --output WORK`` here, then compares the
new predictions with the ``predictions.jsonl`` the run wrote when it was scored where it trained:
how many labels agree, and both sets of metrics. Writes ``OUT`` (JSON):

    python benchmarks/rescore_run.py --run RUN_DIR --work runs/rescore --out result.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from emotune.bench.record import machine

METRICS = ("accuracy", "macro_f1", "ua", "weighted_f1")


def labels(path: Path) -> list[Any]:
    """The predicted label of each line of a ``predictions.jsonl``."""
    return [json.loads(line)["label"] for line in path.read_text().splitlines() if line.strip()]


def scores(path: Path) -> dict[str, float]:
    """The headline metrics of a ``metrics.json``, in percent."""
    data = json.loads(path.read_text())
    return {m: round(100 * data[m], 2) for m in METRICS if m in data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained run directory (scored on test)")
    parser.add_argument("--work", type=Path, required=True, help="where the new scoring is written")
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    args = parser.parse_args()
    command = ["emotune", "evaluate", "--run", str(args.run), "--split", "test", "--output", str(args.work)]
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "emotune.cli", *command[1:]], check=True)
    seconds = time.monotonic() - started
    before, after = labels(args.run / "predictions.jsonl"), labels(args.work / "predictions.jsonl")
    if len(before) != len(after):
        sys.exit(f"{args.run}: {len(before)} predictions there, {len(after)} here; not the same split")
    result = {
        "command": " ".join(command),
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "trained_with": json.loads((args.run / "trained.json").read_text()).get("recipe"),
        "n": len(after),
        "labels_agreeing": sum(a == b for a, b in zip(before, after, strict=True)),
        "where_trained": scores(args.run / "metrics.json"),
        "here": scores(args.work / "metrics.json"),
        "seconds_here": round(seconds, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
