"""Every trainable method on nine architectures: trains, saves, reloads, predicts the same scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archs import ARCHITECTURES, build_arch
from conftest import build_tokenizer
from emotune.data.schema import Example
from emotune.inference.predict import Predictor
from emotune.methods import method_class, method_names
from emotune.pipeline import run
from helpers import assert_same_predictions, run_records, tiny_config

TRAINABLE = [m for m in method_names() if method_class(m).trainable]


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def arch_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp(f"arch-{request.param}")
    build_arch(request.param, folder, len(build_tokenizer(folder)))
    return str(folder)


@pytest.mark.parametrize("method", TRAINABLE)
def test_method_trains_saves_and_reloads_on_each_architecture(
    arch_model: str, method: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    metrics = run(tiny_config(arch_model, sentiment_files, str(out), method=method, epochs=1))
    assert metrics["n"] == 8
    assert (out / "trained.json").is_file() and (out / "adapter").is_dir()
    assert_same_predictions(run_records(out), Predictor.load(str(out)), 1e-5)


def test_ia3_finds_its_modules_where_peft_has_no_table(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from emotune.methods.ia3 import structural_targets

    build_arch("phi3", tmp_path, 64)
    targets, feedforward = structural_targets(AutoModelForCausalLM.from_pretrained(tmp_path))
    assert targets == ["qkv_proj", "down_proj"] and feedforward == ["down_proj"]


def test_seq_cls_export_reproduces_the_runs_probabilities(
    arch_model: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    """Plain transformers on raw text (the sequence classifier with its tokenizer, and a
    text-classification pipeline) gives the run's label probabilities, on every architecture:
    the exported tokenizer wraps each text in the prompt, with exactly emotune's ids."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from emotune.errors import EmotuneError
    from emotune.inference.export import export

    run(tiny_config(arch_model, sentiment_files, str(tmp_path / "run"), epochs=1))
    predictor = Predictor.load(tmp_path / "run")
    if predictor.recogniser.head.softcap:  # Gemma 2 soft-caps its logits: no linear head can
        with pytest.raises(EmotuneError, match="soft-caps its final logits"):
            export(tmp_path / "run", "seq-cls", tmp_path / "seq")
        return
    export(tmp_path / "run", "seq-cls", tmp_path / "seq")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "seq")
    tok = AutoTokenizer.from_pretrained(tmp_path / "seq")
    block = model.config.emotune
    texts = ["a wonderful film", "i hated it", "great acting and a good story"]
    expected = predictor.predict(texts)
    classify = pipeline("text-classification", model=model, tokenizer=tok, top_k=None)
    rec = predictor.recogniser
    for pred, row, text in zip(expected, classify(texts), texts, strict=True):
        assert {r["label"]: r["score"] for r in row} == pytest.approx(pred.scores, abs=1e-4)
        ids = tok(text).input_ids
        assert ids == rec.encode([Example(text)])[0]  # the exported tokenizer wraps raw text exactly
        bos = [tok.bos_token_id] if block["add_bos"] else []
        own = tok(text, add_special_tokens=False).input_ids  # the text alone, for engines that take ids
        assert ids == bos + block["prompt_head_ids"] + own + block["prompt_tail_ids"]
        logits = model(input_ids=torch.tensor([ids])).logits[0]
        probs = dict(zip(model.config.id2label.values(), logits.softmax(-1).tolist(), strict=True))
        assert probs == pytest.approx(pred.scores, abs=1e-4)
