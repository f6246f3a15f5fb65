"""Probe: does the shipped generalist score dialogue utterances better with their earlier turns?

    python benchmarks/results/search/generalist-dialogue-context/probe.py [--split dev|test]

The generalist trained on texts without dialogue context (GoEmotions, XED, Poem Sentiment), and
its call-time default gives none; the frozen backbone's best zero-shot uses each dialogue
corpus's default two earlier turns. Arms, on the same seeded 1,000 texts (all where fewer) of
each corpus with dialogue context: ``none`` (today's default) and ``context`` (the two earlier
turns as "speaker: text" lines, what ``Predictor.predict(texts, contexts=...)`` takes). Label
words and temperature as in ``benchmarks/shipped_generalist.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, "benchmarks")
import shipped_generalist as sg
from emotune.bench.record import header

OUT = Path(__file__).parent
DIALOGUE = ("friends", "meld", "mastodon", "cped-m3ed7")
LIMIT = 1000


def examples(name: str, split: str) -> tuple[Any, list[Any]]:
    from emotune.config import DataConfig
    from emotune.data import load_data, subsample

    cfg = DataConfig(dataset=name, data_dir=str(sg.SHARED / sg.CORPORA[name]))
    data = load_data(cfg, 42, {split})
    return data, subsample(data.split(split), LIMIT, 42)


def corpus(name: str, split: str) -> dict[str, Any]:
    from emotune.inference.predict import Predictor

    data, chosen = examples(name, split)
    labels = [w[0] for w in data.labels.words(data.language)]
    gold = [int(e.label) for e in chosen]
    texts = [e.text for e in chosen]
    contexts = [[t.line for t in e.context[-data.context_turns :]] if data.context_turns else [] for e in chosen]
    predictor = Predictor.generalist(labels, language=data.language)
    out: dict[str, Any] = {"corpus": name, "split": split, "labels": labels, "n": len(chosen)}
    out["context_turns"] = data.context_turns
    out["with_context"] = sum(bool(c) for c in contexts)
    for arm, given in (("none", None), ("context", contexts)):
        started = time.perf_counter()
        preds = predictor.predict(texts, contexts=given)
        probs = np.array([[p.scores[n] for n in labels] for p in preds])
        out[arm] = metrics(probs, gold, labels) | {"seconds": round(time.perf_counter() - started, 1)}
    return out


def metrics(probs: np.ndarray, gold: list[int], labels: list[str]) -> dict[str, Any]:
    from emotune.calibration import calibration_metrics
    from emotune.metrics import classification_metrics

    m = classification_metrics(gold, probs.argmax(-1).tolist(), labels) | calibration_metrics(probs, gold)
    return {k: m[k] for k in sg.KEEP if k in m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    split = parser.parse_args().split
    command = f"python benchmarks/results/search/generalist-dialogue-context/probe.py --split {split}"
    for name in DIALOGUE:
        path = OUT / f"{name}.{split}.json"
        if path.is_file():
            continue
        result = header(command) | corpus(name, split)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(name, {a: round(result[a]["macro_f1"] * 100, 2) for a in ("none", "context")}, flush=True)


if __name__ == "__main__":
    main()
