"""Registered corpora from their Hugging Face Hub copies, mapped onto the same labels and splits;
tested on save_to_disk folders (no network in tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emotune.config import DataConfig
from emotune.data import load_data
from emotune.data.sst import SST5_LABELS
from emotune.errors import EmotuneError

datasets = pytest.importorskip("datasets")


def _sst5_copy(folder: Path) -> str:
    split = {"text": ["a great film", "awful", "it is a film"], "label": [4, 0, 2], "label_text": ["x", "y", "z"]}
    data = datasets.DatasetDict({s: datasets.Dataset.from_dict(split) for s in ("train", "validation", "test")})
    data.save_to_disk(str(folder))
    return str(folder)


def test_sst5_hub_copy_maps_onto_the_corpus_labels_and_splits(tmp_path: Path) -> None:
    where = _sst5_copy(tmp_path / "sst5")
    data = load_data(DataConfig(dataset="sst5", hf_name=where))
    assert data.labels == SST5_LABELS and data.name == "sst5" and data.language == "en"
    assert sorted(data.splits) == ["dev", "test", "train"]
    assert [(e.text, data.labels.names[e.label]) for e in data.split("train")] == [  # type: ignore[index]
        ("a great film", "very positive"),
        ("awful", "very negative"),
        ("it is a film", "neutral"),
    ]


def test_goemotions_hub_copy_is_multi_label(tmp_path: Path) -> None:
    names = ["admiration", "joy", "neutral"]
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "labels": datasets.Sequence(datasets.ClassLabel(names=names)),
            "id": datasets.Value("string"),
        }
    )
    rows = {"text": ["so good", "ok"], "labels": [[1, 0], [2]], "id": ["a", "b"]}
    split = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({"train": split, "validation": split, "test": split}).save_to_disk(str(tmp_path / "ge"))
    data = load_data(DataConfig(dataset="goemotions", hf_name=str(tmp_path / "ge")))
    assert data.multi_label and data.labels.names == tuple(names)
    first = data.split("train")[0]
    assert first.labels == (0, 1) and first.label == 0


def test_offline_hub_failure_names_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'SetFit/sst2' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(EmotuneError, match=r"needs data_dir \(a folder with stsa.binary.*\) or, online, its Hub"):
        load_data(DataConfig(dataset="sst2"))


def test_the_hub_clients_retry_warnings_stay_out_of_the_one_line_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    hub = logging.getLogger("huggingface_hub")

    def offline(*args: object, **kwargs: object) -> None:
        logging.getLogger("huggingface_hub.utils._http").warning("'Name or service not known' thrown while requesting")
        raise ConnectionError("Couldn't reach 'SetFit/sst2' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    level = hub.level
    with caplog.at_level(logging.WARNING), pytest.raises(EmotuneError, match="its Hub copy"):
        load_data(DataConfig(dataset="sst2"))
    assert not [r for r in caplog.records if r.name.startswith("huggingface_hub")]
    assert hub.level == level  # restored: a Python caller's own setting is theirs
