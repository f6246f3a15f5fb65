"""The ``curve`` view of a matrix: a learning curve over training budgets.

Method keys ``<family>-<budget>`` (``lora-256``, ``tfidf-lr-1000``) become one row per corpus and
budget with every family's test macro-F1 and accuracy (mean ± std over seeds), written to
``OUT/learning-curve.md`` and ``OUT/learning-curve.json`` with three targets for the default
family:

- macro-F1 >= each baseline on the same subsets;
- no label with >= 5% of the test examples at zero recall (in any seed);
- accuracy at most 2 points below ``old`` (the one-epoch recipe of earlier releases).

A row keeps only the seeds (the training subsets) the default family ran, so every family in it
is compared on the same subsets. A matrix asks for it with ``views: {curve: {}}``; the options
below change which families are the default, the old recipe, the baselines and the columns.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from emotune.bench.report import in_percent, read_cells, summarise
from emotune.metrics import unrecalled_labels
from emotune.storage import write_json, write_text

MIN_SHARE = 0.05  # labels this frequent in test must be recalled at least once
ACCURACY_SLACK = 2.0  # points of accuracy the default may give up against the old recipe

Groups = dict[tuple[str, str, int], list[dict[str, Any]]]
Table = dict[str, dict[int, dict[str, Any]]]


@dataclass(frozen=True)
class Curve:
    """Which method families the curve judges and shows.

    Attributes:
        default: The family the targets are for.
        old: The earlier recipe the default may not lose more than 2 accuracy points to.
        baselines: Families the default's macro-F1 must reach.
        columns: The families shown, in order (the default, old and baselines by default).
    """

    default: str = "lora"
    old: str = "lora-1epoch"
    baselines: tuple[str, ...] = ("tfidf-lr", "minilm")
    # ptuning-v2 ran at the paper's 32 virtual tokens; ptuning-v2-64 is the default since the dev probe.
    columns: tuple[str, ...] = ("lora", "lora-1epoch", "ptuning-v2", "ptuning-v2-64", "tfidf-lr", "minilm")

    def build(self, out: Path) -> Table:
        """{dataset: {budget: {family: stats, "checks": ...}}} from ``out``'s cells."""
        table: Table = defaultdict(dict)
        for (dataset, family, budget), cells in sorted(self.matched(load_cells(out)).items()):
            table[dataset].setdefault(budget, {})[family] = stats(cells)
        for rows in table.values():
            for row in rows.values():
                row["checks"] = self.verdict(row)
        return table

    def matched(self, groups: Groups) -> Groups:
        """Each row with only the seeds the default ran; a row without the default keeps all."""
        ours = {(d, b): {c["seed"] for c in cells} for (d, f, b), cells in groups.items() if f == self.default}
        kept = {}
        for (dataset, family, budget), cells in groups.items():
            seeds = ours.get((dataset, budget))
            chosen = [c for c in cells if seeds is None or c["seed"] in seeds]
            if chosen:
                kept[(dataset, family, budget)] = chosen
        return kept

    def verdict(self, row: dict[str, Any]) -> dict[str, Any]:
        """The targets for one corpus and budget (empty where the default has not run)."""
        ours = row.get(self.default)
        if ours is None:
            return {}
        checks: dict[str, Any] = {}
        for base in self.baselines:
            if base in row:
                checks[f"macro_f1>={base}"] = ours["macro_f1"] >= row[base]["macro_f1"]
        checks["silent_labels"] = ours["silent_labels"]
        if self.old in row:
            checks["accuracy_drop_vs_old"] = round(row[self.old]["accuracy"] - ours["accuracy"], 2)
            checks["accuracy_ok"] = checks["accuracy_drop_vs_old"] <= ACCURACY_SLACK
        return checks

    def markdown(self, table: Table, source: str) -> str:
        """The curve as a Markdown table, a targets column last."""
        lines = [
            f"Learning curve from `{source}` (test split, macro-F1 / accuracy %, mean ± std over seeds;",
            f"a row holds only the seeds, i.e. the training subsets, that `{self.default}` ran; a method that ran",
            "fewer of them says how many).",
            "",
            "| corpus | train examples | "
            + " | ".join(self.columns)
            + f" | targets for `{self.default}` (the default) |",
            "|---|---|" + "---|" * (len(self.columns) + 1),
        ]
        for dataset, rows in table.items():
            for budget, row in sorted(rows.items()):
                seeds = row[self.default]["seeds"] if self.default in row else 0
                cells = " | ".join(cell_text(row.get(m), seeds) for m in self.columns)
                lines.append(f"| {dataset} | {budget} | {cells} | {check_text(row['checks'])} |")
        return "\n".join(lines) + "\n"

    def write(self, out: Path, source: str) -> None:
        """Writes ``learning-curve.json`` and ``learning-curve.md`` into ``out``."""
        table = self.build(out)
        write_json(out / "learning-curve.json", {"source": source, "table": table})
        write_text(out / "learning-curve.md", self.markdown(table, source))


def load_cells(out: Path) -> Groups:
    """Cells grouped by (dataset, method family, budget); keys without a budget are left out."""
    groups: Groups = defaultdict(list)
    for cell in read_cells(out):
        family, _, budget = cell["method"].rpartition("-")
        if family and budget.isdigit():
            groups[(cell["dataset"], family, int(budget))].append(cell)
    return groups


def stats(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std (over seeds, %) of macro-F1 and accuracy, silent labels, training seconds."""
    (summary,) = summarise(cells).values()  # one corpus and method family: one summary
    return in_percent(summary, ("macro_f1", "accuracy")) | {
        "seeds": len(cells),
        "silent_labels": silent_labels(cells),
        "train_seconds": round(statistics.mean(c["train_seconds"] or 0 for c in cells), 1),
    }


def silent_labels(cells: list[dict[str, Any]]) -> list[str]:
    """Labels with >= MIN_SHARE of the test examples that some seed never predicted correctly."""
    silent: set[str] = set()
    for cell in cells:
        recall = cell.get("recall") or {}
        total = sum(r["support"] for r in recall.values())
        silent |= set(unrecalled_labels({n: r for n, r in recall.items() if r["support"] >= MIN_SHARE * total}))
    return sorted(silent)


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


def write(
    out: Path,
    source: str,
    default: str = "lora",
    old: str = "lora-1epoch",
    baselines: list[str] | None = None,
    columns: list[str] | None = None,
) -> None:
    """The view as a matrix's ``views: {curve: {...}}`` gives it: `Curve` with these options."""
    chosen = Curve(default=default, old=old)
    if baselines is not None:
        chosen = replace(chosen, baselines=tuple(baselines))
    if columns is not None:
        chosen = replace(chosen, columns=tuple(columns))
    chosen.write(out, source)
