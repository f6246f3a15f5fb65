"""The table of a dev-only recipe search: every candidate's dev scores per corpus, and its mean
change against a reference candidate.

    python benchmarks/dev_search.py --out benchmarks/results/search/small-data-256 \
        --reference steps200-all-linear

Reads ``OUT/cells/*.json`` (cells whose ``train.eval_split`` is dev) and writes ``OUT/search.md``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from emotune.report import read_cells

METRICS = ("macro_f1", "accuracy", "ua")


def load(out: Path) -> dict[str, dict[str, dict[str, float]]]:
    """{candidate: {dataset: mean scores over its seeds}}, refusing cells scored on anything but dev.

    Each mean also carries ``seeds``, how many cells it averages.
    """
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cell in read_cells(out):
        if cell["config"]["train"].get("eval_split") != "dev":
            where = f"{out}: {cell['method']} on {cell['dataset']} (seed {cell['seed']})"
            raise SystemExit(f"{where} is not scored on dev; a recipe search must not read test")
        runs.setdefault(cell["method"], {}).setdefault(cell["dataset"], []).append(cell)
    return {
        name: {d: {m: statistics.mean(c[m] for c in cs) for m in METRICS} | {"seeds": len(cs)} for d, cs in per.items()}
        for name, per in runs.items()
    }


def markdown(table: dict[str, dict[str, dict[str, float]]], reference: str | None, source: str) -> str:
    datasets = sorted({d for cells in table.values() for d in cells})
    head = " | ".join(f"{d} mF1 / acc / UA" for d in datasets)
    lines = [
        f"Dev-only recipe search from `{source}` (dev split, %; one seed unless a cell says how many it averages).",
        "",
        f"| candidate | {head} | mean Δ vs `{reference}` (mF1 / acc / UA) |",
        "|---|" + "---|" * (len(datasets) + 1),
    ]
    for name, cells in table.items():
        scores = [score_text(cells[d]) if d in cells else "–" for d in datasets]
        lines.append(f"| {name} | {' | '.join(scores)} | {delta(cells, table.get(reference or ''))} |")
    return "\n".join(lines) + "\n"


def score_text(cell: dict[str, float]) -> str:
    """``mF1 / acc / UA`` in %, with the seed count when it is more than one."""
    text = " / ".join(f"{100 * cell[m]:.1f}" for m in METRICS)
    return text + (f" ({int(cell['seeds'])} seeds)" if cell["seeds"] > 1 else "")


def delta(cells: dict[str, dict[str, float]], ref: dict[str, dict[str, float]] | None) -> str:
    """Mean difference over the corpora both have."""
    shared = sorted(set(cells) & set(ref or {}))
    if not ref or not shared:
        return "–"
    return (
        " / ".join(f"{statistics.mean(100 * (cells[d][m] - ref[d][m]) for d in shared):+.1f}" for m in METRICS)
        + f" (n={len(shared)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/search/small-data-256")
    parser.add_argument("--reference", default="steps200-all-linear")
    args = parser.parse_args()
    out = Path(args.out)
    text = markdown(load(out), args.reference, str(out))
    (out / "search.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
