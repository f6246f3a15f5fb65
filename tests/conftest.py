"""Shared fixtures: tiny random-weight causal LMs (built here, offline) and small datasets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from emotune.pipeline import run
from helpers import tiny_config

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

POSITIVE = [
    "a wonderful film",
    "great acting and a good story",
    "i loved it",
    "joy from start to end",
    "a happy delightful movie",
    "good fun",
    "great great great",
    "wonderful and warm",
]
NEGATIVE = [
    "a terrible film",
    "bad acting and a dull story",
    "i hated it",
    "boring from start to end",
    "a sad awful movie",
    "bad fun",
    "awful awful awful",
    "dull and cold",
]
WORDS = sorted(
    {w for s in POSITIVE + NEGATIVE for w in s.split()}
    | {
        "classify",
        "the",
        "sentiment",
        "of",
        "sentence",
        "to",
        "negative",
        "or",
        "positive",
        ":",
        "n/a",
        "joy",
        "sadness",
        "anger",
        "fear",
        "emotion",
        "happiness",
        "grief",
        "rage",
        "terror",
        ",",
        "dialogue",
        "so",
        "far",
        "label",
        "labels",
        "one",
        "read",
        "carefully",
        "and",
        "answer",
        "with",
        "word",
        "only",
        ".",
        "neutral",
        "very",
        "Sentiment",
        "Emotion",
        "Classify",
    }
)


def build_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a small vocabulary (unknown words map to <unk>)."""
    specials = ["<pad>", "<bos>", "<eos>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    fast.save_pretrained(folder)
    return fast


def build_model(arch: str, folder: Path, vocab_size: int) -> None:
    """Saves a tiny random-weight Gemma 3, GLM or Llama causal LM into ``folder``."""
    torch.manual_seed(0)
    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        max_position_embeddings=512,
        initializer_range=0.2,
    )
    if arch == "gemma3":
        config = Gemma3TextConfig(**common, sliding_window=64, layer_types=["sliding_attention", "full_attention"])
        model = Gemma3ForCausalLM(config)
    elif arch == "glm":  # transformers' GLM, the ChatGLM successor (no PEFT target mapping)
        from transformers import GlmConfig, GlmForCausalLM

        model = GlmForCausalLM(GlmConfig(**(common | {"eos_token_id": [2]})))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=False))
    model.save_pretrained(folder)


@pytest.fixture(scope="session", params=["gemma3", "llama"])
def tiny_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a tiny model folder (both architectures)."""
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    tok = build_tokenizer(folder)
    build_model(request.param, folder, len(tok))
    return str(folder)


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a tiny Gemma 3 model folder (the default backbone's architecture)."""
    folder = tmp_path_factory.mktemp("tiny-gemma-only")
    tok = build_tokenizer(folder)
    build_model("gemma3", folder, len(tok))
    return str(folder)


@pytest.fixture
def sentiment_files(tmp_path: Path) -> dict[str, str]:
    """Train/dev/test JSONL files of a tiny binary sentiment task."""
    rows = [{"text": t, "label": "positive"} for t in POSITIVE] + [{"text": t, "label": "negative"} for t in NEGATIVE]
    paths = {}
    for split, subset in (("train", rows), ("dev", rows[::2]), ("test", rows[1::2])):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in subset))
        paths[split] = str(path)
    return paths


@pytest.fixture(autouse=True)
def _isolated_cache(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fast tests never touch the user's cache; slow tests use it, so the default backbone is
    # converted once per machine rather than once per test session.
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setenv("EMOTUNE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# The HTTP service over loopback: a tiny trained run served by `emotune serve` in a subprocess.
KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def tiny_run(tiny_gemma: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serve")
    rows = [{"text": t, "label": "positive"} for t in POSITIVE] + [{"text": t, "label": "negative"} for t in NEGATIVE]
    files = {}
    for split in ("train", "dev", "test"):
        files[split] = str(folder / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    run(tiny_config(tiny_gemma, files, str(folder / "run"), epochs=1))
    return folder / "run"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tiny_run: Path) -> Iterator[str]:
    port = _free_port()
    cmd = [sys.executable, "-c", "from emotune.cli import main; raise SystemExit(main())", "serve"]
    cmd += ["--run", str(tiny_run), "--port", str(port), "--max-texts", "4", "--max-chars", "60"]
    cmd += ["--max-body-bytes", "2000", "--max-wait-ms", "50"]
    proc = subprocess.Popen(cmd, env={**os.environ, "EMOTUNE_API_KEY": KEY}, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"server exited: {proc.stderr.read() if proc.stderr else ''}"
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("server did not become ready in 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
