"""Backbones with random weights for benchmarks whose figures do not depend on weight values
(memory, operator counts, speed): a word-level tokenizer and a model from a configuration."""

from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

WORDS = [f"w{i}" for i in range(2000)] + ["negative", "positive", "classify", "the", "sentiment", "of", "to", "or"]


def word_tokenizer(folder: Path) -> dict[str, int]:
    """A word-level tokenizer over ``WORDS`` saved in ``folder``; returns its vocabulary."""
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)
    return vocab


def random_backbone(folder: Path, model_type: str, **config: Any) -> Path:
    """Saves a seeded random model of ``model_type`` with ``config`` and the word tokenizer."""
    vocab = word_tokenizer(folder)
    config = {"vocab_size": len(vocab)} | config | {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **config)).save_pretrained(folder)
    return folder


def preset_backbone(folder: Path, preset: str) -> Path:
    """The architecture of a shipped plan preset (e.g. the default ``gemma3-270m``), random weights."""
    from emotune.planning.backbone import PRESETS

    config = {k: v for k, v in json.loads((PRESETS / f"{preset}.json").read_text()).items() if k[0] != "_"}
    return random_backbone(folder, config.pop("model_type"), **config)


def fill_text(length: int, seed: int = 0) -> str:
    """A text of ``length`` known words (longer than any prompt it is cut into)."""
    return " ".join(WORDS[(seed * 7 + j) % 2000] for j in range(length))


#: What a backbone's folder needs besides its weights (``tokenizer.json`` may come xz-compressed).
CONFIG_FILES = ("config.json", "tokenizer_config.json", "generation_config.json")


def backbone_from_config(folder: Path, source: Path | None = None) -> Path:
    """Random weights for the architecture whose files are in ``folder`` (copied from ``source``
    first when given); a ``tokenizer.json.xz`` there is unpacked. Nothing is redone once the
    weights exist. For the default backbone, ``source`` holds the files of emotune's converted
    cache (``$EMOTUNE_CACHE/backbones/gemma3-270m``) with ``tokenizer.json`` xz-compressed
    (3.5 MB instead of 253 MB of GGUF on a GPU machine)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*CONFIG_FILES, "tokenizer.json", "tokenizer.json.xz") if source else ():
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    packed = folder / "tokenizer.json.xz"
    if packed.is_file() and not (folder / "tokenizer.json").is_file():
        (folder / "tokenizer.json").write_bytes(lzma.decompress(packed.read_bytes()))
    if not any(folder.glob("*.safetensors")):
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder)).save_pretrained(folder)
    return folder
