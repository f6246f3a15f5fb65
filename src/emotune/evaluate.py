"""Evaluation: predictions and metrics for a list of examples, written into a folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emotune.calibration import calibration_summary, multilabel_calibration, plot_reliability
from emotune.data.schema import Example
from emotune.errors import EmotuneError
from emotune.metrics import classification_metrics, multilabel_metrics, write_confusion
from emotune.models.multi import MultiRecogniser
from emotune.models.recogniser import Recogniser
from emotune.storage import make_dirs, write_json, write_text


class ReadOut(Protocol):
    """How predictions are read from a recogniser: the training objective's read-out
    (`emotune.training.objectives.Objective`), label scoring by default (`LabelScores`)."""

    @property
    def name(self) -> str:
        """The read-out's name, recorded in the metrics."""
        ...

    @property
    def multi_label(self) -> bool:
        """Whether it can score multi-label tasks."""
        ...

    def predict(
        self, rec: Recogniser, examples: Sequence[Example], batch_size: int
    ) -> tuple[list[int | None], list[dict[str, Any]]]:
        """Predicted label index (None = invalid output) and extra record fields per example."""
        ...


class LabelScores:
    """The label-scoring read-out: each text's most probable label and every label's probability."""

    name = "classify"
    multi_label = True

    def predict(
        self, rec: Recogniser, examples: Sequence[Example], batch_size: int
    ) -> tuple[list[int | None], list[dict[str, Any]]]:
        names = rec.labels.names
        probs = rec.probabilities(examples, batch_size)
        best: list[int] = probs.argmax(-1).tolist()
        extras = [
            {"label": names[k], "scores": {n: round(v, 6) for n, v in zip(names, row, strict=True)}}
            for k, row in zip(best, probs.tolist(), strict=True)
        ]
        return list(best), extras


@dataclass
class EvalResult:
    """Metrics plus one record per example (text, gold, predicted label, scores)."""

    metrics: dict[str, Any]
    records: list[dict[str, Any]]


def evaluate(
    rec: Recogniser, examples: Sequence[Example], objective: ReadOut | None = None, batch_size: int | None = None
) -> EvalResult:
    """Predicts every example with ``objective``'s read-out (label scoring by default) and computes metrics."""
    objective = objective or LabelScores()
    if any(ex.label is None for ex in examples):
        raise EmotuneError("evaluation needs labelled examples")
    if isinstance(rec, MultiRecogniser):
        return evaluate_corpora(rec, examples, objective, batch_size)
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
    if all("scores" in e for e in extras):  # label scoring gives probabilities; generation does not
        probs = np.array([[e["scores"][n] for n in names] for e in extras])
        metrics |= calibration_summary(probs, gold, rec.temperature, rec.class_scaling)
    return EvalResult(metrics, records)


#: The metrics averaged over corpora when one run trains on several.
MEAN_METRICS = ("accuracy", "macro_f1", "weighted_f1", "ua")


def evaluate_corpora(
    rec: MultiRecogniser, examples: Sequence[Example], objective: ReadOut, batch_size: int | None = None
) -> EvalResult:
    """Each corpus scored among its own labels, and the mean of their metrics (what dev
    selection of a multi-corpus run compares); ``corpora`` holds each corpus's own metrics."""
    per: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    for corpus, group in rec.local(examples).items():
        if not group:
            continue
        name = rec.tasks[corpus].name
        result = evaluate(rec.view(corpus), group, objective, batch_size)
        per[name] = result.metrics
        records.extend({"corpus": name, **r} for r in result.records)
    metrics: dict[str, Any] = {k: sum(m[k] for m in per.values()) / len(per) for k in MEAN_METRICS}
    metrics |= {"n": sum(int(m["n"]) for m in per.values()), "objective": objective.name, "corpora": per}
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
    metrics |= multilabel_calibration(probs.numpy(), gold, names)
    return EvalResult(metrics, records)


def write_result(result: EvalResult, folder: Path, extra: dict[str, Any] | None = None) -> None:
    """Writes ``metrics.json``, ``predictions.jsonl``, ``confusion.csv`` and ``confusion.png``."""
    make_dirs(folder)
    write_json(folder / "metrics.json", {**result.metrics, **(extra or {})})
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.records)
    write_text(folder / "predictions.jsonl", lines)
    write_confusion(result.metrics, folder)
    calibrated = result.metrics.get("calibration")
    if calibrated:
        before = result.metrics.get("calibration_before_temperature")
        plot_reliability(
            before["reliability"] if before else calibrated["reliability"],
            before and calibrated["reliability"],
            folder / "reliability.png",
        )
