"""What a label set costs at call time: one text's prediction time and the process's peak memory
at 2, 7, 8, 28 and 64 labels (128 is over the bound and refused), on the frozen backbone and the
shipped generalist. Each cell is a fresh process (its peak RSS is its own).

    python benchmarks/label_cost.py      # -> benchmarks/results/label-cost.json
"""

from __future__ import annotations

import argparse
import datetime
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
import json, resource, sys, time
from emotune.inference.predict import Predictor
n, generalist = int(sys.argv[1]), sys.argv[2] == "generalist"
labels = json.loads(sys.argv[3])[:n]
started = time.perf_counter()
try:
    p = Predictor.zero_shot(labels, frozen_backbone=not generalist)
except Exception as err:
    print(json.dumps({"labels": n, "refused": str(err)}))
    raise SystemExit(0)
load = time.perf_counter() - started
times = []
for _ in range(3):
    t = time.perf_counter()
    p.predict(sys.argv[4])
    times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"labels": n, "load_seconds": round(load, 2), "predict_seconds": round(sorted(times)[1], 3),
                  "peak_rss_mb": round(peak)}))
"""


def main() -> None:
    from emotune.bench.harness import machine

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2,7,8,28,64,128")
    args = parser.parse_args()
    rows = []
    for model in ("frozen", "generalist"):
        for n in (int(x) for x in args.sizes.split(",")):
            labels = WORDS * 2 if n > len(WORDS) else WORDS
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CELL,
                    str(n),
                    model,
                    json.dumps([f"{w}{i // 64 or ''}" for i, w in enumerate(labels)]),
                    TEXT,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            row = {"model": model} | json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row))
            rows.append(row)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "commit": commit,
        "command": "python benchmarks/label_cost.py",
        "text": TEXT,
        "rows": rows,
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
