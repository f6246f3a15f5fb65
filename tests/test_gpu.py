"""The CUDA path (run with ``pytest -m gpu`` on a GPU machine; skipped elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emotune.inference.predict import Predictor
from emotune.models.precision import autocast_dtype, forward_context, weight_dtype_name
from emotune.pipeline import run
from helpers import assert_same_predictions, run_records, tiny_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_training_and_prediction_run_on_the_gpu(tiny_gemma: str, sentiment_files, tmp_path: Path) -> None:
    metrics = run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"), device="cuda", precision="auto"))
    assert 0.0 <= metrics["accuracy"] <= 1.0
    predictor = Predictor.load(tmp_path / "run")
    assert predictor.recogniser.device.type == "cuda"
    pred = predictor.predict(["a wonderful film"])[0]
    assert sum(pred.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_half_autocast_is_chosen_where_the_gpu_supports_it() -> None:
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert autocast_dtype("auto", torch.device("cuda")) == expected
    assert weight_dtype_name("auto", torch.device("cuda")) == str(expected).removeprefix("torch.")
    assert autocast_dtype("fp32", torch.device("cuda")) is None


def test_gpu_attention_under_bf16_runs_no_cudnn_kernel() -> None:
    q = torch.randn(4, 2, 40, 256, device="cuda", requires_grad=True)
    mask = torch.ones(40, 40, dtype=torch.bool, device="cuda").tril()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        with forward_context("cuda", torch.bfloat16):
            out = torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
        out.float().sum().backward()
    names = [e.key for e in prof.key_averages()]
    assert not [n for n in names if "cudnn" in n], names
    assert [n for n in names if "attention" in n], names


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_train_with_fp32_adapters(
    tiny_gemma: str, sentiment_files, tmp_path: Path, dtype: str
) -> None:
    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"), device="cuda", precision="auto", epochs=2)
    cfg.model.dtype = dtype
    metrics = run(cfg)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    recipe = json.loads((tmp_path / "run" / "trained.json").read_text())["recipe"]
    assert recipe["weights"] == dtype and recipe["precision"] == {"float16": "fp16", "bfloat16": "bf16"}[dtype]
    rec = Predictor.load(tmp_path / "run").recogniser
    assert {p.dtype for p in rec.model.parameters() if not p.requires_grad} == {getattr(torch, dtype)}


def test_fp16_training_uses_a_loss_scaler(tiny_gemma: str, sentiment_files, tmp_path: Path) -> None:
    from emotune.models.recogniser import build_recogniser
    from emotune.training.trainer import Trainer
    from test_scoring import LABELS

    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"), device="cuda", precision="auto")
    cfg.model.dtype = "float16"
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    assert Trainer(rec, [], cfg.train).scaler is not None


@pytest.mark.parametrize("method", ["lora", "ptuning-v2"])
def test_4bit_backbone_trains_and_reloads_on_the_gpu(sentiment_files, tmp_path: Path, method: str) -> None:
    pytest.importorskip("bitsandbytes")
    from archs import build_arch
    from conftest import build_tokenizer

    folder = tmp_path / "model"
    build_arch("gemma3", folder, len(build_tokenizer(folder)), hidden_size=64, intermediate_size=128, head_dim=32)
    out = tmp_path / "run"
    cfg = tiny_config(str(folder), sentiment_files, str(out), method=method, device="cuda", precision="auto")
    cfg.model.quantization = "4bit"
    run(cfg)
    recipe = json.loads((out / "trained.json").read_text())["recipe"]
    assert recipe["weights"].startswith("4bit") and recipe["gradient_checkpointing"] is True
    assert_same_predictions(run_records(out), Predictor.load(out), 1e-2)


@pytest.mark.parametrize("method", ["lora", "ptuning-v2", "prompt-tuning"])
def test_checkpointing_on_the_gpu_keeps_gradients_and_lowers_peak_memory(tmp_path: Path, method: str) -> None:
    from archs import build_arch
    from conftest import build_tokenizer
    from test_checkpointing import loss_and_grads, recogniser

    build_arch("llama", tmp_path, len(build_tokenizer(tmp_path)), layers=4)
    peaks = []
    results = []
    for ckpt in (False, True):
        rec = recogniser(str(tmp_path), method, ckpt)
        rec.model.to("cuda")
        torch.cuda.reset_peak_memory_stats()
        results.append(loss_and_grads_cuda(rec, loss_and_grads))
        peaks.append(torch.cuda.max_memory_allocated())
    (loss, grads), (loss_ckpt, grads_ckpt) = results
    assert loss_ckpt == pytest.approx(loss, rel=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-3, atol=1e-5)
    assert peaks[1] < peaks[0]


def loss_and_grads_cuda(rec, loss_and_grads) -> tuple[float, dict[str, torch.Tensor]]:  # type: ignore[no-untyped-def]
    rec.head.to("cuda")
    loss, grads, _ = loss_and_grads(rec)
    return loss, {k: v.cpu() for k, v in grads.items()}
