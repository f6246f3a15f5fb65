"""The ``targets`` view of a matrix: each corpus of the paper against its best adapted number.

Writes ``OUT/targets.md`` and ``OUT/targets.json``: per dataset, the default (``lora``, mean ± std
over seeds) and P-Tuning v2 beside the paper's best adapted ChatGLM2-6B number, the best baseline
trained on the same split (TF-IDF+LR, MiniLM), the wall time per cell, and whether each target is
met, with the gap where it is not:

- the row's target metrics >= the paper's best adapted ChatGLM2-6B;
- ChnSentiCorp and SMP2020-EWECT (stand-ins the paper did not run): above the best baseline;
- every row: the headline metric >= TF-IDF+LR and >= MiniLM on the same split.

A dataset whose default cells have not run is listed as not run, never left out. A matrix asks
for it with ``views: {targets: {}}`` (``benchmarks/paper-full.yaml``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from emotune.bench.report import in_percent, read_cells, summarise
from emotune.storage import write_json, write_text

DEFAULT = "lora"
ADAPTED = (DEFAULT, "ptuning-v2", "zero-shot")
BASELINES = ("tfidf-lr", "minilm")

# The paper's best adapted ChatGLM2-6B number per target metric (%).
TARGETS: dict[str, dict[str, float]] = {
    "sst2": {"accuracy": 95.69},
    "sst5": {"accuracy": 57.59, "macro_f1": 56.45},
    "friends": {"macro_f1": 52.97, "ua": 55.06},
    "mastodon": {"macro_f1": 67.23},
    "mosi2": {"accuracy": 87.02},
    "mosi3": {"accuracy": 83.82, "macro_f1": 61.03},
    "chnsenticorp": {},
    "smp2020-ewect": {},
}
# The metric each row is ranked on against the baselines (the paper's headline for that corpus).
HEADLINE = {
    "sst2": "accuracy",
    "sst5": "macro_f1",
    "friends": "macro_f1",
    "mastodon": "macro_f1",
    "mosi2": "accuracy",
    "mosi3": "macro_f1",
    "chnsenticorp": "accuracy",
    "smp2020-ewect": "weighted_f1",
}
METRICS = ("accuracy", "macro_f1", "weighted_f1", "ua")

Table = dict[str, dict[str, Any]]


def load_rows(out: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{dataset: {method: stats in %}} from the cells, summarised over seeds as the harness does."""
    rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (dataset, method), summary in summarise(read_cells(out)).items():
        rows[dataset][method] = percent(summary)
    return rows


def percent(summary: dict[str, Any]) -> dict[str, Any]:
    """A harness summary (fractions) in % with two decimals, the precision the targets are judged at."""
    out: dict[str, Any] = {"seeds": summary["seeds"]} | in_percent(summary, METRICS)
    seconds = summary.get("train_seconds")
    out["train_seconds"] = round(seconds, 1) if seconds is not None else None  # zero-shot: 0 or None
    return out


def checks(dataset: str, row: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every target of one row: what, ours, the bar, met, gap (ours - bar, points)."""
    ours = row.get(DEFAULT)
    if ours is None:
        return []
    bars = [(f"{m} >= paper", m, value) for m, value in TARGETS[dataset].items()]
    headline = HEADLINE[dataset]
    bars += [(f"{headline} >= {b}", headline, row[b][headline]) for b in BASELINES if b in row]
    return [
        {"target": name, "ours": ours[m], "bar": bar, "met": ours[m] >= bar, "gap": round(ours[m] - bar, 2)}
        for name, m, bar in bars
    ]


def build(out: Path) -> Table:
    """{dataset: {"methods": {method: stats}, "checks": [...]}} for every dataset of the paper."""
    rows = load_rows(out)
    return {d: {"methods": rows.get(d, {}), "checks": checks(d, rows.get(d, {}))} for d in TARGETS}


def cell_text(stats: dict[str, Any] | None, metrics: list[str]) -> str:
    if stats is None:
        return "not run"
    parts = []
    for m in metrics:
        std = f"±{stats[m + '_std']:.2f}" if stats["seeds"] > 1 else ""
        parts.append(f"{stats[m]:.2f}{std}")
    seconds = stats["train_seconds"]
    return " / ".join(parts) + (f" ({seconds:.0f} s)" if seconds else "")


def verdict_text(row_checks: list[dict[str, Any]]) -> str:
    if not row_checks:
        return "not run"
    return "; ".join(f"{c['target']}: " + ("met" if c["met"] else f"**not met** ({c['gap']:+.2f})") for c in row_checks)


def markdown(table: Table, source: str) -> str:
    """The targets as a Markdown table, one row per dataset of the paper."""
    columns = (*ADAPTED, *BASELINES)
    lines = [
        f"Full-budget targets from `{source}` (test split, %; mean ± std over seeds; training wall",
        "time per cell in brackets). Paper = the best adapted ChatGLM2-6B number per target metric.",
        "",
        "| dataset | metrics | " + " | ".join(columns) + f" | paper | targets for `{DEFAULT}` (the default) |",
        "|---|---|" + "---|" * (len(columns) + 2),
    ]
    for dataset, entry in table.items():
        metrics = sorted({*TARGETS[dataset], HEADLINE[dataset]}, key=METRICS.index)
        paper = " / ".join(f"{TARGETS[dataset][m]:.2f}" if m in TARGETS[dataset] else "–" for m in metrics)
        cells = " | ".join(cell_text(entry["methods"].get(m), metrics) for m in columns)
        lines.append(f"| {dataset} | {' / '.join(metrics)} | {cells} | {paper} | {verdict_text(entry['checks'])} |")
    return "\n".join(lines) + "\n"


def write(out: Path, source: str) -> None:
    """Writes ``targets.json`` and ``targets.md`` into ``out``."""
    table = build(out)
    write_json(out / "targets.json", {"source": source, "table": table})
    write_text(out / "targets.md", markdown(table, source))
