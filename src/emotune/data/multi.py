"""Several corpora in one run: ``data.dataset: sst5,friends,smp2020-ewect``.

Each corpus keeps its own label set, language, task word and dialogue context. Their labels are
laid end to end in one index space (corpus *c*'s label *k* is ``offset[c] + k``), so a training
example's label also says which corpus, and so which prompt and which labels, it belongs to.

Training examples are drawn per corpus in proportion to ``size ** (1 / mix_temperature)``
(temperature 1: as many as the corpus has; higher: small corpora count for more), at most
``max_per_corpus`` each; dev and evaluation splits keep every corpus whole (subject to the usual
``max_dev_samples`` / ``max_eval_samples``). A multi-label corpus (GoEmotions) contributes its
examples with exactly one gold label, as a single-label task.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from emotune.data.registry import dataset_info
from emotune.data.schema import Dataset, Example
from emotune.data.wording import reworded
from emotune.errors import EmotuneError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from emotune.config import DataConfig


def corpus_names(dataset: str) -> list[str]:
    """The corpora of ``data.dataset`` (one name, or several comma-separated)."""
    return [n.strip() for n in dataset.split(",") if n.strip()]


def is_multi_corpus(data: DataConfig) -> bool:
    """Whether a run trains on several corpora at once."""
    return len(corpus_names(data.dataset)) > 1


def corpus_config(data: DataConfig, name: str) -> DataConfig:
    """The data section of one corpus: ``data_dir`` is the datasets root holding each corpus's
    folder (``../shared/datasets``), or the corpus folder itself."""
    root = Path(data.data_dir) if data.data_dir else None
    folder = dataset_info(name).folder
    data_dir = str(root / folder) if root is not None and folder and (root / folder).is_dir() else data.data_dir
    return replace(data, dataset=name, data_dir=data_dir, verbalisers=None, template=None, labels=[])


@dataclass(frozen=True)
class Corpora:
    """Loaded corpora and where each one's labels start in the shared index space.

    Attributes:
        views: For a corpus (by index), the indices of its reworded label sets (`reworded`):
            datasets of the same classes with no examples of their own, among which the training
            mix spreads the corpus's examples.
        removed: Per corpus, the training and dev texts left out because a judged corpus's test
            split holds them (``data.exclude_test_of``).
    """

    datasets: list[Dataset]
    offsets: list[int]
    views: dict[int, list[int]] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.datasets]

    @property
    def corpora(self) -> list[Dataset]:
        """The loaded corpora themselves, without their reworded views."""
        reworded = {v for vs in self.views.values() for v in vs}
        return [d for i, d in enumerate(self.datasets) if i not in reworded]

    def corpus_of(self, label: int) -> int:
        """The corpus whose labels include global label ``label``."""
        return max(c for c, start in enumerate(self.offsets) if start <= label)

    def split(self, name: str, limit: int | None, seed: int) -> list[Example]:
        """Every corpus's ``name`` split (a seeded ``limit`` each), labels in the shared space."""
        out: list[Example] = []
        for dataset, offset in zip(self.datasets, self.offsets, strict=True):
            examples = single_label(dataset.splits.get(name) or [])
            if limit is not None and limit < len(examples):
                examples = random.Random(seed).sample(examples, limit)
            out.extend(shift(e, offset) for e in examples)
        return out


