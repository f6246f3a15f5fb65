"""Label scoring shared by training, evaluation and prediction.

A label's score is read from the final hidden state at the answer position, multiplied by the
output-embedding rows of that label's verbaliser tokens only: never a full-vocabulary logit
matrix at the answer position (Gemma 3's 262k-row output projection would otherwise dominate the
compute). A label with several verbaliser words scores the log-sum-exp of its words.

A word that is several tokens long (most two-character Chinese words on Gemma 3: 中性 is 中 + 性)
is scored by its first token by default. With ``data.label_tokens: all`` it is scored whole: the
prompt is extended by the word's leading tokens and the log-probabilities of its later tokens are
added to the first token's logit, so the label softmax is over the words' full probabilities
(renormalised over the label set) and labels may share a first token ("very negative" and
"very positive").

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
from emotune.models.prompts import PromptBuilder


@dataclass
class Batch:
    """Right-padded token ids, their mask and the index of each row's last prompt token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    last_index: torch.Tensor

    @classmethod
    def from_ids(cls, rows: Sequence[Sequence[int]], pad_id: int, bucket: int = 0) -> Batch:
        """Pads to the longest row of this batch (dynamic padding), rounded up to a multiple of
        ``bucket`` when given: a compiled decoder then sees a few widths, not one per batch."""
        width = max(len(r) for r in rows)
        if bucket:
            width = -(-width // bucket) * bucket
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
    tokenizer: PreTrainedTokenizerBase, labels: LabelSet, prompt: PromptBuilder, whole_words: bool = False
) -> list[list[list[int]]]:
    """Token ids of each verbaliser word, per label: the first token only unless ``whole_words``.

    Raises:
        EmotuneError: If a word tokenises to nothing, or two labels would score the same tokens
            (the same first token when only first tokens are scored).
    """
    owner: dict[tuple[int, ...], str] = {}
    result = []
    for name, words in zip(labels.names, labels.words(prompt.language), strict=True):
        seqs: list[tuple[int, ...]] = []
        for word in words:
            tokens = tokenizer(prompt.answer_prefix + word, add_special_tokens=False).input_ids
            if not tokens:
                raise EmotuneError(f"verbaliser '{word}' of label '{name}' tokenises to nothing")
            key = tuple(tokens) if whole_words else (tokens[0],)
            if owner.setdefault(key, name) != name:
                what = "tokenise the same" if whole_words else "start with the same token"
                fix = "" if whole_words else ", or score whole words (data.label_tokens: all)"
                raise EmotuneError(
                    f"labels '{owner[key]}' and '{name}' {what}; choose distinct verbalisers (data.verbalisers){fix}"
                )
            seqs.append(key)
        result.append([list(k) for k in sorted(set(seqs))])
    return result


def _tile(t: torch.Tensor, num: int) -> torch.Tensor:
    """(batch, ...) -> (num * batch, ...), word-major: row ``w * batch + b`` is row ``b``."""
    return t[None].expand(num, *t.shape).reshape(num * t.shape[0], *t.shape[1:])


def _spread(t: torch.Tensor, batch: int) -> torch.Tensor:
    """(num, span) -> (num * batch, span), word-major: each word's row repeated for every text."""
    num, span = t.shape
    return t[:, None].expand(num, batch, span).reshape(num * batch, span)


def continuation_rows(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, last_index: torch.Tensor, words: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every prompt extended by each multi-token word but its last token, for teacher forcing.

    The whole prompt is copied once per word: the path for training (gradients through every
    row) and for methods that cannot extend a cached prompt; inference takes
    `continuation_inputs` and the prompts' key/value cache instead.

    Args:
        input_ids: Right-padded prompts (batch, seq); ``attention_mask`` marks their tokens.
        last_index: Each prompt's last position (batch,).
        words: The words' token ids (num_words, longest), right-padded with -1.

    Returns:
        ``(ids, mask, read, targets)``: rows word-major (row ``w * batch + b``) of width
        ``seq + longest - 1``; ``read`` (rows, longest - 1) the positions whose hidden states
        predict ``targets``, the word's later tokens (-1 past a shorter word's end).
    """
    batch, num = input_ids.shape[0], words.shape[0]
    span = words.shape[1] - 1
    grow = input_ids.new_zeros(num * batch, span)
    ids = torch.cat([_tile(input_ids, num), grow], dim=1)
    mask = torch.cat([_tile(attention_mask, num), grow.to(attention_mask.dtype)], dim=1)
    lead, targets = _spread(words[:, :-1], batch), _spread(words[:, 1:], batch)
    read = _tile(last_index, num)[:, None] + 1 + torch.arange(span, device=input_ids.device)
    # Right padding means the positions after a prompt are padding: the word's tokens overwrite them.
    used = targets >= 0
    ids = ids.scatter(1, read, torch.where(used, lead, ids.gather(1, read)))
    mask = mask.scatter(1, read, torch.where(used, torch.ones_like(read).to(mask.dtype), mask.gather(1, read)))
    return ids, mask, read, targets


def continuation_inputs(
    attention_mask: torch.Tensor, last_index: torch.Tensor, words: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What extends cached prompts by each multi-token word but its last token.

    The prompts run once; each word's leading tokens then run on a copy of their key/value cache
    (rows word-major, as `continuation_rows`), so a label set's cost grows with its words' tokens,
    not with one whole prompt per word.

    Args:
        attention_mask: The right-padded prompts' mask (batch, seq), i.e. the cached positions.
        last_index: Each prompt's last position (batch,).
        words: The words' token ids (num_words, longest), right-padded with -1.

    Returns:
        ``(ids, mask, positions, targets)``: the new tokens (rows, longest - 1) with -1 made 0
        (they come after the word's end, so nothing read attends to them); the mask over cached
        and new positions, which hides each prompt's padding; each new token's position, right
        after its prompt's last token; and the later tokens each position predicts (-1: none).
    """
    batch, num = attention_mask.shape[0], words.shape[0]
    lead, targets = _spread(words[:, :-1], batch), _spread(words[:, 1:], batch)
    span = lead.shape[1]
    mask = torch.cat([_tile(attention_mask, num), attention_mask.new_ones(num * batch, span)], dim=1)
    positions = _tile(last_index, num)[:, None] + 1 + torch.arange(span, device=attention_mask.device)
    return lead.clamp(min=0), mask, positions, targets


