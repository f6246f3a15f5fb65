"""Backbones with random weights for benchmarks whose figures do not depend on weight values
(memory, operator counts, speed): a word-level tokenizer and a model from a configuration.

``gpu_scale.py``'s backbones are a plan preset's architecture with random bf16 weights and a
word-level tokenizer over SST-2's vocabulary, saved once as a model folder, and its examples real
SST-2 sentences that fill a prompt to a fixed length."""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from emotune.data.schema import Example, LabelSet

WORDS = [f"w{i}" for i in range(2000)] + ["negative", "positive", "classify", "the", "sentiment", "of", "to", "or"]
SPECIAL_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
#: Words split on whitespace and punctuation, as the tokenizers below split a text.
PRE_TOKENIZER = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])


def word_tokenizer(folder: Path, words: Iterable[str] = WORDS) -> dict[str, int]:
    """A word-level tokenizer over ``words`` (after the special tokens of `SPECIAL_IDS`) saved in
    ``folder``; returns its vocabulary."""
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = PRE_TOKENIZER
    special = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
    PreTrainedTokenizerFast(tokenizer_object=tok, **special).save_pretrained(folder)
    return vocab


def preset_config(preset: str) -> dict[str, Any]:
    """The configuration of a shipped plan preset (e.g. the default ``gemma3-270m``)."""
    from emotune.planning.backbone import PRESETS

    return {k: v for k, v in json.loads((PRESETS / f"{preset}.json").read_text()).items() if k[0] != "_"}


def random_backbone(folder: Path, model_type: str, **config: Any) -> Path:
    """Saves a seeded random model of ``model_type`` with ``config`` and the word tokenizer."""
    vocab = word_tokenizer(folder)
    config = {"vocab_size": len(vocab)} | config | SPECIAL_IDS
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **config)).save_pretrained(folder)
    return folder


def preset_backbone(folder: Path, preset: str) -> Path:
    """The architecture of a shipped plan preset, random weights."""
    config = preset_config(preset)
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


LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}


def sst_sentences(data_dir: str) -> list[str]:
    """SST-2's training sentences, through emotune's own loader."""
    from emotune.config import DataConfig
    from emotune.data import load_data

    return [e.text for e in load_data(DataConfig(dataset="sst2", data_dir=data_dir)).split("train")]


def sentence_tokenizer(folder: Path, sentences: list[str]) -> int:
    """A word-level tokenizer over the sentences' words and the prompt's, saved in ``folder``;
    returns its size."""
    from emotune.models.prompts import PromptBuilder

    head, tail = PromptBuilder(LABELS, "en", "sentiment").render()
    words = {w for text in [*sentences, head, tail] for w, _ in PRE_TOKENIZER.pre_tokenize_str(text)}
    return len(word_tokenizer(folder, sorted(words)))


def architecture(preset: str, vocab: int, tiny: bool) -> dict[str, Any]:
    """The preset's configuration (``--tiny``: a few narrow layers, a vocabulary just big enough)."""
    config = preset_config(preset)
    if tiny:
        config |= TINY | {"num_key_value_heads": 2, "vocab_size": -(-vocab // 64) * 64, "head_dim": 16}
    if config["vocab_size"] < vocab:
        raise SystemExit(f"{preset}: vocabulary {config['vocab_size']} is smaller than the tokenizer's {vocab}")
    return config | SPECIAL_IDS


def build_backbone(preset: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Saves the preset's architecture with random bf16 weights (built on the device) and the word
    tokenizer in ``folder``, once; returns how long it took."""
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return {"folder": str(folder), "reused": True}
    started = time.perf_counter()
    partial = folder.with_name(folder.name + ".partial")  # renamed when whole: a reader never sees half a model
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    vocab = sentence_tokenizer(partial, sst_sentences(args.data_dir))
    config = architecture(preset, vocab, args.tiny)
    torch.manual_seed(0)
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=torch.bfloat16)
    built = time.perf_counter() - started
    model.save_pretrained(partial)
    del model
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return {"folder": str(folder), "build_seconds": built, "save_seconds": time.perf_counter() - started - built}


def work_root(args: argparse.Namespace) -> Path:
    """Where the random backbones go: ``--work-dir``, else /dev/shm when it has room for a 7B
    model in bf16 (reloads at memory speed), else the temp folder."""
    if args.work_dir:
        return Path(args.work_dir)
    shm = Path("/dev/shm")
    if not args.tiny and shm.is_dir() and shutil.disk_usage(shm).free > 40 * 2**30:
        return shm / "emotune-gpu-scale"
    return Path(tempfile.gettempdir()) / f"emotune-gpu-scale{'-tiny' if args.tiny else ''}"


def backbone_name(model: str, args: argparse.Namespace) -> str:
    return f"{model}-tiny" if args.tiny else model


def filled_examples(sentences: list[str], n: int, words: int) -> list[Example]:
    """``n`` texts of consecutive SST-2 sentences, each longer than ``words`` words."""
    examples, i = [], 0
    for k in range(n):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) <= words:
            parts.append(sentences[i % len(sentences)])
            i += 1
        examples.append(Example(" ".join(parts), k % 2))
    return examples
