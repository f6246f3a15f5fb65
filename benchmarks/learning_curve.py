"""The small-data learning curve (issue 16) from the cells of ``benchmarks/small-data.yaml``.

Reads ``OUT/cells/*.json`` (method keys ``<method>-<budget>``), writes ``OUT/learning-curve.md``
and ``OUT/learning-curve.json``: per corpus and budget, the test macro-F1 and accuracy of every
method (mean ± std over seeds), and the three targets for the default recipe (``lora``):

- macro-F1 >= TF-IDF+LR and >= MiniLM on the same subsets;
- no label with >= 5% of the test examples at zero recall (in any seed);
- accuracy at most 2 points below the one-epoch recipe of earlier releases (``lora-1epoch``).

Every method in a row is compared on the training subsets (seeds) the default ran.

    python benchmarks/learning_curve.py --out benchmarks/results/small-data
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from emotune.bench.report import read_cells
from emotune.metrics import unrecalled_labels

DEFAULT, OLD = "lora", "lora-1epoch"
BASELINES = ("tfidf-lr", "minilm")
# ptuning-v2 ran at the paper's 32 virtual tokens; ptuning-v2-64 is the default since the dev probe.
COLUMNS = (DEFAULT, OLD, "ptuning-v2", "ptuning-v2-64", *BASELINES)
MIN_SHARE = 0.05  # labels this frequent in test must be recalled at least once
ACCURACY_SLACK = 2.0  # points of accuracy the new default may give up against the old one


def load_cells(out: Path) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """Cells grouped by (dataset, method family, budget)."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for cell in read_cells(out):
        family, _, budget = cell["method"].rpartition("-")
        groups[(cell["dataset"], family, int(budget))].append(cell)
    return groups


def mean_std(cells: list[dict[str, Any]], metric: str) -> tuple[float, float]:
    values = [100 * c[metric] for c in cells]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def silent_labels(cells: list[dict[str, Any]]) -> list[str]:
    """Labels with >= MIN_SHARE of the test examples that some seed never predicted correctly."""
    silent: set[str] = set()
    for cell in cells:
        recall = cell.get("recall") or {}
        total = sum(r["support"] for r in recall.values())
        silent |= set(unrecalled_labels({n: r for n, r in recall.items() if r["support"] >= MIN_SHARE * total}))
    return sorted(silent)


def verdict(row: dict[str, Any]) -> dict[str, Any]:
    """The targets for one corpus and budget (None where a needed cell has not run yet)."""
    ours = row.get(DEFAULT)
    if ours is None:
        return {}
    checks: dict[str, Any] = {}
    for base in BASELINES:
        if base in row:
            checks[f"macro_f1>={base}"] = ours["macro_f1"] >= row[base]["macro_f1"]
    checks["silent_labels"] = ours["silent_labels"]
    if OLD in row:
        checks["accuracy_drop_vs_old"] = round(row[OLD]["accuracy"] - ours["accuracy"], 2)
        checks["accuracy_ok"] = checks["accuracy_drop_vs_old"] <= ACCURACY_SLACK
    return checks


def matched(
    groups: dict[tuple[str, str, int], list[dict[str, Any]]],
) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    """Each row keeps only the seeds (= training subsets) the default recipe ran, so every method
    in a row is compared on the same subsets; a row without the default keeps every seed."""
    ours = {(d, b): {c["seed"] for c in cells} for (d, f, b), cells in groups.items() if f == DEFAULT}
    kept = {}
    for (dataset, family, budget), cells in groups.items():
        seeds = ours.get((dataset, budget))
        chosen = [c for c in cells if seeds is None or c["seed"] in seeds]
        if chosen:
            kept[(dataset, family, budget)] = chosen
    return kept


def build(out: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """{dataset: {budget: {method: stats, "checks": ...}}}."""
    table: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for (dataset, family, budget), cells in sorted(matched(load_cells(out)).items()):
        f1, f1_std = mean_std(cells, "macro_f1")
        acc, acc_std = mean_std(cells, "accuracy")
        table[dataset].setdefault(budget, {})[family] = {
            "macro_f1": round(f1, 2),
            "macro_f1_std": round(f1_std, 2),
            "accuracy": round(acc, 2),
            "accuracy_std": round(acc_std, 2),
            "seeds": len(cells),
            "silent_labels": silent_labels(cells),
            "train_seconds": round(statistics.mean(c["train_seconds"] or 0 for c in cells), 1),
        }
    for rows in table.values():
        for row in rows.values():
            row["checks"] = verdict(row)
    return table


def cell_text(stats: dict[str, Any] | None, seeds: int) -> str:
    """``seeds`` is how many the default ran in this row; a method that ran fewer says so."""
    if stats is None:
        return "–"
    std = f"±{stats['macro_f1_std']:.1f}" if stats["seeds"] > 1 else ""
    fewer = f" ({stats['seeds']} seed{'s' if stats['seeds'] > 1 else ''})" if stats["seeds"] < seeds else ""
    return f"{stats['macro_f1']:.1f}{std} / {stats['accuracy']:.1f}{fewer}"


def check_text(checks: dict[str, Any]) -> str:
    if not checks:
        return "not run"
    parts = [("≥" if checks[k] else "<") + k.split(">=")[1] for k in checks if k.startswith("macro_f1>=")]
    if checks["silent_labels"]:
        parts.append("zero recall: " + ", ".join(checks["silent_labels"]))
    if "accuracy_ok" in checks:
        mark = "" if checks["accuracy_ok"] else " (**more than 2 below**)"
        parts.append(f"acc {-checks['accuracy_drop_vs_old']:+.1f} vs old{mark}")
    return "; ".join(parts)


def markdown(table: dict[str, dict[int, dict[str, Any]]], source: str) -> str:
    lines = [
        f"Learning curve from `{source}` (test split, macro-F1 / accuracy %, mean ± std over seeds;",
        "a row holds only the seeds, i.e. the training subsets, that `lora` ran; a method that ran",
        "fewer of them says how many).",
        "",
        "| corpus | train examples | " + " | ".join(COLUMNS) + " | targets for `lora` (the default) |",
        "|---|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for dataset, rows in table.items():
        for budget, row in sorted(rows.items()):
            seeds = row[DEFAULT]["seeds"] if DEFAULT in row else 0
            cells = " | ".join(cell_text(row.get(m), seeds) for m in COLUMNS)
            lines.append(f"| {dataset} | {budget} | {cells} | {check_text(row['checks'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/small-data")
    args = parser.parse_args()
    out = Path(args.out)
    table = build(out)
    source = "benchmarks/small-data.yaml"
    (out / "learning-curve.json").write_text(json.dumps({"source": source, "table": table}, indent=1) + "\n")
    (out / "learning-curve.md").write_text(markdown(table, source))
    print((out / "learning-curve.md").read_text())


if __name__ == "__main__":
    main()