class LabelHead(nn.Module):
    """Projects answer-position hidden states onto the label tokens' output rows.

    By default it holds no weights of its own: it reads the backbone's (possibly tied) output
    embedding at call time, so LoRA or a frozen head are scored the same way everywhere.
    `make_trainable` gives it its own copy of the label rows instead (first tokens only:
    a word's later tokens are always scored by the backbone's own vocabulary).
    """

    def __init__(self, token_ids: list[list[list[int]]], softcap: float | None = None) -> None:
        super().__init__()
        words = [w for ids in token_ids for w in ids]
        owner = [k for k, ids in enumerate(token_ids) for _ in ids]
        self.flat_ids: torch.Tensor
        self.owner: torch.Tensor
        self.bias: torch.Tensor
        self.long_words: torch.Tensor
        self.long_index: torch.Tensor
        self.register_buffer("flat_ids", torch.tensor([w[0] for w in words], dtype=torch.long), persistent=False)
        self.register_buffer("owner", torch.tensor(owner, dtype=torch.long), persistent=False)
        self.num_labels = len(token_ids)
        self.one_word_per_label = all(len(ids) == 1 for ids in token_ids)
        self.softcap = softcap
        # Zero-shot calibration: label log-probabilities on a content-free input, subtracted.
        self.register_buffer("bias", torch.zeros(self.num_labels), persistent=False)
        self.rows: nn.Parameter | None = None
        long = [i for i, w in enumerate(words) if len(w) > 1]
        span = max((len(words[i]) for i in long), default=1)
        padded = [words[i] + [-1] * (span - len(words[i])) for i in long]
        long_words = torch.tensor(padded, dtype=torch.long).view(len(long), span)  # (0, 1) when none is long
        self.register_buffer("long_words", long_words, persistent=False)
        self.register_buffer("long_index", torch.tensor(long, dtype=torch.long), persistent=False)

    @property
    def scores_whole_words(self) -> bool:
        """True when some word has later tokens to score (see `continuation_rows`)."""
        return self.long_index.numel() > 0

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

    def continuation_logprobs(
        self, hidden: torch.Tensor, targets: torch.Tensor, output_weight: torch.Tensor
    ) -> torch.Tensor:
        """Summed log-probabilities of each long word's later tokens, (batch, num_words) with zeros elsewhere.

        Args:
            hidden: Hidden states at the ``read`` positions of `continuation_rows`
                (long words * batch, span, hidden).
            targets: The tokens they predict, -1 where a word has ended.
            output_weight: The backbone's output projection (vocab, hidden).
        """
        logits = (hidden.to(output_weight.dtype) @ output_weight.T).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        picked = logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
        summed = picked.masked_fill(targets < 0, 0.0).sum(-1).view(len(self.long_index), -1)
        full = summed.new_zeros(summed.shape[1], len(self.flat_ids))
        return full.index_copy(1, self.long_index, summed.T)

    def forward(
        self, hidden: torch.Tensor, output_weight: torch.Tensor, later: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns label logits (batch, num_labels) from hidden states (batch, hidden).

        ``later`` adds each word's later-token log-probabilities (see `continuation_logprobs`).
        """
        rows = self.rows if self.rows is not None else output_weight.index_select(0, self.flat_ids)
        token_logits = hidden.float() @ rows.float().T
        if self.softcap:
            token_logits = torch.tanh(token_logits / self.softcap) * self.softcap
        if later is not None:
            token_logits = token_logits + later
        if self.one_word_per_label:
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
