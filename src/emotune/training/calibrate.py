"""The calibration step after training: one function for a run on one corpus, a run on a mix of
several and a distilled student, so none of them can miss what another does.

In order: a multi-label run tunes its decision threshold on dev; a trained single-label run with
``train.prior_correction`` moves its label bias (`emotune.training.priors`); then one temperature
is fitted on dev by NLL (`emotune.calibration.fit_temperature`), which changes confidence, never
the predicted label; a run with a fixed label set may instead keep vector scaling, one scale and
bias per label, where it lowers the NLL of a held-out half of dev
(`emotune.calibration.choose_scaling`). What it sets lives on the recogniser (``threshold``,
``head.bias``, ``temperature``, ``class_scaling``); the run's writer stores it once, in ``run.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from emotune.calibration import MIN_PER_CLASS, choose_scaling, fit_temperature
from emotune.config import TrainConfig
from emotune.data import Example, Selection
from emotune.training.callbacks import tune_dev_threshold
from emotune.training.losses import gold_targets, label_counts
from emotune.training.priors import fit_offsets, frequency_offsets

log = logging.getLogger(__name__)

#: Dev logits and gold label ids of some examples: ``rec.scores`` for one corpus; a mix pools every
#: corpus's logits among its own labels (`emotune.pipeline.mixture`).
DevLogits = Callable[[Sequence[Example]], tuple[np.ndarray, list[int]]]


def calibrate(
    rec: Any,
    selection: Selection,
    settings: TrainConfig,
    metric: str,
    trained: bool,
    logits: DevLogits | None = None,
    per_class: bool = True,
) -> dict[str, Any]:
    """Tunes ``rec`` on ``selection.dev`` (and, for frequency priors, ``selection.train``).

    Args:
        rec: A recogniser or a distilled student (``scores``, ``temperature``, ``multi_label``).
        settings: ``train.temperature`` (None: fit a trained run only), ``prior_correction`` and
            ``prior_strength``.
        metric: The headline metric dev-fitted prior offsets maximise.
        trained: Whether training ran (a zero-shot run keeps its content-free calibration).
        logits: Dev logits and gold ids; by default ``rec.scores`` and each example's label.
        per_class: Whether vector scaling may be chosen (``train.vector_scaling`` decides too): a
            run whose label sets change (several corpora, labels at call time) keeps one temperature.

    Returns:
        What was fitted and compared, for the run's recipe (empty when nothing was).
    """
    if rec.multi_label:
        if settings.prior_correction != "none":
            log.warning("train.prior_correction ignored: a multi-label run tunes its threshold on dev instead")
        tune_dev_threshold(rec, selection.dev)
        return {}
    if trained and settings.prior_correction != "none":
        correct_priors(rec, selection, settings, metric)
    wanted = trained if settings.temperature is None else settings.temperature
    if not wanted or not selection.dev:
        return {}
    z, gold = (logits or own_logits(rec))(selection.dev)
    if not (per_class and settings.vector_scaling):
        rec.temperature = fit_temperature(z, gold)
        log.info("temperature fitted on dev: %.3f", rec.temperature)
        return {"calibration": "temperature"}
    rec.temperature, rec.class_scaling, record = choose_scaling(z, gold, seed=settings.seed)
    log.info("temperature fitted on dev: %.3f; kept: %s", rec.temperature, kept(record))
    return record


def kept(record: dict[str, Any]) -> str:
    """The calibration `choose_scaling` kept and why, as a line of the run's log."""
    if "held_out_nll_vector" not in record:
        needs = f"vector scaling needs {MIN_PER_CLASS} dev texts of every label"
        return f"the temperature ({needs}; the rarest has {record.get('fewest_dev_texts_of_a_label')})"
    t, v = record["held_out_nll_temperature"], record["held_out_nll_vector"]
    if record["calibration"] == "vector":
        return f"vector scaling (NLL on the held-out half of dev {v} against the temperature's {t})"
    return f"the temperature (NLL on the held-out half of dev {t} against vector scaling's {v})"


def own_logits(rec: Any) -> DevLogits:
    """``rec.scores`` on the examples, with their gold label ids."""

    def logits(examples: Sequence[Example]) -> tuple[np.ndarray, list[int]]:
        return rec.scores(examples).float().numpy(), [int(e.label) for e in examples]  # type: ignore[arg-type]

    return logits


def correct_priors(rec: Any, selection: Selection, settings: TrainConfig, metric: str) -> None:
    """Moves the label head's bias by per-label offsets (see `emotune.training.priors`): fitted on dev,
    or read off the training label frequencies."""
    k = len(rec.labels.names)
    if settings.prior_correction == "train":
        counts = label_counts(gold_targets(selection.train, k, multi_label=False), k).numpy()
        offsets = frequency_offsets(counts, settings.prior_strength)
        source = f"from the training label frequencies (strength {settings.prior_strength})"
    elif selection.dev:
        probs = rec.probabilities(selection.dev).numpy()
        gold = gold_targets(selection.dev, k, multi_label=False).tolist()
        offsets = fit_offsets(np.log(probs + 1e-12), gold, metric)
        source = f"fitted on dev ({metric})"
    else:
        log.warning("prior correction 'dev' skipped: this dataset has no dev split")
        return
    rec.head.bias.sub_(torch.tensor(offsets, dtype=rec.head.bias.dtype, device=rec.head.bias.device))
    log.info("prior correction %s: %s", source, [round(float(o), 2) for o in offsets])
