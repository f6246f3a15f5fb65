"""Probe: does contextual calibration (the frozen backbone's content-free correction) lift the
shipped generalist's zero-shot on the corpora it never saw?

    python benchmarks/results/search/generalist-contextual/probe.py   # from the repository root

Same texts and label words as ``benchmarks/shipped_generalist.py`` (``--limit 1000``, seed 42).
Arms: ``plain`` (today's call-time default: the shipped temperature, no content-free correction),
``contextual`` (``Predictor.generalist(..., calibrate=True)``), and, as a diagnosis for batch
labelling only, ``em-priors``: ``plain``'s probabilities re-weighted by the label priors that EM
estimates on the unlabelled test texts themselves (Saerens et al., 2002).
"""

from __future__ import annotations

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
LIMIT = 1000


def metrics(probs: np.ndarray, gold: list[int], labels: list[str]) -> dict[str, Any]:
    from emotune.calibration import calibration_metrics
    from emotune.metrics import classification_metrics

    m = classification_metrics(gold, probs.argmax(-1).tolist(), labels) | calibration_metrics(probs, gold)
    return {k: m[k] for k in sg.KEEP if k in m}


def em_priors(probs: np.ndarray, steps: int = 100) -> np.ndarray:
    """Posteriors under the test priors EM estimates from ``probs`` (trained priors taken as uniform:
    the generalist saw shuffled, balanced-by-corpus label lists, so it has no fixed prior here)."""
    k = probs.shape[1]
    prior = np.full(k, 1.0 / k)
    post = probs
    for _ in range(steps):
        w = probs * prior * k
        post = w / w.sum(-1, keepdims=True)
        prior = post.mean(0)
    return post


def corpus(name: str) -> dict[str, Any]:
    from emotune.inference.predict import Predictor

    data, examples = sg.test_subset(name, LIMIT)
    labels = [w[0] for w in data.labels.words(data.language)]
    gold = [int(e.label) for e in examples]
    texts = [e.text for e in examples]
    out: dict[str, Any] = {"corpus": name, "labels": labels, "n": len(examples)}
    for arm, calibrate in (("plain", None), ("contextual", True)):
        started = time.perf_counter()
        predictor = Predictor.generalist(labels, language=data.language, calibrate=calibrate)
        probs = np.array([[p.scores[n] for n in labels] for p in predictor.predict(texts)])
        out[arm] = metrics(probs, gold, labels) | {"seconds": round(time.perf_counter() - started, 1)}
        if arm == "plain":
            out["em-priors"] = metrics(em_priors(probs), gold, labels)
    return out


def main() -> None:
    for name in sg.CORPORA:
        path = OUT / f"{name}.json"
        if path.is_file():
            continue
        result = header("python benchmarks/results/search/generalist-contextual/probe.py") | corpus(name)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(name, {a: round(result[a]["macro_f1"] * 100, 2) for a in ("plain", "contextual", "em-priors")})


if __name__ == "__main__":
    main()
