"""The backbones of ``gpu_scale.py``: a plan preset's architecture with random bf16 weights and a
word-level tokenizer over SST-2's vocabulary, saved once as a model folder, and examples of real
SST-2 sentences that fill a prompt to a fixed length."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from emotune.data.schema import Example, LabelSet

LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}


def sst_sentences(data_dir: str) -> list[str]:
    """SST-2's training sentences, through emotune's own loader."""
    from emotune.config import DataConfig
    from emotune.data import load_data

    return [e.text for e in load_data(DataConfig(dataset="sst2", data_dir=data_dir)).split("train")]


def word_tokenizer(folder: Path, sentences: list[str]) -> int:
    """A word-level tokenizer over the sentences' words and the prompt's, saved in ``folder``;
    returns its size."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from emotune.models.prompts import PromptBuilder

    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    head, tail = PromptBuilder(LABELS, "en", "sentiment").render()
    words = {w for text in [*sentences, head, tail] for w, _ in pre.pre_tokenize_str(text)}
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *sorted(words)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    special = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
    PreTrainedTokenizerFast(tokenizer_object=tok, **special).save_pretrained(folder)
    return len(vocab)


def architecture(preset: str, vocab: int, tiny: bool) -> dict[str, Any]:
    """The preset's configuration (``--tiny``: a few narrow layers, a vocabulary just big enough)."""
    from emotune.planning.backbone import PRESETS

    config = {k: v for k, v in json.loads((PRESETS / f"{preset}.json").read_text()).items() if k[0] != "_"}
    if tiny:
        config |= TINY | {"num_key_value_heads": 2, "vocab_size": -(-vocab // 64) * 64, "head_dim": 16}
    if config["vocab_size"] < vocab:
        raise SystemExit(f"{preset}: vocabulary {config['vocab_size']} is smaller than the tokenizer's {vocab}")
    return config | {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


def build_backbone(preset: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Saves the preset's architecture with random bf16 weights (built on the device) and the word
    tokenizer in ``folder``, once; returns how long it took."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return {"folder": str(folder), "reused": True}
    started = time.perf_counter()
    partial = folder.with_name(folder.name + ".partial")  # renamed when whole: a reader never sees half a model
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    vocab = word_tokenizer(partial, sst_sentences(args.data_dir))
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
