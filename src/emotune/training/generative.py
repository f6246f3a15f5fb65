"""The paper's generative objective: LM loss on the label text, greedy decoding to evaluate.

Kept for faithful reproduction; the default ``classify`` objective scores labels directly and
can never produce an output outside the label set. Here an output that matches no label is
counted as invalid (and as wrong).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from emotune.data.schema import Example
from emotune.methods.base import base_model_of
from emotune.models.batching import length_batches
from emotune.models.recogniser import Recogniser
from emotune.models.scoring import output_weight


def label_targets(rec: Recogniser) -> list[list[int]]:
    """Token ids of each label's answer text (first verbaliser word, then end of sequence)."""
    eos = [rec.tokenizer.eos_token_id] if rec.tokenizer.eos_token_id is not None else []
    words = [w[0] for w in rec.labels.words(rec.prompt.language)]
    return [rec.tokenizer(rec.prompt.answer_prefix + w, add_special_tokens=False).input_ids + eos for w in words]


def lm_loss(rec: Recogniser, rows: Sequence[Sequence[int]], labels: Sequence[int]) -> torch.Tensor:
    """Causal-LM cross-entropy on the label text only (full vocabulary at those few positions)."""
    targets = label_targets(rec)
    full = [list(r) + targets[y] for r, y in zip(rows, labels, strict=True)]
    width = max(len(targets[y]) for y in labels)
    positions = torch.zeros(len(rows), width, dtype=torch.long)
    gold = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, y) in enumerate(zip(rows, labels, strict=True)):
        n = len(targets[y])
        positions[i, :n] = torch.arange(len(r) - 1, len(r) - 1 + n)
        gold[i, :n] = torch.tensor(targets[y])
    batch = rec.collate(full)
    with rec.autocast():
        hidden = rec.hidden_at(batch, positions.to(rec.device))
    logits = hidden.float() @ output_weight(base_model_of(rec.model)).float().T
    return F.cross_entropy(logits.flatten(0, 1), gold.to(rec.device).flatten(), ignore_index=-100)


def parse_label(text: str, words: Sequence[Sequence[str]]) -> int | None:
    """Maps generated text to a label index (a verbaliser word at its start), else None."""
    cleaned = text.strip().lower().strip(" .:：'\"")
    matches = [k for k, ws in enumerate(words) for w in ws if cleaned.startswith(w.lower())]
    # Prefer the longest match so "very negative" is not read as "very" + something else.
    return max(matches, key=lambda k: max(len(w) for w in words[k]), default=None)


@torch.no_grad()
def greedy_labels(
    rec: Recogniser, examples: Sequence[Example], batch_size: int = 16
) -> tuple[list[int | None], list[str]]:
    """Greedy-decodes each example's answer and parses it; returns (label or None, raw text)."""
    rec.model.eval()
    max_new = max(len(t) for t in label_targets(rec))
    rows = rec.encode(examples)
    generated: list[list[int]] = [[] for _ in rows]
    weight = output_weight(base_model_of(rec.model))
    for idx in length_batches([len(r) for r in rows], batch_size):  # each step re-collates
        current = [list(rows[i]) for i in idx]
        for _step in range(max_new):
            batch = rec.collate(current)
            with rec.autocast():
                hidden = rec.hidden_at(batch, batch.last_index)
            next_ids = (hidden.float() @ weight.float().T).argmax(-1).tolist()
            for row, tok in zip(current, next_ids, strict=True):
                row.append(tok)
        for i, row in zip(idx, current, strict=True):
            generated[i] = row[len(rows[i]) :]
    words = rec.labels.words(rec.prompt.language)
    texts = [str(rec.tokenizer.decode(g, skip_special_tokens=True)) for g in generated]
    return [parse_label(t, words) for t in texts], texts
