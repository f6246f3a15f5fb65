"""The documentation's figures, drawn from the committed result files (matplotlib).

    python benchmarks/plots.py  ->  docs/assets/{learning-curve,distill-accuracy-vs-speed,confusion-CORPUS}.png

- learning curve: test macro-F1 against training examples per corpus, emotune's LoRA against
  TF-IDF + LR and MiniLM (``benchmarks/results/small-data/learning-curve.json``);
- accuracy against prediction speed: the four systems of the distillation benchmark
  (``benchmarks/results/distill/summary.json``);
- confusion matrices of real runs: the LoRA teacher of the distillation benchmark and its
  student on one corpus (its cell under ``benchmarks/results/distill/cells/``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path("benchmarks/results")
SYSTEMS = (("lora", "emotune LoRA", "o"), ("tfidf-lr", "TF-IDF + LR", "^"), ("minilm", "MiniLM", "s"))


def learning_curve(out: Path) -> None:
    table = json.loads((RESULTS / "small-data" / "learning-curve.json").read_text())["table"]
    fig, axes = plt.subplots(2, (len(table) + 1) // 2, figsize=(3.0 * ((len(table) + 1) // 2), 5.6), squeeze=False)
    for ax, (corpus, sizes) in zip(axes.flat, table.items(), strict=False):
        xs = sorted(int(s) for s in sizes)
        for key, label, marker in SYSTEMS:
            ys = [sizes[str(x)].get(key, {}).get("macro_f1") for x in xs]
            ax.plot(xs, ys, marker=marker, label=label)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_title(corpus, fontsize=9)
        ax.set_xlabel("training examples", fontsize=8)
        ax.set_ylabel("test macro-F1 (%)", fontsize=8)
    for ax in list(axes.flat)[len(table) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "learning-curve.png", dpi=100)


def distill_speed(out: Path, summary: dict[str, Any]) -> None:
    cells = summary["cells"]
    systems = (
        ("teacher", "teacher_onnx_int8", "LoRA teacher", "o"),
        ("student", "student_onnx_int8", "distilled MiniLM", "*"),
        ("gold_only", "student_onnx_int8", "MiniLM, gold only", "s"),
        ("tfidf_lr", "tfidf_lr", "TF-IDF + LR", "^"),
    )
    columns = (len(cells) + 1) // 2
    fig, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6.2), squeeze=False)
    for ax, cell in zip(axes.flat, cells, strict=False):
        metric = cell["headline_metric"]
        for key, speed, label, marker in systems:
            x, y = cell["examples_per_second"][speed], 100 * cell["scores"][key][metric]
            ax.scatter(x, y, marker=marker, s=60, label=label)
        ax.set_xscale("log")
        ax.set_title(cell["corpus"], fontsize=9)
        ax.set_xlabel("CPU examples/s", fontsize=8)
        ax.set_ylabel(f"test {metric} (%)", fontsize=8)
    for ax in list(axes.flat)[len(cells) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "distill-accuracy-vs-speed.png", dpi=100)


def confusion(out: Path, cell: dict[str, Any]) -> None:
    labels = cell["labels"]
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.6))
    for ax, (system, title) in zip(axes, (("teacher", "LoRA teacher"), ("student", "distilled MiniLM")), strict=True):
        matrix = cell["confusion"][system]
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color="black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(f"{cell['corpus']} test split, {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"confusion-{cell['corpus']}.png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/assets")
    parser.add_argument("--confusion", default="smp2020-ewect", help="corpus of the distillation cells to draw")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    learning_curve(out)
    distilled = RESULTS / "distill" / "summary.json"
    if distilled.is_file():
        summary = json.loads(distilled.read_text())
        distill_speed(out, summary)
        confusion(out, next(c for c in summary["cells"] if c["corpus"] == args.confusion))


if __name__ == "__main__":
    main()
