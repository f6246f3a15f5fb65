"""The benchmark report: a table laid out like the paper's (its numbers beside ours) and a plot."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotune.storage import read_json, write_json, write_text

#: The metrics a benchmark cell keeps.
KEEP = (
    "n",
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "ua",
    "train_seconds",
    "train_examples_per_second",
    "best_dev_score",  # the corpus's headline metric on dev: what recipe choices are made on
    # Calibration at the run's temperature, before it, and selective prediction (emotune.calibration).
    "ece",
    "ece_floor",  # what a perfectly calibrated model shows on as many texts, and its 95th percentile
    "ece_floor_p95",
    "ece_before_temperature",
    "nll",
    "nll_before_temperature",
    "brier",
    "temperature",
    "accuracy_at_80_coverage",
    "corpora",  # a run over several corpora: each one's figures
)

# Peng et al. (ICASSP 2024), ChatGLM2-6B, single runs, text only; % by metric.
# Each row: (paper dataset, metrics, zero-shot, P-Tuning v2, LoRA, best cited specialised).
PAPER: dict[str, tuple[str, tuple[str, ...], str, str, str, str]] = {
    "sst2": ("SST-2", ("accuracy",), "82.33", "95.20", "95.69", "94.23"),
    "sst5": ("SST-5", ("accuracy", "macro_f1"), "30.09 / 25.82", "57.59 / 56.45", "54.45 / 52.51", "59.32 (acc)"),
    "friends": (
        "Friends (7)",
        ("accuracy", "macro_f1", "ua"),
        "63.79 / 29.48 / 26.03",
        "54.92 / 51.92 / 55.06",
        "72.83 / 52.97 / 51.93",
        "81.30 / 65.90",
    ),
    "mastodon": (
        "Mastodon (3)",
        ("accuracy", "macro_f1"),
        "55.43 / 55.45",
        "67.25 / 67.23",
        "67.08 / 66.81",
        "59.59 (F1)",
    ),
    "mosi2": ("MOSI-2", ("accuracy", "macro_f1"), "84.12 / 84.12", "84.60 / 84.04", "87.02 / 86.56", "85.20 (mm)"),
    "mosi3": ("MOSI-3", ("accuracy", "macro_f1"), "77.26 / 58.19", "81.78 / 61.03", "83.82 / 57.04", "80.79 (mm)"),
    "chnsenticorp": (
        "CH-SIMS (2) [stand-in: ChnSentiCorp]",
        ("accuracy", "macro_f1"),
        "77.58 / 75.95",
        "82.47 / 81.12",
        "82.73 / 81.25",
        "80.26 (mm)",
    ),
    "smp2020-ewect": (
        "M3ED (7) [stand-in: SMP2020-EWECT virus, 6]",
        ("accuracy", "weighted_f1", "ua"),
        "45.68 / 30.52 / 16.82",
        "45.75 / 37.31 / 28.64",
        "42.54 / 33.31 / 23.59",
        "49.42 (wF1)",
    ),
}
DEFAULT_METRICS = ("accuracy", "macro_f1")
ORDER = ("zero-shot", "ptuning-v2", "lora", "lora-balanced", "tfidf-lr", "minilm")  # the paper's order, then ours


def dataset_order(results: list[dict[str, Any]]) -> list[str]:
    """Datasets in the paper's row order; others after, by name."""
    rows = list(PAPER)
    names = set(r["dataset"] for r in results)
    return sorted(names, key=lambda d: (rows.index(d) if d in rows else len(rows), d))


def method_order(results: list[dict[str, Any]]) -> list[str]:
    """Methods in the paper's column order; methods it did not have come after, by name."""
    names = set(r["method"] for r in results)
    return sorted(names, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))


