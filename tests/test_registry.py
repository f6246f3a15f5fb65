"""Registries refuse a name twice (PEFT's register_peft_method does too); a corpus family registers its variants."""

from __future__ import annotations

import pytest

from emotune.errors import EmotuneError


def test_a_method_name_registers_once() -> None:
    from emotune.methods.base import register_method
    from emotune.methods.lora import Lora, LoraOptions

    class Impostor(Lora):
        pass

    with pytest.raises(EmotuneError, match="'lora' is already registered"):
        register_method("lora", LoraOptions)(Impostor)


def test_a_method_trait_must_be_a_method_attribute() -> None:
    from emotune.methods.base import register_method
    from emotune.methods.lora import Lora, LoraOptions

    class Fast(Lora):
        pass

    with pytest.raises(EmotuneError, match="unknown traits \\['fast'\\]"):
        register_method("fast-lora", LoraOptions, fast=True)(Fast)


def impostor(request: object) -> object:
    """A loader that loads nothing."""
    return request


def test_a_dataset_name_registers_once() -> None:
    from emotune.data.registry import register_dataset

    with pytest.raises(EmotuneError, match="dataset 'sst2' is already registered"):
        register_dataset("sst2", "en", "sentiment", files="-")(impostor)


def test_a_family_registers_each_variant_with_its_overrides(tmp_path, monkeypatch) -> None:
    from emotune.data import registry
    from emotune.data.registry import DataRequest, Variant, dataset_info, load_dataset, register_family
    from emotune.data.schema import Dataset, Example, LabelSet

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the test's datasets go with it

    def family(request: DataRequest, name: str, labels: tuple[str, ...]) -> Dataset:
        examples = [Example(f"text {i}", i) for i in range(len(labels))]
        return Dataset(name, LabelSet(labels), "en", "emotion", {"test": examples})

    register_family(
        family,
        [
            Variant("test-family-two", "two labels", {"labels": ("a", "b")}),
            Variant("test-family-three", "three labels", {"labels": ("a", "b", "c")}, files="three.csv", task="mood"),
        ],
        folder="family",
        language="en",
        task="emotion",
        files="family.csv",
    )
    two, three = dataset_info("test-family-two"), dataset_info("test-family-three")
    assert (two.task, two.files, two.folder) == ("emotion", "family.csv", "family")
    assert (three.task, three.files, three.description) == ("mood", "three.csv", "three labels")
    loaded = load_dataset("test-family-three", DataRequest(data_dir=str(tmp_path)))
    assert loaded.name == "test-family-three" and loaded.labels.names == ("a", "b", "c")
    with pytest.raises(EmotuneError, match="'test-family-two' is already registered"):
        register_family(
            family, [Variant("test-family-two", "again", {"labels": ("a",)})], folder="", language="en", task="x"
        )


def test_the_corpus_variants_keep_their_language_task_and_files() -> None:
    from emotune.data.registry import dataset_info

    expected = {
        "sst2": ("en", "sentiment", "stsa.binary.{train,dev,test}"),
        "sst5": ("en", "sentiment", "stsa.fine.{train,dev,test}"),
        "xed-zh": ("zh", "emotion", None),
        "xed-zh-polarity": ("zh", "sentiment", None),
        "xed-polarity": ("en", "sentiment", None),
        "goemotions-ekman": ("en", "emotion", "ekman/{train,dev,test}.tsv + labels.txt"),
        "smp2020-ewect-usual": ("zh", "emotion", "usual_eval_labeled.txt, usual_test_labeled.txt"),
    }
    for name, (language, task, files) in expected.items():
        info = dataset_info(name)
        assert (info.language, info.task) == (language, task), name
        assert files is None or info.files == files, name


def test_a_dataset_is_described_by_its_loaders_docstring() -> None:
    from emotune.data.registry import dataset_info, register_dataset

    def undocumented(request: object) -> object:
        return request

    with pytest.raises(EmotuneError, match="undocumented has no docstring"):
        register_dataset("undocumented", "en", "sentiment", files="-")(undocumented)
    # The first paragraph, on one line, without its full stop; the rest of the docstring stays out.
    assert dataset_info("mastodon").description.startswith("Mastodon dialogue sentiment, 3 classes (train 1063")
    assert dataset_info("mastodon").description.endswith("2 context turns by default")
