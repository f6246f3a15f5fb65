"""The sequence-classification export beside the merged export: load time, CPU prediction speed
and agreement with the run, each in a fresh process on the same SST-2 test sentences.

    python benchmarks/seq_cls_export.py --run runs/explain/sst2   # -> benchmarks/results/seq-cls-export.json

Rows (batch 16, sentences sorted by length as emotune batches them):
- ``run``: the run directory through ``Predictor`` (backbone + adapter, the run's precision);
- ``merged``: ``emotune export --format merged`` through ``Predictor``, at the run's precision
  and in fp32;
- ``seq-cls``: ``emotune export --format seq-cls`` through plain transformers
  (``AutoModelForSequenceClassification``, each text's ids between the ``emotune`` block's prompt ids),
  in fp32 (transformers' default on a CPU) and under bf16 autocast;
- ``seq-cls pipeline``: the same folder through ``pipeline("text-classification", top_k=None)``
  (its own batching, no length sorting; raw text in: the exported tokenizer wraps it), fp32.

Load time is ``Predictor.load`` or ``from_pretrained`` (model and tokenizer) after imports.
Probabilities of every row are compared with the merged export's fp32 ones (labels equal, largest
absolute difference).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OUT = Path("benchmarks/results/seq-cls-export.json")
WORK = Path("runs/seq-cls-export")
ROWS = (
    ("run", "run", "auto"),
    ("merged", "merged", "auto"),
    ("merged", "merged", "fp32"),
    ("seq-cls", "seq-cls", "fp32"),
    ("seq-cls", "seq-cls", "bf16"),
    ("seq-cls pipeline", "seq-cls", "fp32"),
)


def test_texts(run: Path, examples: int) -> list[str]:
    from emotune.config import RunConfig
    from emotune.data import load_data

    cfg = RunConfig.from_yaml(run / "config.yaml", saved=True)
    return [e.text for e in load_data(cfg.data, 42, {"test"}).split("test")[:examples]]


def predictor_rows(folder: Path, texts: list[str], batch: int) -> tuple[float, list[list[float]], float]:
    from emotune.inference.predict import Predictor

    started = time.perf_counter()
    predictor = Predictor.load(folder, batch_size=batch)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    preds = predictor.predict(texts)
    return loaded, [list(p.scores.values()) for p in preds], time.perf_counter() - started


def seq_cls_rows(folder: Path, texts: list[str], batch: int, bf16: bool) -> tuple[float, list[list[float]], float]:
    import contextlib

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    started = time.perf_counter()
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    loaded = time.perf_counter() - started
    block = model.config.emotune
    bos = [tokenizer.bos_token_id] if block["add_bos"] else []
    wrapped = [
        bos + block["prompt_head_ids"] + tokenizer(t, add_special_tokens=False).input_ids + block["prompt_tail_ids"]
        for t in texts
    ]
    order = sorted(range(len(texts)), key=lambda i: len(wrapped[i]))
    probs: list[list[float]] = [[] for _ in texts]
    cast = torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()
    started = time.perf_counter()
    with torch.no_grad(), cast:
        for at in range(0, len(order), batch):
            idx = order[at : at + batch]
            enc = tokenizer.pad({"input_ids": [wrapped[i] for i in idx]}, return_tensors="pt")
            for i, row in zip(idx, model(**enc).logits.float().softmax(-1).tolist(), strict=True):
                probs[i] = row
    return loaded, probs, time.perf_counter() - started


def pipeline_rows(folder: Path, texts: list[str], batch: int) -> tuple[float, list[list[float]], float]:
    from transformers import pipeline

    started = time.perf_counter()
    classify = pipeline("text-classification", model=str(folder), top_k=None)
    loaded = time.perf_counter() - started
    names = list(classify.model.config.id2label.values())
    started = time.perf_counter()
    out = classify(texts, batch_size=batch)
    probs = [[{d["label"]: d["score"] for d in row}[n] for n in names] for row in out]
    return loaded, probs, time.perf_counter() - started


def worker(kind: str, folder: Path, precision: str, run: Path, examples: int, batch: int) -> dict[str, Any]:
    import torch

    texts = test_texts(run, examples)
    if kind in ("run", "merged"):
        loaded, probs, seconds = predictor_rows(folder, texts, batch)
    elif kind == "seq-cls":
        loaded, probs, seconds = seq_cls_rows(folder, texts, batch, precision == "bf16")
    else:
        loaded, probs, seconds = pipeline_rows(folder, texts, batch)
    return {
        "load_seconds": round(loaded, 2),
        "examples_per_second": round(len(texts) / seconds, 1),
        "threads": torch.get_num_threads(),
        "probabilities": probs,
    }


def set_precision(folder: Path, precision: str) -> None:
    """Sets ``runtime.precision`` of an export's saved config (what ``Predictor`` runs it in)."""
    from emotune.config import RunConfig

    cfg = RunConfig.from_yaml(folder / "config.yaml", saved=True)
    cfg.runtime.precision = precision
    cfg.to_yaml(folder / "config.yaml")


def export(run: Path, fmt: str) -> Path:
    folder = WORK / fmt
    if not (folder / "config.json").is_file():
        cmd = ["emotune", "export", "--run", str(run), "--format", fmt, "--output", str(folder), "--overwrite"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return folder


def measure(args: argparse.Namespace, kind: str, folder: Path, precision: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        cmd = [sys.executable, __file__, "--worker", kind, str(folder), precision, report.name]
        cmd += ["--run", args.run, "--examples", str(args.examples), "--batch", str(args.batch)]
        subprocess.run(cmd, check=True)
        return dict(json.loads(Path(report.name).read_text()))


def agreement(probs: list[list[float]], reference: list[list[float]]) -> dict[str, Any]:
    same = sum(
        max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
        for a, b in zip(probs, reference, strict=True)
    )
    gap = max(abs(x - y) for a, b in zip(probs, reference, strict=True) for x, y in zip(a, b, strict=True))
    return {"same_label": same, "max_probability_difference": gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/explain/sst2", help="a trained LoRA run (SST-2)")
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    run = Path(args.run)
    if args.worker:
        kind, folder, precision, report = args.worker
        result = worker(kind, Path(folder), precision, run, args.examples, args.batch)
        Path(report).write_text(json.dumps(result))
        return
    from emotune.bench.record import header

    folders = {"run": run, "merged": export(run, "merged"), "seq-cls": export(run, "seq-cls")}
    rows = []
    for name, fmt, precision in ROWS:
        if fmt == "merged":
            set_precision(folders["merged"], precision)
        rows.append({"row": name, "precision": precision} | measure(args, name, folders[fmt], precision))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "probabilities"}), flush=True)
    reference = next(r for r in rows if r["row"] == "merged" and r["precision"] == "fp32")["probabilities"]
    for r in rows:
        r |= agreement(r.pop("probabilities"), reference)
    result = header("python " + " ".join(sys.argv)) | {
        "run": str(run),
        "texts": args.examples,
        "batch": args.batch,
        "rows": rows,
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
