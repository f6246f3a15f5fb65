"""Label scoring shared by training, evaluation and prediction.

A label's score is read from the final hidden state at the answer position, multiplied by the
output-embedding rows of that label's verbaliser tokens only: never a full-vocabulary logit
matrix (Gemma 3's 262k-row output projection would otherwise dominate the compute). A label with
several verbaliser words scores the log-sum-exp of their first tokens.

With ``train.label_head: trainable`` the head keeps its own copy of those rows, initialised from
the backbone's and trained with the method: the label directions can then move away from what
the label words mean to the base LLM (rare, odd or Chinese label words) without touching the
backbone's shared output embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emotune.data.schema import Example, LabelSet
from emotune.errors import EmotuneError
from emotune.prompts import PromptBuilder


@dataclass
class Batch:
    """Right-padded token ids, their mask and the index of each row's last prompt token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    last_index: torch.Tensor

    @classmethod
    def from_ids(cls, rows: Sequence[Sequence[int]], pad_id: int) -> Batch:
        """Pads to the longest row of this batch only (dynamic padding)."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        last = torch.tensor([len(r) - 1 for r in rows], dtype=torch.long)
        return cls(ids, mask, last)

    def to(self, device: torch.device) -> Batch:
        """Moves every tensor to ``device``; to a GPU through pinned memory, without waiting for the copy."""
        if device.type != "cuda":
            return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.last_index.to(device))
        moved = (
            t.pin_memory().to(device, non_blocking=True) for t in (self.input_ids, self.attention_mask, self.last_index)
        )
        return Batch(*moved)


def verbaliser_token_ids(
    tokenizer: PreTrainedTokenizerBase, labels: LabelSet, prompt: PromptBuilder
) -> list[list[int]]:
    """First token id of each verbaliser word, per label.

    Raises:
        EmotuneError: If two labels share a first token (they could not be told apart).
    """
    owner: dict[int, str] = {}
    result = []
    for name, words in zip(labels.names, labels.words(prompt.language), strict=True):
        ids = []
        for word in words:
            tokens = tokenizer(prompt.answer_prefix + word, add_special_tokens=False).input_ids
            if not tokens:
                raise EmotuneError(f"verbaliser '{word}' of label '{name}' tokenises to nothing")
            if owner.setdefault(tokens[0], name) != name:
                raise EmotuneError(
                    f"labels '{owner[tokens[0]]}' and '{name}' start with the same token; "
                    "choose distinct verbalisers (data.verbalisers)"
                )
            ids.append(tokens[0])
        result.append(sorted(set(ids)))
    return result


class LabelHead(nn.Module):
    """Projects answer-position hidden states onto the label tokens' output rows.

    By default it holds no weights of its own: it reads the backbone's (possibly tied) output
    embedding at call time, so LoRA or a frozen head are scored the same way everywhere.
    :meth:`make_trainable` gives it its own copy of the label rows instead.
    """

    def __init__(self, token_ids: list[list[int]], softcap: float | None = None) -> None:
        super().__init__()
        flat = [t for ids in token_ids for t in ids]
        owner = [k for k, ids in enumerate(token_ids) for _ in ids]
        self.flat_ids: torch.Tensor
        self.owner: torch.Tensor
        self.bias: torch.Tensor
        self.register_buffer("flat_ids", torch.tensor(flat, dtype=torch.long), persistent=False)
        self.register_buffer("owner", torch.tensor(owner, dtype=torch.long), persistent=False)
        self.num_labels = len(token_ids)
        self.one_token_per_label = all(len(ids) == 1 for ids in token_ids)
        self.softcap = softcap
        # Zero-shot calibration: label log-probabilities on a content-free input, subtracted.
        self.register_buffer("bias", torch.zeros(self.num_labels), persistent=False)
        self.rows: nn.Parameter | None = None

    def make_trainable(self, output_weight: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Gives the head its own label rows: ``rows`` (a trained run's) or a copy of the backbone's.

        Raises:
            EmotuneError: If ``rows`` does not match this head's label tokens and hidden size.
        """
        start = output_weight.index_select(0, self.flat_ids).detach()
        if rows is not None and rows.shape != start.shape:
            raise EmotuneError(f"label head rows have shape {tuple(rows.shape)}, expected {tuple(start.shape)}")
        value = start if rows is None else rows.to(start.device)
        self.rows = nn.Parameter(value.float().clone())

    def forward(self, hidden: torch.Tensor, output_weight: torch.Tensor) -> torch.Tensor:
        """Returns label logits (batch, num_labels) from hidden states (batch, hidden)."""
        rows = self.rows if self.rows is not None else output_weight.index_select(0, self.flat_ids)
        token_logits = hidden.float() @ rows.float().T
        if self.softcap:
            token_logits = torch.tanh(token_logits / self.softcap) * self.softcap
        if self.one_token_per_label:
            return token_logits - self.bias
        per_label = [torch.logsumexp(token_logits[:, self.owner == k], dim=-1) for k in range(self.num_labels)]
        return torch.stack(per_label, dim=-1) - self.bias


def output_weight(model: PreTrainedModel) -> torch.Tensor:
    """The backbone's output projection weight (vocab, hidden)."""
    head = model.get_output_embeddings()
    if head is None:
        raise EmotuneError("the backbone has no output embedding; it is not a causal LM")
    return head.weight  # type: ignore[return-value]


def encode_examples(
    tokenizer: PreTrainedTokenizerBase,
    prompt: PromptBuilder,
    examples: Sequence[Example],
    max_length: int,
) -> list[list[int]]:
    """Tokenises every example's prompt."""
    return [prompt.encode(tokenizer, ex, max_length) for ex in examples]


def epoch_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar-length examples, deterministic for a seed.

    Examples are shuffled, sorted by length inside windows of 50 batches (little padding while
    staying random), and the batches shuffled again.
    """
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    perm = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in perm]
