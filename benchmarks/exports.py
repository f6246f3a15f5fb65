"""Every export format beside its run: export time and size, load time, CPU prediction speed, peak
memory, accuracy and agreement with the merged fp32 export, each row in a fresh process on the same
SST-2 test sentences.

    python benchmarks/exports.py --run runs/explain/sst2   # -> benchmarks/results/exports.json

Rows (batch 16):
- ``run``: the run directory through ``Predictor`` (backbone + adapter, the run's precision);
- ``merged``: ``emotune export --format merged`` through ``Predictor``, at the run's precision
  and in fp32;
- ``onnx`` and ``onnx int8``: ``emotune export --format onnx [--int8]`` through ``Predictor``, with
  torch, PEFT and Accelerate imports blocked (as where they are not installed);
- ``seq-cls``: ``emotune export --format seq-cls`` through plain transformers
  (``AutoModelForSequenceClassification``, each text's ids between the ``emotune`` block's prompt
  ids, sorted by length as emotune batches them), in fp32 (transformers' default on a CPU) and under
  bf16 autocast;
- ``seq-cls pipeline``: the same folder through ``pipeline("text-classification", top_k=None)``
  (its own batching, no length sorting; raw text in: the exported tokenizer wraps it), fp32.

Load time is ``Predictor.load`` or ``from_pretrained`` (model and tokenizer) after imports; peak
memory is the worker's peak resident set. Probabilities of every row are compared with the merged
export's fp32 ones (labels equal, largest absolute difference).
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

OUT = Path("benchmarks/results/exports.json")
WORK = Path("runs/exports")
#: row, export format (``run``: the run itself), precision, extra ``emotune export`` flags.
ROWS = (
    ("run", "run", "auto"),
    ("merged", "merged", "auto"),
    ("merged", "merged", "fp32"),
    ("onnx", "onnx", "fp32"),
    ("onnx int8", "onnx-int8", "fp32"),
    ("seq-cls", "seq-cls", "fp32"),
    ("seq-cls", "seq-cls", "bf16"),
    ("seq-cls pipeline", "seq-cls", "fp32"),
)
EXPORT_FLAGS = {"merged": ["--format", "merged"], "onnx": ["--format", "onnx"], "seq-cls": ["--format", "seq-cls"]}
EXPORT_FLAGS["onnx-int8"] = ["--format", "onnx", "--int8"]
BLOCKED = ("torch", "peft", "accelerate")


def peak_rss_mb() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not survive exec from
    a larger parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def test_split(run: Path, examples: int) -> dict[str, Any]:
    """The first ``examples`` test texts of the run's corpus and their gold label indices."""
    from emotune.config import RunConfig
    from emotune.data import load_data

    cfg = RunConfig.from_yaml(run / "config.yaml", saved=True)
    test = load_data(cfg.data, 42, {"test"}).split("test")[:examples]
    return {"texts": [e.text for e in test], "gold": [int(e.label) for e in test]}  # type: ignore[arg-type]


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


def worker(row: str, folder: Path, precision: str, texts: list[str], batch: int) -> dict[str, Any]:
    """One row, in this (fresh) process."""
    if row.startswith("seq-cls pipeline"):
        loaded, probs, seconds = pipeline_rows(folder, texts, batch)
    elif row.startswith("seq-cls"):
        loaded, probs, seconds = seq_cls_rows(folder, texts, batch, precision == "bf16")
    else:
        loaded, probs, seconds = predictor_rows(folder, texts, batch)
    return {
        "load_seconds": round(loaded, 2),
        "examples_per_second": round(len(texts) / seconds, 1),
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": sys.modules.get("torch") is not None,
        "probabilities": probs,
    }


