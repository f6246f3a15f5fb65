"""The CUDA path (run with ``pytest -m gpu`` on a GPU machine; skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emotune.pipeline import run
from emotune.precision import autocast_dtype, forward_context
from emotune.predict import Predictor
from helpers import tiny_config

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


def test_bf16_autocast_is_chosen_where_the_gpu_supports_it() -> None:
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    assert autocast_dtype("auto", torch.device("cuda")) == expected
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