def cell_text(stats: dict[str, Any] | None, metrics: tuple[str, ...]) -> str:
    """``mean±std`` per metric in %, joined by " / "; "—" for a missing cell."""
    if not stats:
        return "—"
    parts = []
    for m in metrics:
        if m not in stats:
            parts.append("?")
            continue
        std = stats.get(m + "_std", 0.0)
        parts.append(f"{100 * stats[m]:.2f}" + (f"±{100 * std:.2f}" if stats["seeds"] > 1 else ""))
    return " / ".join(parts)


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per dataset, our methods then the paper's columns; plus a timing table."""
    summary = summarise(results)
    datasets = dataset_order(results)
    methods = method_order(results)
    head = ["dataset", "metrics", *methods, "paper ZS", "paper PT2", "paper LoRA", "paper specialised"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in datasets:
        name, metrics, *paper = PAPER.get(d, (d, DEFAULT_METRICS, "", "", "", ""))
        ours = [cell_text(summary.get((d, m)), metrics) for m in methods]
        lines.append("| " + " | ".join([name, " / ".join(metrics), *ours, *paper]) + " |")
    lines += ["", "Training time per cell (mean over seeds): seconds, examples/s; seeds run.", ""]
    lines += ["| dataset | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for d in datasets:
        row = []
        for m in methods:
            s = summary.get((d, m))
            if s is None:
                row.append("not run")
                continue
            secs, rate = s.get("train_seconds"), s.get("train_examples_per_second")
            untrained = secs is None or not rate  # zero-shot trains nothing
            row.append("— (no training)" if untrained else f"{secs:.0f} s, {rate:.1f} ex/s, n={s['seeds']}")
        lines.append(f"| {d} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_report(results: list[dict[str, Any]], out: Path, sources: str) -> None:
    """Writes ``table.md`` (headed by the matrices ``sources``), ``summary.json`` and (with
    matplotlib) ``bars.png`` into ``out``."""
    write_text(out / "table.md", f"Matrix: {sources}\n\n" + _split_note(results) + table(results))
    write_json(out / "summary.json", _summary_json(results))
    plot(results, out / "bars.png")


def scored_split(cell: dict[str, Any]) -> str:
    """The split a cell's metrics were scored on (its config's ``train.eval_split``; test by default)."""
    return str((cell.get("config") or {}).get("train", {}).get("eval_split", "test"))


def _split_note(results: list[dict[str, Any]]) -> str:
    """A line naming the split when cells were scored on dev (``train.eval_split``): the paper's
    columns are test figures, so a dev score beside them must say what it is."""
    splits = sorted({scored_split(r) for r in results})
    if splits == ["test"]:
        return ""
    return f"Scored on the {' and '.join(splits)} split (`train.eval_split`); the paper's columns are test figures.\n\n"


def report_is_current(results: list[dict[str, Any]], out: Path) -> bool:
    """Whether ``out``'s table and summary already describe exactly these cells.

    Cells copied in from another machine (a GPU run, a second lane) leave the report stale even
    when a re-run finds nothing to do; comparing contents rather than file times keeps a fresh
    clone, where every file is equally new, from rewriting a current report.
    """
    path = out / "summary.json"
    if not (out / "table.md").is_file() or not path.is_file():
        return False
    return bool(read_json(path) == json.loads(json.dumps(_summary_json(results))))


def _summary_json(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{d}/{m}": s for (d, m), s in summarise(results).items()}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Per dataset, one bar per method (macro-F1; weighted F1 where the paper reports it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    summary = summarise(results)
    datasets = dataset_order(results)
    methods = method_order(results)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(datasets)), 4))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        values = []
        for d in datasets:
            metric = "weighted_f1" if "weighted_f1" in PAPER.get(d, ("", ()))[1] else "macro_f1"
            values.append(100 * (summary.get((d, m)) or {}).get(metric, 0.0))
        ax.bar([i + j * width for i in range(len(datasets))], values, width, label=m)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(datasets))], datasets, rotation=20)
    ax.set_ylabel("macro-F1 (weighted F1 for M3ED stand-in), %")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_cells(out: Path) -> list[dict[str, Any]]:
    """Every finished cell's record under ``out/cells`` (torch-free, for the report scripts)."""
    return [read_json(p) for p in sorted((out / "cells").glob("*.json"))]


def in_percent(summary: dict[str, Any], metrics: Sequence[str]) -> dict[str, float]:
    """``metrics`` of a `summarise` entry (fractions) and their stds in %, to two decimals (the
    precision the views judge targets at); a metric the cells did not keep is left out."""
    out = {}
    for metric in metrics:
        if metric in summary:
            out[metric] = round(100 * summary[metric], 2)
            out[metric + "_std"] = round(100 * summary[metric + "_std"], 2)
    return out


def summarise(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Mean and standard deviation over seeds per (dataset, method)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    summary = {}
    for key, rows in groups.items():
        stats: dict[str, Any] = {"seeds": len(rows)}
        for metric in KEEP[1:]:
            values = [float(r[metric]) for r in rows if r.get(metric) is not None]
            if values:
                stats[metric] = statistics.mean(values)
                stats[metric + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[key] = stats
    return summary
