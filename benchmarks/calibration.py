"""Calibration before and after temperature scaling, and selective prediction, read from the
benchmark cells that recorded them (nothing is trained here):

    python benchmarks/calibration.py   # -> benchmarks/results/calibration.json

Sources: the held-out zero-shot cells (``benchmarks/results/generalist/held-out``), the transfer
cells at 256 examples (``benchmarks/results/generalist/transfer``), the
full-budget runs started from the generalist (``benchmarks/results/generalist/full``) and the
runs behind the explanation benchmark (``benchmarks/results/explain``, 500 examples). Accuracy
is the same before and after (a temperature never changes the top label), so one column holds it.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path("benchmarks/results")
SEVEN_LABELS = ("friends", "meld", "cped-m3ed7")


def _row(corpus: str, recipe: str, m: dict[str, Any], machine: str) -> dict[str, Any] | None:
    if m.get("ece") is None:
        return None
    return {
        "corpus": corpus,
        "recipe": recipe,
        "accuracy": m["accuracy"],
        "temperature": m.get("temperature") or 1.0,
        "ece_before": m.get("ece_before_temperature", m["ece"]),
        "ece": m["ece"],
        "accuracy_at_80_coverage": m.get("accuracy_at_80_coverage"),
        "machine": machine,
    }


def rows() -> list[dict[str, Any]]:
    found = []
    for path in sorted((RESULTS / "generalist" / "transfer" / "cells").glob("*.json")):
        c = json.loads(path.read_text())
        found.append(_row(c["dataset"], f"{c['method']} (seed {c['seed']})", c, c["machine"]))
    for path in sorted((RESULTS / "generalist" / "held-out").glob("*.json")):
        c = json.loads(path.read_text())
        base, scaled = c["base_zero_shot"], c.get("base_zero_shot_with_temperature")
        if scaled:  # zero-shot keeps its content-free calibration; a dev temperature is the option
            merged = scaled | {"ece_before_temperature": base["ece"]}
            found.append(_row(c["corpus"], "zero-shot, temperature on dev (option)", merged, c["header"]["machine"]))
        found.append(_row(c["corpus"], "zero-shot with the generalist", c["generalist"], c["header"]["machine"]))
    for path in sorted((RESULTS / "generalist" / "full").glob("*.json")):
        c = json.loads(path.read_text())
        found.append(
            _row(c["corpus"], "full training split, from the generalist", c["from_generalist"], c["header"]["machine"])
        )
    for path in sorted((RESULTS / "explain").glob("*.json")):
        c = json.loads(path.read_text())
        if "test_metrics" in c:
            found.append(_row(c["corpus"], "LoRA, 500 examples", c["test_metrics"], c["header"]["machine"]))
    return [r for r in found if r is not None]


def targets(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in table:
        if not r["recipe"].startswith("zero-shot"):  # the ECE target is on trained runs' temperature
            ece = {"value": round(100 * r["ece"], 2), "met": r["ece"] <= 0.03}
            out.append({"corpus": r["corpus"], "target": f"ECE <= 3% after temperature ({r['recipe']})", **ece})
        if r["corpus"] in SEVEN_LABELS and r["accuracy_at_80_coverage"] is not None:
            gain = r["accuracy_at_80_coverage"] - r["accuracy"]
            out.append(
                {
                    "corpus": r["corpus"],
                    "target": f"accuracy at 80% coverage >= full coverage + 5 ({r['recipe']})",
                    "value": round(100 * gain, 2),
                    "met": gain >= 0.05,
                }
            )
    return out


def main() -> None:
    table = rows()
    result = {
        "date": datetime.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "sources": "benchmarks/results/generalist/transfer/cells, benchmarks/results/generalist/full, "
        "benchmarks/results/explain",
        "rows": table,
        "targets": targets(table),
    }
    (RESULTS / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["targets"], indent=1))


if __name__ == "__main__":
    main()
