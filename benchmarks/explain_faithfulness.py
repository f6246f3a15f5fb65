"""Are emotune's explanations faithful? The erasure metrics of ERASER (DeYoung et al. 2020) and
ferret, for occlusion, integrated gradients and a random attribution, on 200 test texts each of
SST-2, Friends and SMP2020-EWECT (Chinese: one word per character).

    python benchmarks/explain_faithfulness.py   # -> benchmarks/results/explain/{CORPUS}.json, summary.json

Per corpus (resumable: a finished corpus is a cell file, its run a run directory):
1. a LoRA run of the default recipe on 500 training examples (no dialogue context);
2. for each of 200 seeded test texts of at most ``--max-words`` words (64: every SST-2 and Friends
   test text, the shorter 79% of SMP2020-EWECT's, whose longest run to 1,500 characters), the
   predicted label's word scores by each method;
3. comprehensiveness (the label's probability minus its probability without the top k% of the
   words) and sufficiency (minus its probability with only them), each averaged over k = 10, 20
   and 50% (AOPC), higher comprehensiveness and lower sufficiency meaning more faithful;
4. with ``--latency`` (on a quiet machine), the wall time of ``Predictor.explain`` (occlusion) of
   one SST-2 sentence after load (median of 20): ``latency.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from emotune.bench.record import header

OUT = Path("benchmarks/results/explain")
CORPORA = {
    "sst2": ("sst2", "../shared/datasets/sst"),
    "friends": ("friends", "../shared/datasets/friends"),
    "smp2020-ewect": ("smp2020-ewect", "../shared/datasets/smp2020_ewect"),
}
BINS = (0.1, 0.2, 0.5)
METHODS = ("occlusion", "ig", "random")


def train(name: str, folder: Path, examples: int) -> None:
    if (folder / "metrics.json").is_file():
        return
    dataset, data_dir = CORPORA[name]
    cmd = ["emotune", "train", "--dataset", dataset, "--data-dir", data_dir, "--max-train-samples", str(examples)]
    cmd += ["--context-turns", "0", "--max-dev-samples", "300", "--output", str(folder), "--overwrite"]
    cmd += ["--init-from", "none"]  # from scratch, as its runs were measured
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def keep(text: str, spans: list[tuple[int, int]], chosen: set[int], inside: bool) -> str:
    """The text with only the chosen words (``inside``) or without them; Chinese words join without spaces."""
    words = [text[a:b] for i, (a, b) in enumerate(spans) if (i in chosen) == inside]
    glue = "" if all(len(w) == 1 and not w.isascii() for w in words) else " "
    return glue.join(words) or "."


def erasure(predictor: Any, text: str, label: int, scores: list[float]) -> dict[str, float]:
    """Comprehensiveness and sufficiency at each bin, and their AOPC, for one text."""
    from emotune.data.schema import Example
    from emotune.inference.explain import word_spans

    spans = word_spans(text)
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    variants = [text]
    for share in BINS:
        top = set(order[: max(1, math.ceil(share * len(spans)))])
        variants += [keep(text, spans, top, inside=False), keep(text, spans, top, inside=True)]
    probs = predictor.recogniser.probabilities([Example(v) for v in variants])
    p = [float(row[label]) for row in probs]
    comp = [p[0] - p[1 + 2 * i] for i in range(len(BINS))]
    suff = [p[0] - p[2 + 2 * i] for i in range(len(BINS))]
    return {"comprehensiveness": statistics.mean(comp), "sufficiency": statistics.mean(suff)}


def corpus_cell(name: str, run: Path, texts: int, ig_steps: int, max_words: int) -> dict[str, Any]:
    from emotune.config import RunConfig
    from emotune.data import load_data, subsample
    from emotune.inference.explain import integrated_gradients, occlusion, word_spans
    from emotune.inference.predict import Predictor

    predictor = Predictor.load(run)
    rec = predictor.recogniser
    cfg = RunConfig.from_yaml(run / "config.yaml", saved=True)
    test = [e for e in load_data(cfg.data, 42, {"test"}).split("test") if len(word_spans(e.text)) <= max_words]
    examples = subsample(test, texts, 42)
    rng = random.Random(0)
    totals: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    seconds = {m: 0.0 for m in METHODS if m != "random"}
    words = []
    for ex in examples:
        started = time.perf_counter()
        occ = occlusion(rec, ex, None)
        seconds["occlusion"] += time.perf_counter() - started
        label = rec.labels.names.index(occ.label)
        words.append(len(occ.words))
        started = time.perf_counter()
        ig = integrated_gradients(rec, ex, label, steps=ig_steps)
        seconds["ig"] += time.perf_counter() - started
        scores = {
            "occlusion": [s for _, s in occ.words],
            "ig": [s for _, s in ig.words],
            "random": [rng.random() for _ in occ.words],
        }
        for method, values in scores.items():
            totals[method].append(erasure(predictor, ex.text, label, values))
    result: dict[str, Any] = {"corpus": name, "texts": len(examples), "run": str(run), "ig_steps": ig_steps}
    result["max_words"] = max_words
    for method, rows in totals.items():
        result[method] = {k: statistics.mean(r[k] for r in rows) for k in ("comprehensiveness", "sufficiency")}
    result["seconds_per_text"] = {m: s / len(examples) for m, s in seconds.items()}
    result["words_per_text"] = statistics.mean(words)
    metrics = json.loads((run / "metrics.json").read_text())
    keys = ("accuracy", "macro_f1", "ece", "ece_before_temperature", "temperature", "accuracy_at_80_coverage")
    result["test_metrics"] = {k: metrics.get(k) for k in keys}
    return result


def latency(run: Path) -> dict[str, Any]:
    """``Predictor.explain`` of one SST-2 test sentence after load: median of 20 (occlusion)."""
    from emotune.config import RunConfig
    from emotune.data import load_data, subsample
    from emotune.inference.predict import Predictor

    predictor = Predictor.load(run)
    cfg = RunConfig.from_yaml(run / "config.yaml", saved=True)
    texts = [e.text for e in subsample(load_data(cfg.data, 42, {"test"}).split("test"), 20, 7)]
    predictor.explain(texts[0])  # warm-up
    walls = []
    for text in texts:
        started = time.perf_counter()
        predictor.explain(text)
        walls.append(time.perf_counter() - started)
    words = statistics.mean(len(t.split()) for t in texts)
    return {
        "median_seconds": statistics.median(walls),
        "max_seconds": max(walls),
        "mean_words": words,
        "texts": len(walls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--train-examples", type=int, default=500)
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--max-words", type=int, default=64, help="sample test texts of at most this many words")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--latency", action="store_true", help="also time explain of one sentence (quiet machine)")
    args = parser.parse_args()
    command = "python " + " ".join(sys.argv)
    cells = {}
    for name in args.corpora.split(","):
        path = OUT / f"{name}.json"
        run = Path("runs/explain") / name
        if not path.is_file():
            train(name, run, args.train_examples)
            cell = corpus_cell(name, run, args.texts, args.ig_steps, args.max_words) | {"header": header(command)}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cell, indent=1) + "\n")
        cells[name] = json.loads(path.read_text())
    timing = OUT / "latency.json"
    if args.latency and not timing.is_file():  # a timing: run it on a quiet machine
        train("sst2", Path("runs/explain/sst2"), args.train_examples)
        timing.write_text(json.dumps(latency(Path("runs/explain/sst2")) | {"header": header(command)}, indent=1) + "\n")
    if timing.is_file():
        cells.setdefault("sst2", {})["explain_latency"] = json.loads(timing.read_text())
    targets = []
    for name, c in cells.items():
        if "occlusion" not in c:
            continue
        ratio = c["occlusion"]["comprehensiveness"] / max(c["random"]["comprehensiveness"], 1e-9)
        targets.append(
            {
                "corpus": name,
                "target": "occlusion comprehensiveness >= 2x random",
                "value": round(ratio, 2),
                "met": ratio >= 2,
            }
        )
        if "explain_latency" in c:
            t = c["explain_latency"]["median_seconds"]
            targets.append(
                {
                    "corpus": name,
                    "target": "explain of one sentence <= 2 s (occlusion, after load)",
                    "value": round(t, 3),
                    "met": t <= 2,
                }
            )
    (OUT / "summary.json").write_text(json.dumps({"cells": cells, "targets": targets}, indent=1) + "\n")
    print(json.dumps(targets, indent=1))


if __name__ == "__main__":
    main()
