"""Which words, and which earlier dialogue turns, decided a label: ``Predictor.explain``.

- **Occlusion** (the default): each word, and each earlier turn, is removed in turn and the text
  scored again, all variants in one batched pass; a word's score is how much the label's
  log-probability drops without it (positive: it spoke for the label, negative: against). It
  needs nothing but the label probabilities, so it runs on every backend, ONNX exports and
  distilled students included.
- **Integrated gradients** (``method="ig"``, ``pip install 'emotune[explain]'``): captum's
  ``LayerIntegratedGradients`` on the input embeddings of the torch backbone, from a baseline
  where the text's (and the context's) tokens are padding, to the label's log-odds against the
  other labels; token attributions are summed into words and turns.

Words are whitespace-separated for languages that space their words and single characters for
Chinese (runs of Latin letters or digits inside Chinese text stay one word).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from emotune.calibration import calibrated
from emotune.data.schema import Example
from emotune.errors import EmotuneError

#: The longest text explained (occlusion scores one variant per word).
MAX_WORDS = 256
METHODS = ("occlusion", "ig")
_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\s\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


@dataclass(frozen=True)
class Explanation:
    """The explained label, its probability, and a score per word and per earlier turn.

    Attributes:
        label: The label explained (the predicted one unless another was named).
        probability: Its probability for the whole text.
        words: (word, score) in text order; the score is the change in the label's
            log-probability the word makes (occlusion) or its integrated-gradients attribution.
        turns: (turn, score) for each earlier dialogue turn, oldest first.
        method: ``occlusion`` or ``ig``.
    """

    label: str
    probability: float
    words: list[tuple[str, float]] = field(default_factory=list)
    turns: list[tuple[str, float]] = field(default_factory=list)
    method: str = "occlusion"

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return {
            "label": self.label,
            "probability": self.probability,
            "method": self.method,
            "words": [[w, round(s, 6)] for w, s in self.words],
            "turns": [[t, round(s, 6)] for t, s in self.turns],
        }


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word of ``text``."""
    return [m.span() for m in _WORD.finditer(text)]


def without(text: str, span: tuple[int, int]) -> str:
    """``text`` with one word removed (the spaces around it collapsed)."""
    left, right = text[: span[0]].rstrip(), text[span[1] :].lstrip()
    return f"{left} {right}".strip() if left and right and (left[-1].isascii() or right[0].isascii()) else left + right


def check(example: Example) -> list[tuple[int, int]]:
    """The words of an example to explain, bounded by `MAX_WORDS`.

    Raises:
        EmotuneError: For an empty text or one longer than the bound.
    """
    spans = word_spans(example.text)
    if not spans:
        raise EmotuneError("cannot explain an empty text")
    if len(spans) > MAX_WORDS:
        raise EmotuneError(f"text has {len(spans)} words; explain takes at most {MAX_WORDS} (split it)")
    return spans


def occlusion(backend: Any, example: Example, label: int | None, batch_size: int | None = None) -> Explanation:
    """Scores each word and turn of ``example`` by removing it (one batched pass); ``label``
    None explains the label the whole text gets."""
    spans = check(example)
    variants = [example]
    variants += [replace(example, text=without(example.text, s)) for s in spans]
    variants += [
        replace(example, context=example.context[:j] + example.context[j + 1 :]) for j in range(len(example.context))
    ]
    table = log_probabilities(backend, variants, batch_size)
    if label is None:
        label = int(table[0].argmax())
    logp = [float(row[label]) for row in table]
    full = logp[0]
    words = [(example.text[a:b], full - lp) for (a, b), lp in zip(spans, logp[1 : 1 + len(spans)], strict=True)]
    turns = [(t.line, full - lp) for t, lp in zip(example.context, logp[1 + len(spans) :], strict=True)]
    return Explanation(backend.labels.names[label], math.exp(full), words, turns, "occlusion")


def log_probabilities(backend: Any, examples: Sequence[Example], batch_size: int | None) -> np.ndarray:
    """Label log-probabilities (n, k) from the backend's logits and temperature, so that a very
    confident run (probabilities of 1.0 in floating point) still shows what each word moves."""
    logits = np.asarray(backend.scores(examples, batch_size), dtype=np.float64)
    scaled = calibrated(logits, backend.temperature, backend.class_scaling)
    if backend.multi_label:
        return -np.logaddexp(0.0, -scaled)  # log sigmoid
    # log p_k = z_k - max - log(1 + sum of the others' exp(z - max)): log1p keeps a probability
    # of 1 - 1e-20 apart from 1 - 1e-10, which a plain log-sum-exp rounds to the same 0.
    best = scaled.argmax(-1)
    top = scaled[np.arange(len(scaled)), best][:, None]
    others = np.exp(scaled - top)
    others[np.arange(len(scaled)), best] = 0.0
    return scaled - top - np.log1p(others.sum(-1, keepdims=True))


