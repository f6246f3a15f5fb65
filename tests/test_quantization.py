"""Weight precision and k-bit backbones (QLoRA) on the CPU: bitsandbytes' CPU backend quantises
here, so 4-bit and 8-bit training, reloading and export run in the fast suite. Their GPU kernels
are covered by the ``gpu`` tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import emotune.models.precision as precision
from archs import build_arch
from conftest import build_tokenizer
from emotune.cli import main
from emotune.data.schema import Example
from emotune.errors import EmotuneError
from emotune.inference.export import ExportSource, export
from emotune.inference.predict import Predictor
from emotune.models.precision import grad_scaler, weight_dtype_name
from emotune.pipeline import run
from helpers import assert_same_predictions, run_records, tiny_config

pytest.importorskip("bitsandbytes")

QUANTISABLE = ["lora", "dora", "ptuning-v2", "prompt-tuning"]


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny Gemma 3 whose linear layers are 64 wide: bitsandbytes' CPU kernels quantise in
    blocks of 64 input features."""
    folder = tmp_path_factory.mktemp("tiny-gemma-64")
    build_arch("gemma3", folder, len(build_tokenizer(folder)), hidden_size=64, intermediate_size=128, head_dim=32)
    return str(folder)


@pytest.mark.parametrize("method", QUANTISABLE)
def test_4bit_backbone_trains_and_reloads_with_the_same_scores(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path, method: str
) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(tiny_gemma, sentiment_files, str(out), method=method, epochs=1)
    cfg.model.quantization = "4bit"
    run(cfg)
    trained = json.loads((out / "trained.json").read_text())
    assert trained["recipe"]["weights"] == "4bit nf4 (compute float32)"
    predictor = Predictor.load(out)
    layer = predictor.recogniser.model.get_base_model().model.layers[0].self_attn.q_proj  # type: ignore[union-attr]
    assert "4bit" in type(getattr(layer, "base_layer", layer)).__name__
    assert_same_predictions(run_records(out), predictor, 1e-5)
    texts = [str(r["text"]) for r in run_records(out)]
    again = Predictor.load(out).predict(texts)
    assert [p.scores for p in predictor.predict(texts)] == [p.scores for p in again]


def test_8bit_lora_trains(tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path) -> None:
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"), epochs=1)
    cfg.model.quantization = "8bit"
    metrics = run(cfg)
    assert metrics["n"] == 8
    assert json.loads((tmp_path / "run" / "trained.json").read_text())["recipe"]["weights"].startswith("8bit")


