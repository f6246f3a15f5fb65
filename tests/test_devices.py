"""Every path on every device: the same tests run on the CPU (always) and on CUDA (``-m gpu``,
skipped without a GPU), and compare what the device computes with the CPU's answer.

Methods x objectives, multi-label, Predictor, the HTTP app and the benchmark harness.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import yaml

import emotune.models.precision as precision
from emotune.bench.harness import load_matrix, run_matrix
from emotune.data.schema import Example, LabelSet
from emotune.inference.predict import Predictor
from emotune.methods import method_class, method_names
from emotune.models.precision import forward_context, warn_if_emulated_bf16
from emotune.models.recogniser import build_recogniser
from emotune.pipeline import run
from emotune.training.trainer import load_trainable, trainable_state
from helpers import tiny_config
from test_multilabel import _goemotions

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
)
DEVICES = ["cpu", CUDA]
LABELS = LabelSet(("negative", "positive"), {"en": [["negative"], ["positive"]]})
TEXTS = ["a wonderful film", "i hated it and it was boring from start to end", "good"]
TRAINABLE = [m for m in method_names() if method_class(m).trainable]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", method_names())
def test_label_scores_on_the_device_equal_the_cpu(tiny_gemma: str, sentiment_files, tmp_path, method, device) -> None:
    torch.manual_seed(0)
    ref = build_recogniser(
        tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "c"), method=method), LABELS, "en", ""
    )
    torch.manual_seed(0)
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "d"), method=method, device=device)
    rec = build_recogniser(cfg, LABELS, "en", "")
    load_trainable(rec, {k: v.to(rec.device) for k, v in trainable_state(ref).items()})  # the same start
    assert rec.device.type == device
    examples = [Example(t) for t in TEXTS]
    torch.testing.assert_close(rec.probabilities(examples), ref.probabilities(examples), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("method", "objective"), [(m, "classify") for m in TRAINABLE] + [("lora", "generate"), ("ptuning-v2", "generate")]
)
def test_training_on_the_device_reloads_with_the_same_predictions(
    tiny_gemma: str, sentiment_files, tmp_path: Path, method: str, objective: str, device: str
) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(tiny_gemma, sentiment_files, str(out), method=method, device=device, objective=objective)
    metrics = run(cfg)
    assert metrics["n"] == 8 and 0.0 <= metrics["accuracy"] <= 1.0
    predictor = Predictor.load(out)
    assert predictor.recogniser.device.type == device
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    preds = predictor.predict([r["text"] for r in records])
    if objective == "classify":  # generated answers are parsed; scores exist only for label scoring
        for record, pred in zip(records, preds, strict=True):
            assert pred.label == record["label"]
            assert all(abs(pred.scores[k] - v) < 1e-4 for k, v in record["scores"].items())
    assert all(abs(sum(p.scores.values()) - 1) < 1e-4 for p in preds)


@pytest.mark.parametrize("device", DEVICES)
def test_multi_label_on_the_device(tiny_gemma: str, tmp_path: Path, device: str) -> None:
    cfg = tiny_config(tiny_gemma, {"train": "", "dev": "", "test": ""}, str(tmp_path / "run"), device=device, epochs=4)
    cfg.data.dataset, cfg.data.data_dir = "goemotions", str(_goemotions(tmp_path / "data"))
    cfg.data.labels = []
    metrics = run(cfg)
    assert metrics["multi_label"] and 0.05 <= metrics["threshold"] <= 0.95
    pred = Predictor.load(tmp_path / "run").predict("i hated it")[0]
    assert pred.labels and all(0.0 <= p <= 1.0 for p in pred.scores.values())


@pytest.mark.parametrize("device", DEVICES)
def test_the_http_app_on_the_device_answers_like_the_predictor(
    tiny_gemma: str, sentiment_files, tmp_path: Path, device: str
) -> None:
    # The serving extra is optional; without it this check is skipped, not failed.
    TestClient = pytest.importorskip("fastapi.testclient").TestClient

    from emotune.serve.app import create_app
    from emotune.serve.settings import ServeSettings

    run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"), device=device, epochs=1))
    predictor = Predictor.load(tmp_path / "run")
    expected = [p.to_dict() for p in predictor.predict(TEXTS)]
    with TestClient(create_app(lambda: predictor, ServeSettings())) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        got = client.post("/v1/predict", json={"texts": TEXTS}).json()["predictions"]
    for a, b in zip(got, expected, strict=True):
        assert a["label"] == b["label"] and all(abs(a["scores"][k] - v) < 1e-5 for k, v in b["scores"].items())


@pytest.mark.parametrize("device", DEVICES)
def test_the_benchmark_harness_on_the_device(tiny_gemma: str, sentiment_files, tmp_path: Path, device: str) -> None:
    spec = {
        "defaults": {
            "model": {"name": tiny_gemma},
            "train": {"batch_size": 4, "epochs": 1, "min_steps": 0, "lr": 5e-3, "checkpoint_every": 0},
            "runtime": {"precision": "fp32", "device": device},
        },
        "seeds": [1],
        "datasets": {
            "tiny": {
                "dataset": "files",
                "train_file": sentiment_files["train"],
                "dev_file": sentiment_files["dev"],
                "test_file": sentiment_files["test"],
                "labels": ["negative", "positive"],
            }
        },
        "methods": {"lora": {"method": {"name": "lora"}}, "zero-shot": {"method": {"name": "zero-shot"}}},
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(spec))
    results = run_matrix(load_matrix(path), tmp_path / "out", tmp_path / "runs")
    assert len(results) == 2 and all(0.0 <= r["accuracy"] <= 1.0 for r in results)


def test_forward_passes_on_a_gpu_keep_off_cudnn_attention() -> None:
    # The flags are process-wide settings, so this runs without a GPU; the context restores them.
    cuda = torch.backends.cuda
    before = cuda.cudnn_sdp_enabled()
    with forward_context("cuda", None):
        assert not cuda.cudnn_sdp_enabled()
        assert cuda.flash_sdp_enabled() and cuda.mem_efficient_sdp_enabled() and cuda.math_sdp_enabled()
    assert cuda.cudnn_sdp_enabled() == before
    with forward_context("cpu", None):
        assert cuda.cudnn_sdp_enabled() == before


@pytest.mark.parametrize("native_bf16", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch, caplog, native_bf16: bool) -> None:
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: native_bf16)
    with caplog.at_level("WARNING", logger="emotune"):
        warn_if_emulated_bf16("bfloat16", "auto", torch.device("cpu"))
        warn_if_emulated_bf16("float32", "bf16", torch.device("cpu"))
        warn_if_emulated_bf16("float32", "auto", torch.device("cpu"))
        warn_if_emulated_bf16("bfloat16", "bf16", torch.device("cuda"))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == (0 if native_bf16 else 2)
    if not native_bf16:
        assert "model.dtype bfloat16" in warned[0] and "float32" in warned[0]
        assert "runtime.precision bf16" in warned[1] and "auto" in warned[1]
