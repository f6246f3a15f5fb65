"""Evaluation: predictions and metrics for a split, written into a run directory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotune.config import RunConfig
from emotune.data.schema import Example
from emotune.errors import EmotuneError
from emotune.generative import greedy_labels
from emotune.metrics import classification_metrics, multilabel_metrics, write_confusion
from emotune.recogniser import Recogniser
from emotune.rundir import write_json, write_text


@dataclass
class EvalResult:
    """Metrics plus one record per example (text, gold, predicted label, scores)."""

    metrics: dict[str, Any]
    records: list[dict[str, Any]]


def evaluate(
    rec: Recogniser, examples: Sequence[Example], objective: str = "classify", batch_size: int = 16
) -> EvalResult:
    """Scores (``classify``) or greedy-decodes (``generate``) every example and computes metrics."""
    names = rec.labels.names
    if any(ex.label is None for ex in examples):
        raise EmotuneError("evaluation needs labelled examples")
    if rec.multi_label:
        if objective == "generate":
            raise EmotuneError("multi-label datasets are scored with objective 'classify', not 'generate'")
        return evaluate_multilabel(rec, examples, batch_size)
    gold = [int(ex.label) for ex in examples]  # type: ignore[arg-type]
    preds: list[int | None]
    records: list[dict[str, Any]] = [
        {"uid": ex.uid, "text": ex.text, "gold": names[g]} for ex, g in zip(examples, gold, strict=True)
    ]
    if objective == "generate":
        preds, texts = greedy_labels(rec, examples, batch_size)
        for record, p, t in zip(records, preds, texts, strict=True):
            record.update(label=None if p is None else names[p], generated=t)
    else:
        probs = rec.probabilities(examples, batch_size)
        best: list[int] = probs.argmax(-1).tolist()
        preds = list(best)
        for record, k, row in zip(records, best, probs.tolist(), strict=True):
            record.update(label=names[k], scores={n: round(v, 6) for n, v in zip(names, row, strict=True)})
    metrics = classification_metrics(gold, preds, names)
    metrics["objective"] = objective
    return EvalResult(metrics, records)


def evaluate_multilabel(rec: Recogniser, examples: Sequence[Example], batch_size: int = 16) -> EvalResult:
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


def evaluate_run(run: Path, cfg: RunConfig, output: str | None = None) -> dict[str, Any]:
    """Evaluates a trained run directory on ``cfg.train.eval_split``.

    Results go to ``output`` (default ``RUN/eval-SPLIT``), never over the run's own metrics.
    """
    from emotune.data import load_data, subsample
    from emotune.predict import Predictor

    dataset = load_data(cfg.data, cfg.train.seed)
    rec = Predictor.load(run).recogniser
    if rec.labels.names != dataset.labels.names:
        raise EmotuneError(
            f"the run's labels {list(rec.labels.names)} differ from the dataset's {list(dataset.labels.names)}"
        )
    examples = subsample(dataset.split(cfg.train.eval_split), cfg.data.max_eval_samples, cfg.train.seed)
    result = evaluate(rec, examples, cfg.train.objective)
    folder = Path(output) if output else run / f"eval-{cfg.train.eval_split}"
    extra = {
        "split": cfg.train.eval_split,
        "method": cfg.method.name,
        "model": cfg.model.name,
        "run": str(run),
    }
    write_result(result, folder, extra)
    return {**result.metrics, **extra}