def integrated_gradients(rec: Any, example: Example, label: int | None, steps: int = 32) -> Explanation:
    """captum's integrated gradients on the input embeddings (torch `Recogniser` only); ``label``
    None explains the predicted label."""
    if not hasattr(rec, "scorer"):
        raise EmotuneError("integrated gradients need the torch backbone (not an ONNX export or a distilled student)")
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        raise EmotuneError("integrated gradients need the explain extra: pip install 'emotune[explain]'") from None
    import torch

    from emotune.methods.base import base_model_of

    spans = check(example)
    layout = token_layout(rec, example)
    ids = torch.tensor([layout.ids], device=rec.device)
    baseline = ids.clone()
    baseline[0, layout.text[0] : layout.text[1]] = rec.tokenizer.pad_token_id
    baseline[0, layout.context[0] : layout.context[1]] = rec.tokenizer.pad_token_id
    mask, position = torch.ones_like(ids), torch.tensor([len(layout.ids) - 1], device=rec.device)

    def log_prob(input_ids: torch.Tensor) -> torch.Tensor:
        logits = rec.scorer(input_ids, mask.expand_as(input_ids), position.expand(input_ids.shape[0]))
        return calibrated(logits.float(), rec.temperature, rec.class_scaling).log_softmax(-1)

    def log_odds(input_ids: torch.Tensor) -> torch.Tensor:
        # Each label's log-odds against the others: unlike its log-probability it does not
        # saturate for a confident run, so the path integral sees where the evidence comes from.
        logits = rec.scorer(input_ids, mask.expand_as(input_ids), position.expand(input_ids.shape[0])).float()
        k = logits.shape[-1]
        others = (
            logits.unsqueeze(1)
            .expand(-1, k, -1)
            .masked_fill(torch.eye(k, dtype=torch.bool, device=logits.device), float("-inf"))
        )
        return logits - others.logsumexp(-1)

    rec.model.eval()
    if label is None:
        label = int(rec.probabilities([example])[0].argmax())
    lig = LayerIntegratedGradients(log_odds, base_model_of(rec.model).get_input_embeddings())
    attr = lig.attribute(ids, baselines=baseline, target=label, n_steps=steps, internal_batch_size=steps)
    per_token = attr.sum(-1)[0].detach().float().cpu().tolist()
    with torch.no_grad():
        probability = float(log_prob(ids)[0, label].exp())
    words = [(example.text[a:b], 0.0) for a, b in spans]
    for pos, owner in layout.text_owner.items():
        words[owner] = (words[owner][0], words[owner][1] + per_token[pos])
    turns = [(t.line, 0.0) for t in example.context]
    for pos, owner in layout.turn_owner.items():
        turns[owner] = (turns[owner][0], turns[owner][1] + per_token[pos])
    return Explanation(rec.labels.names[label], probability, words, turns, "ig")


@dataclass
class TokenLayout:
    """Where a prompt's tokens come from: positions of the text and context tokens, and which
    word (or turn) each of them belongs to."""

    ids: list[int]
    text: tuple[int, int]
    context: tuple[int, int]
    text_owner: dict[int, int]
    turn_owner: dict[int, int]


def token_layout(rec: Any, example: Example) -> TokenLayout:
    """The prompt of ``example`` as `PromptBuilder.encode` builds it (``[bos] context head text
    tail``), with each text and context token mapped to its word or turn."""
    ids = rec.prompt.encode(rec.tokenizer, example, rec.max_length)
    head, tail = rec.prompt.frame_ids(rec.tokenizer)
    bos = 1 if rec.tokenizer.bos_token_id is not None else 0
    text_end = len(ids) - len(tail)
    text_tokens = _owners(rec.tokenizer, example.text, word_spans(example.text))
    budget = max(1, rec.max_length - bos - len(head) - len(tail))  # as PromptBuilder.encode cuts the text
    text_start = text_end - min(len(text_tokens), budget)
    context_text = rec.prompt.context_text(example)
    context_len = text_start - len(head) - bos
    lines, at = [], len(context_text) - len("\n".join(t.line for t in example.context)) - 1
    for turn in example.context:
        lines.append((at, at + len(turn.line)))
        at += len(turn.line) + 1
    context_tokens = _owners(rec.tokenizer, context_text, lines) if context_len > 0 else []
    context_tokens = context_tokens[len(context_tokens) - context_len :] if context_len > 0 else []
    return TokenLayout(
        ids,
        (text_start, text_end),
        (bos, bos + context_len),
        {text_start + i: o for i, o in enumerate(text_tokens[: text_end - text_start]) if o >= 0},
        {bos + i: o for i, o in enumerate(context_tokens) if o >= 0},
    )


def _owners(tokenizer: Any, text: str, segments: Sequence[tuple[int, int]]) -> list[int]:
    """For each token of ``text``, the index of the segment its characters start in (-1: none)."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    owners = []
    for start, end in offsets:
        middle = start if end <= start else start + (end - start - 1) // 2
        owners.append(next((k for k, (a, b) in enumerate(segments) if a <= middle < b), -1))
    return owners
