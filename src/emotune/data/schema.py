"""The one schema every dataset loader produces: `Example` and `LabelSet`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from emotune.errors import EmotuneError


@dataclass(frozen=True)
class Turn:
    """One earlier utterance of a dialogue, used as context."""

    text: str
    speaker: str | None = None

    @property
    def line(self) -> str:
        """The turn as a prompt shows it: "speaker: text", or the text alone."""
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


@dataclass(frozen=True)
class Example:
    """One labelled (or unlabelled) text.

    Attributes:
        text: The text to classify.
        label: Index into the dataset's `LabelSet`; ``None`` when unlabelled.
        context: Earlier dialogue turns, oldest first (empty for single sentences).
        speaker: Speaker of ``text`` in a dialogue.
        uid: Stable identifier (file and line, dialogue and turn) for tracing predictions.
        labels: Every gold label index of a multi-label example (``label`` is the first of them);
            empty for single-label tasks.
    """

    text: str
    label: int | None = None
    context: tuple[Turn, ...] = ()
    speaker: str | None = None
    uid: str = ""
    labels: tuple[int, ...] = ()

    def gold_set(self) -> tuple[int, ...]:
        """All gold label indices: ``labels`` if multi-label, else ``(label,)``."""
        if self.labels:
            return self.labels
        return () if self.label is None else (self.label,)


@dataclass(frozen=True)
class LabelSet:
    """The labels of a task and the words that stand for them in a prompt.

    Attributes:
        names: Canonical label names, in index order.
        verbalisers: For each label, one or more words per language code ("en", "zh").
            The first word is the one shown in the prompt; all words are scored.
    """

    names: tuple[str, ...]
    verbalisers: Mapping[str, Sequence[Sequence[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise EmotuneError(f"a label set needs at least two labels, got {list(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise EmotuneError(f"duplicate label names in {list(self.names)}")
        for lang, words in self.verbalisers.items():
            if len(words) != len(self.names) or any(not w for w in words):
                raise EmotuneError(
                    f"verbalisers for '{lang}' must give at least one word for each of {len(self.names)} labels"
                )

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Returns the index of a label name, with a clear error for an unknown one."""
        try:
            return self.names.index(name)
        except ValueError:
            raise EmotuneError(f"unknown label '{name}'; expected one of {list(self.names)}") from None

    def words(self, language: str) -> list[list[str]]:
        """Returns the verbaliser words per label for a language (label names if none set)."""
        if language in self.verbalisers:
            return [list(w) for w in self.verbalisers[language]]
        if "en" in self.verbalisers:
            return [list(w) for w in self.verbalisers["en"]]
        return [[name] for name in self.names]

    def with_verbalisers(self, language: str, words: Sequence[Sequence[str]]) -> LabelSet:
        """Returns a copy whose verbalisers for ``language`` are replaced (config overrides)."""
        merged = dict(self.verbalisers)
        merged[language] = [list(w) for w in words]
        return LabelSet(self.names, merged)

    def to_dict(self) -> dict[str, object]:
        """Serialises to plain data (stored in a run directory)."""
        return {
            "names": list(self.names),
            "verbalisers": {k: [list(w) for w in v] for k, v in self.verbalisers.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LabelSet:
        """Inverse of `to_dict`."""
        names = tuple(str(n) for n in data["names"])  # type: ignore[attr-defined]
        verbalisers = data.get("verbalisers") or {}
        return cls(names, {str(k): [list(w) for w in v] for k, v in verbalisers.items()})  # type: ignore[attr-defined]


def regroup(examples: Sequence[Example], group_of: Mapping[int, int]) -> list[Example]:
    """Each example whose gold labels all fall in one group, labelled with that group
    (single-label); examples spanning groups, or with a label of no group, are left out."""
    out = []
    for ex in examples:
        groups = {group_of.get(k) for k in ex.gold_set()}
        if len(groups) == 1 and None not in groups:
            out.append(Example(ex.text, groups.pop(), uid=ex.uid))
    return out


HEADLINE_METRICS = ("macro_f1", "weighted_f1", "accuracy", "ua", "micro_f1")


@dataclass
class Dataset:
    """A loaded dataset: its labels, language and splits.

    Attributes:
        multi_label: Examples may carry several labels (scored with one sigmoid per label).
        headline_metric: The metric the corpus is usually reported with; early stopping on dev
            uses it (M3ED: weighted F1).
        context_turns: Earlier dialogue turns kept before each utterance when the run config
            leaves ``data.context_turns`` unset (a corpus's default, chosen on its dev split).
    """

    name: str
    labels: LabelSet
    language: str
    task: str
    splits: dict[str, list[Example]]
    multi_label: bool = False
    headline_metric: str = "macro_f1"
    context_turns: int = 0

    def __post_init__(self) -> None:
        if self.headline_metric not in HEADLINE_METRICS:
            raise EmotuneError(f"headline metric must be one of {HEADLINE_METRICS}, got '{self.headline_metric}'")

    def split(self, name: str) -> list[Example]:
        """Returns a split by name, with a clear error when the dataset lacks it."""
        if name not in self.splits:
            raise EmotuneError(f"dataset '{self.name}' has no split '{name}'; available: {sorted(self.splits)}")
        return self.splits[name]
