"""Evaluation: predictions and metrics for a list of examples, written into a folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotune.data.schema import Example
from emotune.errors import EmotuneError
from emotune.metrics import classification_metrics, multilabel_metrics, write_confusion
from emotune.models.recogniser import Recogniser
from emotune.storage import write_json, write_text
from emotune.training.objectives import Classify, Objective


@dataclass
class EvalResult:
    """Metrics plus one record per example (text, gold, predicted label, scores)."""

    metrics: dict[str, Any]
    records: list[dict[str, Any]]


def evaluate(
    rec: Recogniser, examples: Sequence[Example], objective: Objective | None = None, batch_size: int | None = None
) -> EvalResult:
    """Predicts every example with ``objective``'s read-out (label scoring by default) and computes metrics."""
    objective = objective or Classify()
    if any(ex.label is None for ex in examples):
        raise EmotuneError("evaluation needs labelled examples")
    if rec.multi_label:
        if not objective.multi_label:
            raise EmotuneError(f"multi-label datasets are scored with objective 'classify', not '{objective.name}'")
        return evaluate_multilabel(rec, examples, batch_size)
    names = rec.labels.names
    gold = [int(ex.label) for ex in examples]  # type: ignore[arg-type]
    preds, extras = objective.predict(rec, examples, batch_size or rec.batch_size)
    records = [
        {"uid": ex.uid, "text": ex.text, "gold": names[g], **extra}
        for ex, g, extra in zip(examples, gold, extras, strict=True)
    ]
    metrics = classification_metrics(gold, preds, names)
    metrics["objective"] = objective.name
    return EvalResult(metrics, records)


def evaluate_multilabel(rec: Recogniser, examples: Sequence[Example], batch_size: int | None = None) -> EvalResult:
    """Per-label sigmoid scores, the labels at or above the recogniser's threshold, and metrics."""
    names = rec.labels.names
    probs = rec.probabilities(examples, batch_size)
    chosen = rec.decide(probs)
    gold = [ex.gold_set() for ex in examples]
    records = [
        {
            "uid": ex.uid,
            "text": ex.text,
            "gold": [names[k] for k in g],
            "labels": [names[k] for k in c],
            "scores": {n: round(v, 6) for n, v in zip(names, row, strict=True)},
        }
        for ex, g, c, row in zip(examples, gold, chosen, probs.tolist(), strict=True)
    ]
    metrics = multilabel_metrics(gold, chosen, names)
    metrics.update(objective="classify", threshold=rec.threshold)
    return EvalResult(metrics, records)


def write_result(result: EvalResult, folder: Path, extra: dict[str, Any] | None = None) -> None:
    """Writes ``metrics.json``, ``predictions.jsonl``, ``confusion.csv`` and ``confusion.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "metrics.json", {**result.metrics, **(extra or {})})
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.records)
    write_text(folder / "predictions.jsonl", lines)
    write_confusion(result.metrics, folder)