def load_corpora(data: DataConfig, seed: int) -> Corpora:
    """Loads each corpus of ``data.dataset`` with its own defaults.

    Raises:
        EmotuneError: For a corpus named twice, or one that cannot be loaded.
    """
    from emotune.data import load_data

    names = corpus_names(data.dataset)
    if len(set(names)) != len(names):
        raise EmotuneError(f"data.dataset names a corpus twice: {data.dataset}")
    if overlap := set(names) & set(data.exclude_test_of):
        raise EmotuneError(f"data.exclude_test_of names a training corpus: {', '.join(sorted(overlap))}")
    loaded = [load_data(corpus_config(data, name), seed) for name in names]
    loaded = [replace(d, multi_label=False) if d.multi_label else d for d in loaded]
    removed = drop_judged(loaded, judged_texts(data, seed)) if data.exclude_test_of else {}
    datasets = loaded + [v for c, d in enumerate(loaded) for v in views_of(d, data.label_variants, seed + c)]
    views = {
        c: [len(loaded) + c * data.label_variants + k for k in range(data.label_variants)] for c in range(len(loaded))
    }
    offsets = [sum(len(d.labels) for d in datasets[:i]) for i in range(len(datasets))]
    return Corpora(datasets, offsets, views if data.label_variants else {}, removed)


def views_of(dataset: Dataset, count: int, seed: int) -> list[Dataset]:
    """``count`` reworded copies of ``dataset``'s label set, with no examples (`emotune.data.wording`)."""
    rng = random.Random(seed)
    return [
        Dataset(
            f"{dataset.name}~{k + 1}",
            reworded(dataset.labels, dataset.language, rng),
            dataset.language,
            dataset.task,
            {},
        )
        for k in range(count)
    ]


def normalised(text: str) -> str:
    """A text as duplicates are matched: lower case, letters and digits only."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def judged_texts(data: DataConfig, seed: int) -> set[str]:
    """The normalised test texts of every corpus in ``data.exclude_test_of``."""
    from emotune.data import load_data

    texts: set[str] = set()
    for name in data.exclude_test_of:
        test = load_data(corpus_config(data, name), seed, {"test"}).splits.get("test") or []
        texts.update(normalised(e.text) for e in test)
    texts.discard("")
    return texts


def drop_judged(datasets: list[Dataset], judged: set[str]) -> dict[str, int]:
    """Leaves out of each corpus's train and dev splits the texts a judged test split holds.

    Returns:
        How many examples went, per corpus.
    """
    removed: dict[str, int] = {}
    for d in datasets:
        before = sum(len(d.splits.get(s) or []) for s in ("train", "dev"))
        for s in ("train", "dev"):
            if s in d.splits:
                d.splits[s] = [e for e in d.splits[s] if normalised(e.text) not in judged]
        removed[d.name] = before - sum(len(d.splits.get(s) or []) for s in ("train", "dev"))
        if removed[d.name]:
            log.info("%s: %d training/dev texts left out (in a judged test split)", d.name, removed[d.name])
    return removed


def single_label(examples: list[Example]) -> list[Example]:
    """The examples with exactly one gold label (all of a single-label corpus)."""
    return [e for e in examples if e.label is not None and len(e.gold_set()) == 1]


def shift(example: Example, offset: int) -> Example:
    """``example`` with its label moved into the shared index space."""
    return replace(example, label=int(example.label) + offset, labels=())  # type: ignore[arg-type]


def mixed_train(corpora: Corpora, temperature: float, cap: int | None, seed: int) -> list[Example]:
    """The training mix: per corpus, ``share ** (1 / temperature)``-weighted counts, capped.

    The total is the capped corpora's size; a corpus never gives more examples than it has.
    """
    pools = [single_label(d.splits.get("train") or []) for d in corpora.datasets]
    sizes = [min(len(p), cap) if cap else len(p) for p in pools]
    weights = [n ** (1 / temperature) for n in sizes]
    total = sum(sizes)
    rng = random.Random(seed)
    out: list[Example] = []
    for c, (pool, size, weight) in enumerate(zip(pools, sizes, weights, strict=True)):
        count = min(size, round(total * weight / sum(weights)))
        # A corpus with reworded views spreads its examples evenly over its own wording and theirs.
        heads = [c, *corpora.views.get(c, [])]
        out.extend(shift(e, corpora.offsets[heads[i % len(heads)]]) for i, e in enumerate(rng.sample(pool, count)))
    rng.shuffle(out)
    return out
