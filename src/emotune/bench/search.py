"""The ``search`` view of a matrix: the table of a dev-only recipe search, every candidate's dev
scores per corpus and its mean change against a reference candidate, in ``OUT/search.md``.

A cell scored on dev (``train.eval_split: dev``) is read as it is; a cell scored on test is read
only through ``best_dev``, the dev metrics of the checkpoint it kept, so the table never shows a
test number. Where the cells kept each label's dev recall, a score also says how many dev examples
of the rarest label were recalled (``neutral 1/13``), summed over seeds. A matrix asks for it with
``views: {search: {reference: CANDIDATE}}`` (no reference: no change column).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from emotune.bench.report import read_cells, scored_split
from emotune.errors import EmotuneError
from emotune.storage import write_text

METRICS = ("macro_f1", "accuracy", "ua")
RAREST_NOTE = (
    "`label k/n`: of the n dev examples of the corpus's rarest dev label, k were recalled (summed over seeds)."
)


def load(out: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{candidate: {dataset: mean scores over its seeds}}, refusing cells scored on anything but dev.

    Each mean also carries ``seeds``, how many cells it averages, and ``rarest`` (see
    :func:`rarest_recalled`).
    """
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cell in read_cells(out):
        runs.setdefault(cell["method"], {}).setdefault(cell["dataset"], []).append(dev_scores(cell, out))
    return {
        name: {d: {m: statistics.mean(c[m] for c in cs) for m in METRICS} | summary(cs) for d, cs in per.items()}
        for name, per in runs.items()
    }


def summary(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """How many cells a mean averages, and how many dev examples of the rarest label they recalled."""
    return {"seeds": len(cells), "rarest": rarest_recalled(cells)}


def rarest_recalled(cells: list[dict[str, Any]]) -> tuple[str, int, int] | None:
    """(label, recalled, support) of the label with the fewest dev examples, summed over the
    cells; None when a cell kept no per-label dev recall (cells from before it was stored).

    A macro-F1 gain on a small dev split is often one or two sentences of a rare label; this
    says so in the table instead of needing an ``evaluate --split dev`` pass per run.
    """
    if not all(c.get("recall") for c in cells):
        return None
    recalls: list[dict[str, Any]] = [c["recall"] for c in cells]
    support = {label: sum(int(r[label]["support"]) for r in recalls) for label in recalls[0]}
    label = min(support, key=lambda name: (support[name], name))
    recalled = sum(round(r[label]["recall"] * r[label]["support"]) for r in recalls)
    return label, recalled, support[label]


def dev_scores(cell: dict[str, Any], out: Path) -> dict[str, Any]:
    """The cell's dev metrics: its own scores when it was scored on dev, else its ``best_dev``."""
    if scored_split(cell) == "dev":
        return cell
    if cell.get("best_dev"):
        return cell["best_dev"] | {"recall": cell.get("best_dev_recall")}
    where = f"{out}: {cell['method']} on {cell['dataset']} (seed {cell['seed']})"
    raise EmotuneError(f"{where} is scored on test and kept no dev metrics; a recipe search must not read test")


def markdown(table: dict[str, dict[str, dict[str, Any]]], reference: str | None, source: str) -> str:
    """The search table; without a reference (one that ran elsewhere) it has no change column."""
    datasets = sorted({d for cells in table.values() for d in cells})
    head = " | ".join(f"{d} mF1 / acc / UA" for d in datasets)
    change = f" mean Δ vs `{reference}` (mF1 / acc / UA) |" if reference else ""
    lines = [
        f"Dev-only recipe search from `{source}` (dev split, %; one seed unless a cell says how many it averages).",
        *([RAREST_NOTE] if any(c.get("rarest") for cells in table.values() for c in cells.values()) else []),
        "",
        f"| candidate | {head} |{change}",
        "|---|" + "---|" * (len(datasets) + (1 if reference else 0)),
    ]
    for name, cells in table.items():
        scores = [score_text(cells[d]) if d in cells else "–" for d in datasets]
        tail = f" {delta(cells, table.get(reference or ''))} |" if reference else ""
        lines.append(f"| {name} | {' | '.join(scores)} |{tail}")
    return "\n".join(lines) + "\n"


def score_text(cell: dict[str, Any]) -> str:
    """``mF1 / acc / UA`` in %, the rarest label's recall count where known, and the seed count
    when it is more than one."""
    text = " / ".join(f"{100 * cell[m]:.1f}" for m in METRICS)
    if cell.get("rarest"):
        text += " · {} {}/{}".format(*cell["rarest"])
    return text + (f" ({int(cell['seeds'])} seeds)" if cell["seeds"] > 1 else "")


def delta(cells: dict[str, dict[str, Any]], ref: dict[str, dict[str, Any]] | None) -> str:
    """Mean difference over the corpora both have."""
    shared = sorted(set(cells) & set(ref or {}))
    if not ref or not shared:
        return "–"
    return (
        " / ".join(f"{statistics.mean(100 * (cells[d][m] - ref[d][m]) for d in shared):+.1f}" for m in METRICS)
        + f" (n={len(shared)})"
    )


def write(out: Path, source: str, reference: str | None = None) -> None:
    """Writes ``search.md`` into ``out``."""
    write_text(out / "search.md", markdown(load(out), reference, source))
