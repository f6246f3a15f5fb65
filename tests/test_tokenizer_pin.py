"""The default backbone's tokenizer, pinned: fixed strings map to fixed ids of the GGUF's own
vocabulary (the transformers version that converts it must agree), a conversion that splits
whole words is refused, and two processes converting at once both end with a usable copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from emotune.errors import EmotuneError
from emotune.models import backbones
from emotune.models.backbones import check_gguf_tokenizer, convert_gguf

# (text with the prefix the prompt puts before it, ids, the GGUF's pieces for those ids)
PINNED = [
    (" negative", [5676], ["▁negative"]),
    (" positive", [4414], ["▁positive"]),
    (" neutral", [12643], ["▁neutral"]),
    (" joy", [12690], ["▁joy"]),
    (" sadness", [55882], ["▁sadness"]),
    (" anger", [25046], ["▁anger"]),
    ("I am so happy", [236777, 1006, 834, 5293], ["I", "▁am", "▁so", "▁happy"]),
    ("积极", [60636], ["积极"]),
    ("消极", [238114, 238936], ["消", "极"]),
    ("愤怒", [186675], ["愤怒"]),
    ("今天很开心", [22601, 237614, 118055], ["今天", "很", "开心"]),
]


def _gguf_pieces(path: Path) -> list[str]:
    import gguf

    field = gguf.GGUFReader(str(path)).fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


@pytest.mark.slow
def test_default_backbone_tokenizer_is_pinned_to_the_gguf_vocabulary() -> None:
    from emotune.models.backbones import BACKBONES, cache_dir, load_backbone

    _, tokenizer = load_backbone("gemma3-270m")
    pieces = _gguf_pieces(BACKBONES["gemma3-270m"].locate_gguf(cache_dir()))
    for text, ids, expected in PINNED:
        assert [pieces[i] for i in ids] == expected, text  # the ids are the GGUF's own tokens
        assert tokenizer(text, add_special_tokens=False).input_ids == ids, text


class _Splitter:
    """A tokenizer whose vocabulary holds " negative" whole but that spells it in fragments (what
    transformers 5.17 did with Gemma 3's GGUF)."""

    def get_vocab(self) -> dict[str, int]:
        return {"<pad>": 0, "<bos>": 1, "<eos>": 2, "▁n": 3, "eg": 4, "ative": 5, "▁negative": 6}

    def __call__(self, text: str, add_special_tokens: bool = False) -> object:
        return type("Encoding", (), {"input_ids": [3, 4, 5]})()


def test_a_conversion_that_splits_whole_words_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match=r"converts the tokenizer of tiny.gguf wrongly: ' negative' becomes"):
        check_gguf_tokenizer(tmp_path / "tiny.gguf", _Splitter())  # type: ignore[arg-type]


class _Whole(_Splitter):
    """The same vocabulary, spelling " negative" as its one piece (and other words in fragments)."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> object:
        return type("Encoding", (), {"input_ids": [6] if text == " negative" else [3, 4, 5]})()


def test_a_conversion_that_keeps_whole_words_passes(tmp_path: Path) -> None:
    check_gguf_tokenizer(tmp_path / "tiny.gguf", _Whole())  # type: ignore[arg-type]  # no error


def test_one_conversion_parses_the_gguf_once(tmp_path: Path) -> None:
    import gguf

    from emotune.models.backbones import _one_gguf_parse

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_token_list(["<pad>", "<bos>", "<eos>", "▁negative"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original = gguf.GGUFReader
    with _one_gguf_parse():
        # transformers imports the reader by name at each load: config, weights, tokenizer
        first, again = gguf.GGUFReader(str(path)), gguf.GGUFReader(path)
        assert first is again and "tokenizer.ggml.tokens" in first.fields
    assert gguf.GGUFReader is original and gguf.GGUFReader(str(path)) is not first


def _converting_onto(monkeypatch: pytest.MonkeyPatch, tiny_gemma: str, tmp_path: Path, already: dict[str, str]) -> Path:
    """The target of a conversion that reads a tiny checkpoint in place of the GGUF (so the
    conversion's own steps run), holding ``already`` (file name: text) before it renames, or
    absent when ``already`` is None."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(path: Path, dtype: object) -> tuple[object, object]:
        return AutoModelForCausalLM.from_pretrained(tiny_gemma), AutoTokenizer.from_pretrained(tiny_gemma)

    monkeypatch.setattr(backbones, "_load_gguf", load)
    monkeypatch.setattr(backbones, "check_gguf_tokenizer", lambda path, tokenizer: None)
    target = tmp_path / "backbones" / "tiny"
    if already is None:
        return target
    target.mkdir(parents=True)
    for name, text in already.items():
        (target / name).write_text(text)
    return target


def test_a_conversion_that_loses_the_race_uses_the_winners_copy(
    tmp_path: Path, tiny_gemma: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the slower of two concurrent first loads sees when it renames: the folder is there.
    target = _converting_onto(monkeypatch, tiny_gemma, tmp_path, {"config.json": '{"by": "the other process"}'})
    convert_gguf(tmp_path / "tiny.gguf", target)
    assert (target / "config.json").read_text() == '{"by": "the other process"}'
    assert [p.name for p in target.parent.iterdir()] == ["tiny"]  # no half-written folder left behind


def test_a_conversion_blocked_by_a_broken_folder_says_which(
    tmp_path: Path, tiny_gemma: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _converting_onto(monkeypatch, tiny_gemma, tmp_path, {"model.safetensors": "truncated"})
    with pytest.raises(EmotuneError, match=r"cannot put the converted backbone at .*tiny .*remove that folder"):
        convert_gguf(tmp_path / "tiny.gguf", target)
    assert [p.name for p in target.parent.iterdir()] == ["tiny"]


@pytest.mark.parametrize("already", [None, {}], ids=["no-folder", "empty-folder"])
def test_a_fresh_conversion_lands_whole(
    tmp_path: Path, tiny_gemma: str, monkeypatch: pytest.MonkeyPatch, already: dict[str, str] | None
) -> None:
    target = _converting_onto(monkeypatch, tiny_gemma, tmp_path, already)
    convert_gguf(tmp_path / "tiny.gguf", target)
    assert (target / "config.json").is_file() and (target / "tokenizer.json").is_file()
    assert [p.name for p in target.parent.iterdir()] == ["tiny"]
