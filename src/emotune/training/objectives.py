"""Training objectives: how a batch becomes a loss, and how an evaluation reads predictions.

``classify`` (the default) scores the label words at the answer position, so an output is
always inside the label set. ``generate`` is the paper's objective: LM loss on the label text and
greedy decoding, whose unparseable outputs count as invalid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from emotune.config import OBJECTIVES, TrainConfig
from emotune.data.schema import Example
from emotune.errors import EmotuneError
from emotune.evaluate import LabelScores
from emotune.models.multi import segment_mask
from emotune.models.recogniser import Recogniser
from emotune.training.generative import greedy_labels, lm_loss
from emotune.training.losses import label_loss

#: Predicted label index per example (None = invalid output) and its extra record fields.
Predicted = tuple[list[int | None], list[dict[str, Any]]]


@dataclass(frozen=True)
class MicroBatch:
    """What one (micro-)batch gives an objective: token rows, gold label indices, class weights."""

    rows: Sequence[Sequence[int]]
    gold: torch.Tensor
    weight: torch.Tensor | None


class Objective:
    """A training objective and its matching evaluation read-out."""

    name: ClassVar[str]
    #: Whether it runs under ``accelerate launch`` with several processes.
    scales_out: ClassVar[bool] = True
    #: Whether it can score multi-label tasks (one sigmoid per label).
    multi_label: ClassVar[bool] = True

    def loss(self, rec: Recogniser, engine: nn.Module, batch: MicroBatch, settings: TrainConfig) -> torch.Tensor:
        """The loss of one (micro-)batch; ``engine`` is the possibly DDP-wrapped label scorer."""
        raise NotImplementedError

    def predict(self, rec: Recogniser, examples: Sequence[Example], batch_size: int) -> Predicted:
        """Predicted label index (None = invalid output) and extra record fields per example."""
        raise NotImplementedError


class Classify(Objective):
    """Cross-entropy (or focal) loss over the label scores."""

    name = "classify"

    def loss(self, rec: Recogniser, engine: nn.Module, batch: MicroBatch, settings: TrainConfig) -> torch.Tensor:
        tokens = rec.collate(batch.rows)
        with rec.autocast():
            logits = engine(tokens.input_ids, tokens.attention_mask, tokens.last_index).float()
        gold = batch.gold.to(logits.device)
        if rec.segments is not None:  # several corpora: each row among its own corpus's labels
            logits = logits.masked_fill(~segment_mask(rec.segments, gold), float("-inf"))
        weight = None if batch.weight is None else batch.weight.to(logits.device)
        return label_loss(logits, gold, weight, settings.loss, settings.focal_gamma, settings.label_smoothing)

    def predict(self, rec: Recogniser, examples: Sequence[Example], batch_size: int) -> Predicted:
        return LabelScores().predict(rec, examples, batch_size)


class Generate(Objective):
    """The paper's causal-LM loss on the label text; greedy decoding at evaluation."""

    name = "generate"
    scales_out = False
    multi_label = False

    def loss(self, rec: Recogniser, engine: nn.Module, batch: MicroBatch, settings: TrainConfig) -> torch.Tensor:
        return lm_loss(rec, batch.rows, batch.gold.tolist())

    def predict(self, rec: Recogniser, examples: Sequence[Example], batch_size: int) -> Predicted:
        names = rec.labels.names
        preds, texts = greedy_labels(rec, examples, batch_size)
        extras = [{"label": None if p is None else names[p], "generated": t} for p, t in zip(preds, texts, strict=True)]
        return preds, extras


_OBJECTIVES: dict[str, Objective] = {o.name: o for o in (Classify(), Generate())}
assert tuple(_OBJECTIVES) == OBJECTIVES, "config.OBJECTIVES lists the objectives defined here"


def get_objective(name: str) -> Objective:
    """The objective called ``name`` (``train.objective``)."""
    if name not in _OBJECTIVES:
        raise EmotuneError(f"unknown objective '{name}'; expected one of {OBJECTIVES}")
    return _OBJECTIVES[name]