def test_a_4bit_run_exports_de_quantised(tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(tiny_gemma, sentiment_files, str(out), epochs=1)
    cfg.model.quantization = "4bit"
    run(cfg)
    result = export(out, "merged", tmp_path / "merged")
    assert result.merged and "de-quantised" in result.note
    merged = Predictor.load(tmp_path / "merged")
    assert "Linear4bit" not in {type(m).__name__ for m in merged.recogniser.model.modules()}  # type: ignore[union-attr]
    # The export is the full-precision backbone with the adapter trained on its 4-bit weights,
    # folded in: the same scores as that pair unmerged.
    texts = ["a wonderful film", "a terrible film", "i hated it"]
    unmerged = Predictor.load(out, dequantize=True).predict(texts)
    for u, m in zip(unmerged, merged.predict(texts), strict=True):
        assert all(abs(u.scores[k] - m.scores[k]) < 1e-4 for k in u.scores)


def test_a_label_set_on_a_4bit_runs_adapter_exports_de_quantised(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    """`emotune export --labels L --run RUN` of a QLoRA run merges into full precision, as the
    run's own export does, and scores what the de-quantised run scores for those labels."""
    out = tmp_path / "run"
    cfg = tiny_config(tiny_gemma, sentiment_files, str(out), epochs=1)
    cfg.model.quantization = "4bit"
    run(cfg)
    source = ExportSource.of_labels("bad,good", out, language="en")
    assert "Linear4bit" not in {type(m).__name__ for m in source.rec.model.modules()}
    result = export(source, "merged", tmp_path / "merged")
    assert result.merged and "de-quantised" in result.note and "labels bad, good" in result.note
    merged = Predictor.load(tmp_path / "merged")
    texts = ["a wonderful film", "a terrible film", "i hated it"]
    want = source.rec.probabilities([Example(t, 0) for t in texts], None)
    for got, row in zip(merged.predict(texts), want.tolist(), strict=True):
        assert list(got.scores.values()) == pytest.approx(row, abs=1e-4)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err.strip()


def test_bad_weight_formats_are_one_line_and_write_nothing(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path, capsys, monkeypatch
) -> None:
    base = ["train", "--model", tiny_gemma, "--dataset", "files", "--train-file", sentiment_files["train"]]
    base += ["--labels", "negative,positive", "--device", "cpu", "--output", str(tmp_path / "run")]
    code, err = run_cli([*base, "--set", "model.quantization=3bit"], capsys)
    assert code == 2 and "model.quantization must be one of" in err and "\n" not in err
    code, err = run_cli([*base, "--set", "model.dtype=float16"], capsys)
    assert code == 2 and "float16 needs a GPU" in err and "\n" not in err
    monkeypatch.setattr(precision, "_bnb_probe", lambda q, d: "no kernels for this device")
    code, err = run_cli([*base, "--set", "model.quantization=4bit"], capsys)
    assert code == 2 and err.endswith("does not run on cpu here: no kernels for this device")
    monkeypatch.setattr(precision.importlib.util, "find_spec", lambda name: None)
    code, err = run_cli([*base, "--set", "model.quantization=8bit"], capsys)
    assert code == 2 and "needs bitsandbytes: pip install 'emotune[qlora]'" in err
    assert not (tmp_path / "run").exists()


def test_auto_dtype_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert weight_dtype_name("auto", torch.device("cpu")) == "float32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert weight_dtype_name("auto", torch.device("cuda")) == "float16"  # a T4 or V100
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert weight_dtype_name("auto", torch.device("cuda")) == "bfloat16"
    with pytest.raises(EmotuneError, match="float16 needs a GPU"):
        weight_dtype_name("float16", torch.device("cpu"))


def test_fp16_training_scales_its_loss_and_nothing_else_does() -> None:
    cuda = torch.device("cuda")
    assert grad_scaler({torch.float16}, cuda) is not None
    assert grad_scaler({torch.bfloat16, None}, cuda) is None
    assert grad_scaler({torch.float16}, torch.device("cpu")) is None


def test_bf16_weights_keep_trainable_parameters_in_fp32(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    from emotune.models.recogniser import build_recogniser
    from emotune.training.trainer import trainable_parameters
    from test_scoring import LABELS

    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"))
    cfg.model.dtype = "bfloat16"
    cfg.runtime.precision = "auto"  # half weights autocast to their own dtype
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    frozen = {p.dtype for p in rec.model.parameters() if not p.requires_grad}
    assert frozen == {torch.bfloat16}
    assert {p.dtype for p in trainable_parameters(rec).values()} == {torch.float32}
    assert rec.autocast_dtype() == torch.bfloat16


def test_4bit_gradients_survive_an_evaluation_pass(tiny_gemma: str) -> None:
    """bitsandbytes repacks 4-bit weights on a CPU with avx512_bf16 at the first eval-mode forward
    into a kernel with no backward: gradients through the frozen layers then vanished silently."""
    from emotune.config import RunConfig
    from emotune.data.schema import Example
    from emotune.models.recogniser import build_recogniser
    from test_scoring import LABELS

    cfg = RunConfig.from_dict(
        {"model": {"name": tiny_gemma, "quantization": "4bit"}, "runtime": {"precision": "fp32", "device": "cpu"}}
    ).validate()
    rec = build_recogniser(cfg, LABELS, "en", "sentiment")
    examples = [Example("a wonderful film"), Example("i hated it")]
    rec.probabilities(examples)  # a dev evaluation: eval mode, no gradients
    rec.model.train()
    batch = rec.collate(rec.encode(examples))
    logits = rec.scorer(batch.input_ids, batch.attention_mask, batch.last_index)
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0])).backward()
    first = {n: p.grad for n, p in rec.model.named_parameters() if "layers.0." in n and "lora_B" in n}
    assert first and all(g is not None and float(g.norm()) > 0 for g in first.values())
