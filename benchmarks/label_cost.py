"""What a label set costs at call time: one text's prediction time and the process's peak memory
at 2, 7, 8, 28, 64 and 128 labels, on the frozen backbone and the shipped generalist. Each cell is
a fresh process (its peak RSS is its own).

128 is over the bound (`emotune.inference.call_time.MAX_LABELS`): the row records the refusal,
then lifts the bound inside that process to measure what the bound saves. Label sets whose
words share a first token are scored by whole words (``scoring: all``): the prompt runs once and
each multi-token word's later tokens are read from its key/value cache. Two label families: the
emotion words below (``words``: distinct first tokens up to 64, so one pass), and the same words
as phrases, "very joy", "very anger", ... (``phrases``: every label shares "very", so every label
is scored whole, the worst case). The ``copied`` rows score the phrases the older way, one whole
prompt per multi-token word, for comparison (on the frozen backbone: the adapter changes nothing
of that cost).

    python benchmarks/label_cost.py      # -> benchmarks/results/label-cost.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

OUT = Path("benchmarks/results/label-cost.json")
# GoEmotions' 28 names, then more emotion words: 64 distinct labels, many of several tokens.
WORDS = [
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
    "boredom",
    "contempt",
    "envy",
    "jealousy",
    "guilt",
    "shame",
    "hope",
    "trust",
    "anticipation",
    "awe",
    "calm",
    "contentment",
    "frustration",
    "loneliness",
    "nostalgia",
    "panic",
    "pity",
    "rage",
    "regret",
    "resentment",
    "satisfaction",
    "serenity",
    "shock",
    "sympathy",
    "tenderness",
    "terror",
    "triumph",
    "unease",
    "wonder",
    "worry",
    "yearning",
    "zeal",
    "anxiety",
    "bliss",
    "despair",
    "dread",
    "elation",
]
TEXT = "I can't believe they cancelled the show after that cliffhanger"
CELL = """
import json, sys, time
from emotune.bench.timing import peak_rss_mb
import emotune.inference.call_time as call_time
from emotune.inference.call_time import label_tokens
from emotune.methods.base import Method
from emotune.inference.predict import Predictor
n, model, labels = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])[: int(sys.argv[1])]
row = {"labels": n, "family": sys.argv[5]}
if model.endswith("copied"):
    Method.caches_prompts = False  # the older path: one copy of the prompt per multi-token word
if n > call_time.MAX_LABELS:
    try:
        Predictor.zero_shot(labels)
    except Exception as err:
        row["refused"] = str(err)
    call_time.MAX_LABELS = n
started = time.perf_counter()
p = Predictor.zero_shot(labels, frozen_backbone=model.startswith("frozen"))
load = time.perf_counter() - started
times = []
for _ in range(3):
    t = time.perf_counter()
    p.predict(sys.argv[4])
    times.append(time.perf_counter() - t)
rec = p.recogniser
row["scoring"] = label_tokens(rec.tokenizer, rec.labels, rec.prompt)
row["words_of_several_tokens"] = int(rec.head.long_index.numel()) if row["scoring"] == "all" else 0
peak = peak_rss_mb()
row |= {"load_seconds": round(load, 2), "predict_seconds": round(sorted(times)[1], 3), "peak_rss_mb": round(peak)}
print(json.dumps(row))
"""
CELLS = (  # (model, family, sizes argument)
    ("frozen", "words", "sizes"),
    ("generalist", "words", "sizes"),
    ("frozen", "phrases", "sizes"),
    ("generalist", "phrases", "sizes"),
    ("frozen copied", "phrases", "copied_sizes"),  # the older path costs the same on either model
)


def label_names(family: str) -> list[str]:
    """128 distinct names: the words, then the words again with a 1 (sharing their first token)."""
    names = [f"{w}{i // 64 or ''}" for i, w in enumerate(WORDS * 2)]
    return names if family == "words" else [f"very {n}" for n in names]


def main() -> None:
    from emotune.bench.record import header

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2,7,8,28,64,128")
    parser.add_argument("--copied-sizes", default="28,64,128", help="sizes also scored one prompt per word")
    args = parser.parse_args()
    rows = []
    for model, family, sizes in CELLS:
        for n in (int(x) for x in getattr(args, sizes).split(",")):
            done = subprocess.run(
                [sys.executable, "-c", CELL, str(n), model, json.dumps(label_names(family)), TEXT, family],
                capture_output=True,
                text=True,
                check=True,
            )
            row = {"model": model} | json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row))
            rows.append(row)
    result = header("python benchmarks/label_cost.py") | {
        "text": TEXT,
        "rows": rows,
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
