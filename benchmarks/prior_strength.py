"""Dev probe of ``--prior-correction train`` (logit adjustment) on trained runs, without retraining.

The adjustment only moves per-label offsets after training, so its effect can be read off runs
that already exist (any ``emotune bench --runs`` folder). Each run is scored on its dev split once
(``emotune evaluate --run R --split dev --max-samples N``, kept under ``--work`` and reused), then
its per-label probabilities are re-decided with offsets of ``-strength * log`` of the run's
training label frequencies (:func:`emotune.training.priors.frequency_offsets`, as ``emotune train``
applies them) for each strength. Writes ``prior-strength.json`` and ``prior-strength.md`` under
``--out``; ``--split test`` re-decides the test predictions each run wrote when it was scored
(``prior-strength-test.*``), for reading an option's effect after the choice was made on dev:

    python benchmarks/prior_strength.py --out benchmarks/results/search/prior-strength \\
        --work runs/prior-strength RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from emotune.bench.harness import machine
from emotune.config import RunConfig
from emotune.data import load_data, select_splits
from emotune.training.losses import gold_targets, label_counts
from emotune.training.priors import frequency_offsets, label_scores

METRICS = ("accuracy", "macro_f1", "ua")
#: Every metric a corpus may name as its headline (SMP2020-EWECT: weighted F1).
SCORED = (*METRICS, "weighted_f1")
SHOWN = (*METRICS, "headline")


def predictions(run: Path, work: Path, max_samples: int, split: str) -> Path:
    """The run's ``predictions.jsonl`` on ``split``: dev is evaluated once and kept under ``work``;
    test is the one the run wrote when it was scored (read only after a choice made on dev)."""
    if split == "test":
        if RunConfig.from_yaml(run / "config.yaml", saved=True).train.eval_split != "test":
            raise SystemExit(f"{run}: its predictions.jsonl is not on the test split")
        return run / "predictions.jsonl"
    out = work / run.name
    if not (out / "predictions.jsonl").is_file():
        command = [sys.executable, "-m", "emotune.cli", "evaluate", "--run", str(run), "--split", "dev"]
        command += ["--max-samples", str(max_samples), "--threads", "1", "--output", str(out)]
        subprocess.run(command, check=True)
    return out / "predictions.jsonl"


def train_counts(run: Path) -> tuple[list[str], np.ndarray, str]:
    """The run's label names, the label counts of the training examples it used (as ``emotune
    train`` counts them), and its headline metric."""
    cfg = RunConfig.from_yaml(run / "config.yaml", saved=True)
    dataset = load_data(cfg.data, cfg.train.seed, {"train"})
    selection = select_splits(dataset, cfg.data, cfg.train.seed, "train")
    k = len(dataset.labels.names)
    counts = label_counts(gold_targets(selection.train, k, multi_label=False), k).numpy()
    return list(dataset.labels.names), counts, dataset.headline_metric


def probe(run: Path, work: Path, max_samples: int, strengths: list[float], split: str) -> dict[str, Any]:
    """Metrics of one run on ``split`` at each strength (0 = no correction)."""
    names, counts, headline = train_counts(run)
    rows = [json.loads(line) for line in predictions(run, work, max_samples, split).read_text().splitlines()]
    gold = np.array([names.index(r["gold"]) for r in rows])
    log_probs = np.log(np.array([[r["scores"][n] for n in names] for r in rows]) + 1e-12)
    scores = {}
    for s in strengths:
        pred = (log_probs + frequency_offsets(counts, s)).argmax(1)
        scores[str(s)] = {m: round(100 * label_scores(gold, pred, len(names), m), 2) for m in SCORED}
        scores[str(s)]["headline"] = scores[str(s)][headline]
    corpus = run.name.split("__")[0]
    sizes = {"scored": len(rows), "train": int(counts.sum())}
    return {"run": run.name, "corpus": corpus, "headline": headline} | sizes | scores


def corpus_means(cells: list[dict[str, Any]], strengths: list[float]) -> dict[str, dict[str, dict[str, float]]]:
    """Per corpus and strength: mean change against strength 0 of accuracy, macro-F1, UA and the
    corpus's headline metric."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        grouped[cell["corpus"]].append(cell)
    means: dict[str, dict[str, dict[str, float]]] = {}
    for corpus, runs in sorted(grouped.items()):
        means[corpus] = {
            str(s): {m: round(float(np.mean([r[str(s)][m] - r["0.0"][m] for r in runs])), 2) for m in SHOWN}
            for s in strengths
        }
    return means


def markdown(report: dict[str, Any], strengths: list[float]) -> str:
    """The per-corpus table of mean dev changes, then every run."""
    head = "| corpus (runs) | " + " | ".join(f"strength {s}: Δacc / ΔmF1 / ΔUA / Δheadline" for s in strengths[1:])
    head += " |"
    lines = [f"Command: `{report['command']}`  ", f"Machine: {report['machine']}; {report['date']}", "", head]
    lines.append("|---" * len(strengths) + "|")
    counts: defaultdict[str, int] = defaultdict(int)
    for cell in report["runs"]:
        counts[cell["corpus"]] += 1
    for corpus, by_strength in report["corpus_means"].items():
        cells = [" / ".join(f"{by_strength[str(s)][m]:+.2f}" for m in SHOWN) for s in strengths[1:]]
        lines.append(f"| {corpus} ({counts[corpus]}) | " + " | ".join(cells) + " |")
    overall = report["mean_over_corpora"]
    cells = [" / ".join(f"{overall[str(s)][m]:+.2f}" for m in SHOWN) for s in strengths[1:]]
    lines += ["| mean over corpora | " + " | ".join(cells) + " |", ""]
    lines += ["| run | headline | train | scored | strength 0: acc / mF1 / UA |", "|---|---|---|---|---|"]
    for cell in report["runs"]:
        base = " / ".join(f"{cell['0.0'][m]:.2f}" for m in METRICS)
        lines.append(f"| {cell['run']} | {cell['headline']} | {cell['train']} | {cell['scored']} | {base} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/search/prior-strength"))
    parser.add_argument("--work", type=Path, default=Path("runs/prior-strength"))
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--strengths", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    args = parser.parse_args()
    strengths = [float(s) for s in args.strengths.split(",")]
    cells = [probe(run, args.work, args.max_samples, strengths, args.split) for run in args.runs]
    means = corpus_means(cells, strengths)
    overall = {
        str(s): {m: round(float(np.mean([c[str(s)][m] for c in means.values()])), 2) for m in SHOWN} for s in strengths
    }
    report = {
        "date": datetime.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        "runs": cells,
        "corpus_means": means,
        "mean_over_corpora": overall,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "prior-strength" if args.split == "dev" else "prior-strength-test"
    (args.out / f"{stem}.json").write_text(json.dumps(report | {"split": args.split}, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report, strengths))
    print(markdown(report, strengths))


if __name__ == "__main__":
    main()
