"""Generic labelled files (CSV, TSV, JSONL) with column mapping, and Hugging Face datasets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from emotune.data.files import iter_records
from emotune.data.registry import DataRequest, register_dataset
from emotune.data.schema import Dataset, Example, LabelSet
from emotune.data.wording import task_word, texts_language
from emotune.errors import EmotuneError
from emotune.storage import quiet_hub_retries

_SPLIT_FIELDS = (("train", "train_file"), ("dev", "dev_file"), ("test", "test_file"))


def read_records(path: Path, encoding: str = "utf-8") -> list[tuple[int, dict[str, Any]]]:
    """Reads ``(line number, row)`` pairs of a ``.csv``, ``.tsv`` or ``.jsonl`` file.

    Raises:
        EmotuneError: For a missing, empty or unreadable file.
    """
    rows = list(iter_records(path, encoding))
    if not rows:
        raise EmotuneError(f"{path}: no rows")
    return rows


def records_to_examples(
    rows: Iterable[Mapping[str, Any] | tuple[int, Mapping[str, Any]]],
    where: str,
    text_column: str,
    label_column: str,
    labels: LabelSet,
) -> list[Example]:
    """Maps rows to examples, checking columns, empty texts and labels.

    ``rows`` are plain rows (numbered from 1) or ``(line number, row)`` pairs from a file, whose
    errors then name the file's line.
    """
    examples = []
    for i, item in enumerate(rows, 1):
        lineno, row = item if isinstance(item, tuple) else (i, item)
        at = f"{where}: line {lineno}" if isinstance(item, tuple) else f"{where}: row {i}"
        for column in (text_column, label_column):
            if column not in row:
                raise EmotuneError(f"{at} has no column '{column}' (columns: {sorted(row)})")
        text = str(row[text_column] or "").strip()
        if not text:
            raise EmotuneError(f"{at} has an empty '{text_column}'")
        try:
            label = labels.index(str(row[label_column]))
        except EmotuneError as err:
            raise EmotuneError(f"{at}: {err}") from None
        examples.append(Example(text, label, uid=f"{where}:{lineno}"))
    return examples


def require_columns(where: str, first_row: Mapping[str, Any], columns: Iterable[str]) -> None:
    """A one-line error naming the file, the missing column and the columns it has."""
    for column in columns:
        if column not in first_row:
            present = ", ".join(str(c) for c in first_row)
            raise EmotuneError(
                f"{where}: no column '{column}' (columns: {present}); set text_column / label_column",
                settings=("text_column", "label_column"),
            )


def _language(request: DataRequest, splits: Mapping[str, list[Example]]) -> str:
    """The language asked for, else that of the training texts (or the first split given)."""
    if request.language:
        return request.language
    split = "train" if "train" in splits else next(iter(splits))
    return texts_language([e.text for e in splits[split]], f"{split} split")


def _label_set(request: DataRequest, rows: Iterable[Mapping[str, Any]]) -> LabelSet:
    if request.labels:
        return LabelSet(tuple(request.labels))
    seen = sorted({str(r.get(request.label_column)) for r in rows if request.label_column in r})
    return LabelSet(tuple(seen))


@register_dataset("files", "any", "any", files="any .csv, .tsv or .jsonl with a text and a label column")
def load_files(request: DataRequest) -> Dataset:
    """Your own CSV/TSV/JSONL files (--train-file/--dev-file/--test-file, column mapping).

    Loads user files; labels come from ``--labels`` or, sorted, from the training file.
    """
    paths = {split: getattr(request, key) for split, key in _SPLIT_FIELDS if getattr(request, key)}
    if not paths:
        raise EmotuneError(
            "dataset 'files' needs at least one of train_file, dev_file, test_file",
            settings=("train_file", "dev_file", "test_file"),
        )
    raw = {split: read_records(Path(p), request.encoding) for split, p in paths.items()}
    for split, rows in raw.items():
        require_columns(paths[split], rows[0][1], (request.text_column, request.label_column))
    labels = _label_set(request, [row for _, row in raw.get("train") or next(iter(raw.values()))])
    splits = {
        split: records_to_examples(rows, paths[split], request.text_column, request.label_column, labels)
        for split, rows in raw.items()
    }
    return Dataset("files", labels, _language(request, splits), task_word(labels.names), splits)


@register_dataset("hf", "any", "any", files="--hf-name NAME_OR_FOLDER; splits train/validation(dev)/test")
def load_hf(request: DataRequest) -> Dataset:
    """A Hugging Face dataset: Hub name (online) or a save_to_disk folder (--hf-name).

    Loads a Hub dataset or a ``save_to_disk`` folder; ClassLabel names become the labels.
    """
    try:
        import datasets
    except ImportError:
        raise EmotuneError("dataset 'hf' needs the extra: pip install 'emotune[hf]'") from None
    if not request.hf_name:
        raise EmotuneError("dataset 'hf' needs hf_name (a Hub name or a save_to_disk folder)", settings=("hf_name",))
    try:
        if Path(request.hf_name).exists():
            data = datasets.load_from_disk(request.hf_name)
        else:
            with quiet_hub_retries():
                data = datasets.load_dataset(request.hf_name)
    except Exception as err:  # datasets raises many types for offline / missing data
        raise EmotuneError(
            f"cannot load Hugging Face dataset '{request.hf_name}': {str(err).splitlines()[0]}"
        ) from None
    return _from_dataset_dict(data, request)


def _from_dataset_dict(data: Any, request: DataRequest) -> Dataset:
    names = {"validation": "dev"}
    first = data[next(iter(data))]
    feature = first.features.get(request.label_column)
    class_names = getattr(feature, "names", None)
    if request.labels:
        labels = LabelSet(tuple(request.labels))
    elif class_names:
        labels = LabelSet(tuple(class_names))
    else:
        labels = LabelSet(tuple(sorted({str(v) for v in first[request.label_column]})))
    splits = {}
    for split in data:
        rows = [dict(r) for r in data[split]]
        if class_names:
            for r in rows:
                r[request.label_column] = class_names[int(r[request.label_column])]
        where = f"{request.hf_name}[{split}]"
        splits[names.get(split, split)] = records_to_examples(
            rows, where, request.text_column, request.label_column, labels
        )
    language = _language(request, splits)
    return Dataset(f"hf:{request.hf_name}", labels, language, task_word(labels.names), splits)