def export(run: Path, fmt: str) -> dict[str, Any]:
    """Exports ``run`` as ``fmt`` afresh; its folder, the export's wall seconds and the folder's size."""
    folder = WORK / fmt
    started = time.perf_counter()
    cmd = ["emotune", "export", "--run", str(run), *EXPORT_FLAGS[fmt], "--output", str(folder), "--overwrite"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"folder": folder, "export_seconds": seconds, "folder_mb": round(size / 2**20, 1)}


def set_precision(folder: Path, precision: str) -> None:
    """Sets ``runtime.precision`` of an export's saved config (what ``Predictor`` runs it in)."""
    from emotune.config import RunConfig

    cfg = RunConfig.from_yaml(folder / "config.yaml", saved=True)
    cfg.runtime.precision = precision
    cfg.to_yaml(folder / "config.yaml")


def measure(row: str, folder: Path, precision: str, split: Path, batch: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        cmd = [sys.executable, __file__, "--worker", row, str(folder), precision, str(split), report.name]
        subprocess.run([*cmd, "--batch", str(batch)], check=True)
        return dict(json.loads(Path(report.name).read_text()))


def compared(probs: list[list[float]], reference: list[list[float]], gold: list[int]) -> dict[str, Any]:
    """Accuracy on the gold labels and agreement with the reference row."""

    def top(row: list[float]) -> int:
        return max(range(len(row)), key=row.__getitem__)

    pairs = list(zip(probs, reference, strict=True))
    gap = max(abs(x - y) for a, b in pairs for x, y in zip(a, b, strict=True))
    return {
        "accuracy": sum(top(p) == g for p, g in zip(probs, gold, strict=True)) / len(gold),
        "same_label": sum(top(a) == top(b) for a, b in pairs),
        "max_probability_difference": gap,
    }


def run_worker(argv: list[str], batch: int) -> None:
    row, folder, precision, split, report = argv
    if row.startswith("onnx"):  # before emotune is imported: the ONNX backend must not need them
        sys.modules.update(dict.fromkeys(BLOCKED))
    texts = json.loads(Path(split).read_text())["texts"]
    Path(report).write_text(json.dumps(worker(row, Path(folder), precision, texts, batch)))


def calibration_of(run: Path, seq_cls: Path) -> dict[str, Any]:
    """The run's calibration and the label bias its seq-cls export leaves to the consumer (a
    bias-free ``score`` layer cannot hold vector scaling's per-label bias; plain transformers,
    like the ``seq-cls`` rows, does not subtract it)."""
    from emotune.rundir import RunMeta

    bias = json.loads((seq_cls / "config.json").read_text())["emotune"]["label_bias"]
    return {"calibration": "vector" if RunMeta.load(run).class_scaling else "temperature", "seq_cls_label_bias": bias}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/explain/sst2", help="a trained LoRA run (SST-2)")
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker, args.batch)
    from emotune.bench.record import header

    run = Path(args.run)
    WORK.mkdir(parents=True, exist_ok=True)
    split = WORK / "test.json"
    split.write_text(json.dumps(test_split(run, args.examples)))
    exports = {fmt: export(run, fmt) for fmt in EXPORT_FLAGS} | {"run": {"folder": run}}
    rows = []
    for name, fmt, precision in ROWS:
        if fmt == "merged":
            set_precision(exports[fmt]["folder"], precision)
        info = {k: v for k, v in exports[fmt].items() if k != "folder"}
        measured = measure(name, exports[fmt]["folder"], precision, split, args.batch)
        rows.append({"row": name, "precision": precision} | info | measured)
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "probabilities"}), flush=True)
    reference = next(r for r in rows if r["row"] == "merged" and r["precision"] == "fp32")["probabilities"]
    gold = json.loads(split.read_text())["gold"]
    for r in rows:
        r |= compared(r.pop("probabilities"), reference, gold)
    result = header("python " + " ".join(sys.argv)) | {"run": str(run), "texts": args.examples, "batch": args.batch}
    result |= calibration_of(run, exports["seq-cls"]["folder"])
    OUT.write_text(json.dumps(result | {"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
