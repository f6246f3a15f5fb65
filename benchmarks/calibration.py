"""Calibration before and after temperature scaling, and selective prediction, read from the
benchmark cells that recorded them (nothing is trained here):

    python benchmarks/calibration.py   # -> benchmarks/results/calibration.json

With ``--runs RUN [RUN ...]``, the calibration step itself (`emotune.training.calibrate`: the
temperature, or vector scaling where a held-out half of dev prefers it) is re-run on trained run
directories' saved weights, as it runs after training, and both choices are scored on the run's
evaluation split (``-> benchmarks/results/calibration-vector.json``; the logits are cached under
``--cache``). Training is not redone: the step only reads the kept weights' dev logits. Each row
also gives the ECE a perfectly calibrated model shows with the same confidences on as many texts
(`emotune.calibration.ece_floor`: mean and 95th percentile), so a target can be read against its
own noise.

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


def selection_of(folder: Path) -> tuple[int, Any]:
    """The run's number of labels, and its dev and evaluation examples as its own data settings
    select them."""
    from emotune.config import RunConfig
    from emotune.data import load_data, select_splits
    from emotune.pipeline import trained_data

    cfg = RunConfig.from_yaml(folder / "config.yaml", saved=True)
    dataset = load_data(trained_data(cfg.data, folder), cfg.train.seed)
    return len(dataset.labels), select_splits(dataset, cfg.data, cfg.train.seed, cfg.train.eval_split)


def logits_of(folder: Path, chosen: Any, cache: Path) -> dict[str, Any]:
    """The run's dev and evaluation-split label logits and gold ids (cached)."""
    import numpy as np

    from emotune.inference.predict import Predictor

    path = cache / (folder.name + ".npz")
    if path.is_file():
        return dict(np.load(path))
    rec = Predictor.load(folder).recogniser
    out = {}
    for split, examples in (("dev", chosen.dev), ("eval", chosen.eval)):
        out[split] = rec.scores(examples).float().numpy()
        out[f"{split}_gold"] = np.array([int(e.label) for e in examples])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def rescored(folder: Path, cache: Path) -> dict[str, Any]:
    """One run: the temperature alone against the calibration step's choice, on its evaluation
    split. A run with fewer than `MIN_PER_CLASS` dev texts of a label keeps its temperature, so
    its own metrics.json gives both columns (no logits are computed)."""
    import numpy as np

    from emotune.calibration import MIN_PER_CLASS, calibrated, calibration_metrics, choose_scaling, ece_floor
    from emotune.metrics import classification_metrics

    meta = json.loads((folder / "metrics.json").read_text())
    k, chosen = selection_of(folder)
    counts = np.bincount([int(e.label) for e in chosen.dev], minlength=k)
    row = {"run": str(folder), "dataset": meta.get("dataset"), "dev_texts": len(chosen.dev)}
    row |= {"fewest_dev_texts_of_a_label": int(counts.min()), "eval_texts": len(chosen.eval)}
    if counts.min() < MIN_PER_CLASS:
        own = {m: meta[m] for m in ("ece", "nll", "accuracy", "macro_f1")} | ece_floor(saved_probabilities(folder))
        return row | {"chosen": "temperature", "compared": None, "temperature_alone": own, "calibration_step": own}
    z = logits_of(folder, chosen, cache)
    temperature, vector, record = choose_scaling(z["dev"], z["dev_gold"].tolist(), seed=42)
    gold = z["eval_gold"].tolist()
    names = [str(i) for i in range(z["eval"].shape[1])]

    def scored(logits: Any) -> dict[str, float]:
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        m = calibration_metrics(p, gold)
        f = classification_metrics(gold, p.argmax(-1).tolist(), names)
        return {"ece": m["ece"], "nll": m["nll"], "accuracy": f["accuracy"], "macro_f1": f["macro_f1"]} | ece_floor(p)

    return row | {
        "chosen": record["calibration"],
        "compared": record,
        "temperature_alone": scored(calibrated(z["eval"], temperature)),
        "calibration_step": scored(calibrated(z["eval"], temperature, vector)),
    }


def saved_probabilities(folder: Path) -> Any:
    """The run's calibrated probabilities on its evaluation split, as its predictions.jsonl holds them."""
    import numpy as np

    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    return np.array([list(r["scores"].values()) for r in rows])


def vector_rows(runs: list[Path], cache: Path) -> None:
    from emotune.bench.record import header, write_result

    table = []
    for folder in runs:
        table.append(rescored(folder, cache))
        r = table[-1]
        print(
            r["run"],
            r["chosen"],
            round(100 * r["temperature_alone"]["ece"], 2),
            round(100 * r["calibration_step"]["ece"], 2),
        )
    met = [
        {
            "run": r["run"],
            "ece": round(100 * r["calibration_step"]["ece"], 2),
            "met": r["calibration_step"]["ece"] <= 0.03,
            # The ECE a perfectly calibrated model shows on as many texts: the target's noise.
            "ece_floor": round(100 * r["calibration_step"]["ece_floor"], 2),
            "ece_floor_p95": round(100 * r["calibration_step"]["ece_floor_p95"], 2),
            "within_floor": r["calibration_step"]["ece"] <= r["calibration_step"]["ece_floor_p95"],
        }
        for r in table
    ]
    write_result(
        RESULTS / "calibration-vector.json", header("python " + " ".join(sys.argv)) | {"rows": table, "targets": met}
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", nargs="*", type=Path, help="trained run directories to re-run the calibration step on"
    )
    parser.add_argument("--cache", type=Path, default=Path("runs/calibration-logits"))
    args = parser.parse_args()
    if args.runs:
        vector_rows(args.runs, args.cache)
        return
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
