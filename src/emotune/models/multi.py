"""One adapter, several corpora: a recogniser whose label head scores every corpus's labels.

The heads of the corpora are laid end to end (`emotune.data.multi`): the label logits of a
training row cover every corpus, and `segment_mask` keeps, for each row, only the labels of the
corpus its gold label belongs to, so each example is classified among its own corpus's labels.
Each training row is prompted with its own corpus's instruction, language and label list (in a
fresh order per example with ``data.shuffle_labels``). Evaluation, prediction and saving go
through `MultiRecogniser.view`: a plain `Recogniser` of one corpus on the shared adapter.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from emotune.data.schema import Example, LabelSet
from emotune.errors import EmotuneError
from emotune.models.prompts import PromptBuilder
from emotune.models.recogniser import Recogniser
from emotune.models.scoring import LabelHead, verbaliser_token_ids


@dataclass(frozen=True)
class CorpusTask:
    """What a corpus asks: its name, labels, prompt language and task word, headline metric."""

    name: str
    labels: LabelSet
    language: str
    task: str
    headline_metric: str = "macro_f1"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "labels": self.labels.to_dict(),
            "language": self.language,
            "task": self.task,
            "headline_metric": self.headline_metric,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CorpusTask:
        labels = LabelSet.from_dict(data["labels"])  # type: ignore[arg-type]
        return cls(str(data["name"]), labels, str(data["language"]), str(data["task"]), str(data["headline_metric"]))


class MultiHead(nn.Module):
    """The corpora's label heads side by side: logits (batch, every corpus's labels)."""

    def __init__(self, heads: Sequence[LabelHead]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(heads)
        self.rows = None  # the backbone's own label rows: nothing of the head trains
        self.register_buffer("bias", torch.zeros(sum(h.num_labels for h in heads)), persistent=False)

    @property
    def scores_whole_words(self) -> bool:
        return False

    def forward(self, hidden: torch.Tensor, output_weight: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(hidden, output_weight) for head in self.heads], dim=-1)


def segment_mask(segments: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """(batch, labels) True where a label belongs to the corpus of the row's gold label."""
    return segments[None, :] == segments[gold][:, None]


@dataclass
class MultiRecogniser(Recogniser):
    """A `Recogniser` over several corpora at once (training); `view` gives one corpus's."""

    tasks: list[CorpusTask] = field(default_factory=list)
    corpus_heads: list[LabelHead] = field(default_factory=list)
    shuffle_labels: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.head = MultiHead(self.corpus_heads).to(self.device)  # type: ignore[assignment]  # duck-types a LabelHead
        sizes = [len(t.labels) for t in self.tasks]
        self._segments = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)).to(self.device)
        self._offsets = [sum(sizes[:c]) for c in range(len(sizes))]
        self._prompts: dict[tuple[int, tuple[int, ...]], PromptBuilder] = {}
        super().__post_init__()

    @property
    def segments(self) -> torch.Tensor:
        return self._segments

    def corpus_of(self, label: int) -> int:
        return int(self._segments[label])

    def encode(self, examples: Sequence[Example]) -> list[list[int]]:
        """Each (labelled) example's prompt: its corpus's instruction and label list."""
        rng = random.Random(self.seed)
        rows = []
        for ex in examples:
            if ex.label is None:
                raise EmotuneError("a multi-corpus recogniser encodes labelled examples; predict through view()")
            corpus = self.corpus_of(ex.label)
            order = list(range(len(self.tasks[corpus].labels)))
            if self.shuffle_labels:
                rng.shuffle(order)
            rows.append(self._prompt(corpus, tuple(order)).encode(self.tokenizer, ex, self.max_length))
        return rows

    def _prompt(self, corpus: int, order: tuple[int, ...]) -> PromptBuilder:
        key = (corpus, order)
        if key not in self._prompts:
            task = self.tasks[corpus]
            words = task.labels.words(task.language)
            shown = LabelSet(tuple(task.labels.names[k] for k in order), {task.language: [words[k] for k in order]})
            self._prompts[key] = PromptBuilder(shown, task.language, task.task)
        return self._prompts[key]

    def view(self, corpus: int) -> Recogniser:
        """The recogniser of one corpus (its canonical prompt and head) on the shared adapter,
        with the run's temperature."""
        task = self.tasks[corpus]
        view = Recogniser(
            self.model,
            self.method,
            self.tokenizer,
            task.labels,
            PromptBuilder(task.labels, task.language, task.task),
            self.corpus_heads[corpus],
            self.max_length,
            self.precision,
            eval_batch_size=self.eval_batch_size,
            weights=self.weights,
            bucket=self.bucket,
        )
        view.temperature = self.temperature
        return view

    def local(self, examples: Sequence[Example]) -> dict[int, list[Example]]:
        """Labelled examples grouped by corpus, labels back in each corpus's own index space."""
        groups: dict[int, list[Example]] = {c: [] for c in range(len(self.tasks))}
        for ex in examples:
            corpus = self.corpus_of(int(ex.label))  # type: ignore[arg-type]
            groups[corpus].append(replace(ex, label=int(ex.label) - self._offsets[corpus]))  # type: ignore[arg-type]
        return groups

    def probabilities(self, examples: Sequence[Example], batch_size: int | None = None) -> torch.Tensor:
        raise EmotuneError("a multi-corpus recogniser scores one corpus at a time: use view(corpus)")


def corpus_head(rec: Recogniser, task: CorpusTask) -> LabelHead:
    """A frozen label head for ``task`` on ``rec``'s backbone and tokenizer.

    Raises:
        EmotuneError: When two of the corpus's labels start with the same token.
    """
    prompt = PromptBuilder(task.labels, task.language, task.task)
    try:
        ids = verbaliser_token_ids(rec.tokenizer, task.labels, prompt)
    except EmotuneError as err:
        raise EmotuneError(f"corpus '{task.name}': {err}") from None
    softcap = getattr(rec.head, "softcap", None)
    return LabelHead(ids, softcap).to(rec.device)


def multi_recogniser(rec: Recogniser, tasks: Sequence[CorpusTask], shuffle: bool, seed: int) -> MultiRecogniser:
    """Turns ``rec`` (built for the first corpus) into a recogniser of every corpus in ``tasks``."""
    names = tuple(f"{t.name}/{n}" for t in tasks for n in t.labels.names)
    multi = MultiRecogniser(
        rec.model,
        rec.method,
        rec.tokenizer,
        LabelSet(names),
        rec.prompt,
        rec.head,
        rec.max_length,
        rec.precision,
        eval_batch_size=rec.eval_batch_size,
        weights=rec.weights,
        bucket=rec.bucket,
        tasks=list(tasks),
        corpus_heads=[corpus_head(rec, t) for t in tasks],
        shuffle_labels=shuffle,
        seed=seed,
    )
    return multi
