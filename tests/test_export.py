"""Export: a merged Hugging Face model (Predictor and plain transformers load it) and an ONNX
label scorer that predicts without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from emotune.cli import main
from emotune.errors import EmotuneError
from emotune.inference.export import ExportSource, export
from emotune.inference.predict import Predictor
from emotune.pipeline import run
from helpers import assert_same_predictions, run_records, tiny_config

pytest.importorskip("onnxruntime")


@pytest.fixture
def lora_run(tiny_run: Path) -> Path:
    """The tiny LoRA run the service tests use (conftest)."""
    return tiny_run


def test_merged_export_predicts_like_the_run(lora_run: Path, tmp_path: Path) -> None:
    result = export(lora_run, "merged", tmp_path / "merged")
    assert result.merged and (tmp_path / "merged" / "model.safetensors").is_file()
    assert_same_predictions(run_records(lora_run), Predictor.load(tmp_path / "merged"), 1e-4)


def test_labels_at_call_time_score_on_a_merged_export_and_not_on_an_onnx_one(lora_run: Path, tmp_path: Path) -> None:
    export(lora_run, "merged", tmp_path / "merged")
    texts = ["a wonderful film", "a dull film"]
    on_export = Predictor.zero_shot("good,bad", adapter=tmp_path / "merged").predict(texts)
    on_run = Predictor.zero_shot("good,bad", adapter=lora_run).predict(texts)
    for a, b in zip(on_export, on_run, strict=True):  # the adapter's effect is in the merged weights
        assert a.label == b.label and abs(a.scores["good"] - b.scores["good"]) < 1e-4
    export(lora_run, "onnx", tmp_path / "onnx")
    with pytest.raises(EmotuneError, match="an ONNX export scores only the label set it was exported with"):
        Predictor.zero_shot("good,bad", adapter=tmp_path / "onnx")


def test_int8_is_refused_for_formats_it_does_not_apply_to(lora_run: Path, tmp_path: Path) -> None:
    for fmt in ("merged", "seq-cls"):  # it was ignored: the user believed the weights were int8
        with pytest.raises(EmotuneError, match=f"int8 weights \\(quantize\\) apply to the onnx format only, not {fmt}"):
            export(lora_run, fmt, tmp_path / fmt, quantize=True)
        assert not (tmp_path / fmt).exists()


def test_an_export_never_replaces_the_run_it_comes_from(lora_run: Path) -> None:
    with pytest.raises(EmotuneError, match="the run being exported; choose another output"):
        export(lora_run, "merged", lora_run, overwrite=True)
    assert (lora_run / "adapter").is_dir() and (lora_run / "metrics.json").is_file()


def test_plain_transformers_reproduces_the_label_logits(lora_run: Path, tmp_path: Path) -> None:
    export(lora_run, "merged", tmp_path / "m")
    # The export guide's snippet: plain transformers, no emotune.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = str(tmp_path / "m")
    meta = json.loads(Path(folder, "emotune.json").read_text())
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    text = "a wonderful film"
    pieces = (tok(s, add_special_tokens=False).input_ids for s in (meta["prompt_head"], text, meta["prompt_tail"]))
    ids = [tok.bos_token_id] * meta["add_bos"] + [i for p in pieces for i in p]
    with torch.no_grad():
        last = model(torch.tensor([ids])).logits[0, -1]
    logits = [last[t].logsumexp(0) - b for t, b in zip(meta["label_token_ids"], meta["label_bias"], strict=True)]
    probs = (torch.stack(logits) / meta["temperature"]).softmax(0)
    expected = Predictor.load(lora_run).predict(text)[0]
    assert meta["labels"][int(probs.argmax())] == expected.label
    assert all(abs(float(p) - expected.scores[n]) < 1e-4 for n, p in zip(meta["labels"], probs, strict=True))


def test_a_method_that_cannot_merge_exports_its_adapter(tiny_gemma: str, sentiment_files, tmp_path: Path) -> None:
    run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "pt2"), method="ptuning-v2", epochs=1))
    result = export(tmp_path / "pt2", "merged", tmp_path / "out")
    assert not result.merged and "cannot be merged" in result.note
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    assert_same_predictions(run_records(tmp_path / "pt2"), Predictor.load(tmp_path / "out"), 1e-5)
    with pytest.raises(EmotuneError, match="cannot be merged into the backbone, so it has no ONNX export"):
        export(tmp_path / "pt2", "onnx", tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()
    assert (
        main(["export", "--run", str(tmp_path / "pt2"), "--format", "seq-cls", "--output", str(tmp_path / "sc")]) == 2
    )
    assert not (tmp_path / "sc").exists()
    with pytest.raises(EmotuneError, match="so a label set given at export cannot be exported"):
        export(ExportSource.of_labels("negative,positive", tmp_path / "pt2"), "merged", tmp_path / "labels")
    assert not (tmp_path / "labels").exists()


def test_seq_cls_export_keeps_a_calibrated_runs_bias_and_temperature(tiny_run: Path, tmp_path: Path) -> None:
    """The bias goes into the config for the client; the temperature into the score rows."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    export(tiny_run, "seq-cls", tmp_path / "seq")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "seq")
    tok = AutoTokenizer.from_pretrained(tmp_path / "seq")
    block = model.config.emotune
    predictor = Predictor.load(tiny_run)
    assert block["temperature"] == pytest.approx(predictor.recogniser.temperature)
    logits = model(**tok("a wonderful film", return_tensors="pt")).logits[0] - torch.tensor(block["label_bias"])
    probs = dict(zip(model.config.id2label.values(), logits.softmax(-1).tolist(), strict=True))
    assert probs == pytest.approx(predictor.predict("a wonderful film")[0].scores, abs=1e-4)


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_onnx_export_predicts_like_the_run(lora_run: Path, tmp_path: Path, int8: bool) -> None:
    export(lora_run, "onnx", tmp_path / "onnx", quantize=int8)
    predictor = Predictor.load(tmp_path / "onnx")
    assert type(predictor.recogniser).__name__ == "OnnxRecogniser"
    records = run_records(lora_run)
    if not int8:
        assert_same_predictions(records, predictor, 1e-4)
        return
    preds = predictor.predict([str(r["text"]) for r in records])  # int8 weights: close, not equal
    assert sum(p.label == r["label"] for p, r in zip(preds, records, strict=True)) >= len(records) - 1


def test_onnx_export_predicts_a_file_without_torch(lora_run: Path, tmp_path: Path) -> None:
    export(lora_run, "onnx", tmp_path / "onnx")
    source = tmp_path / "in.txt"
    source.write_text("a wonderful film\ni hated it\n")
    # Importing torch or peft fails in this process, as in an environment without them.
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['peft'] = None; sys.modules['accelerate'] = None\n"
        "from emotune.cli import main\n"
        f"code = main(['predict', '--run', {str(tmp_path / 'onnx')!r}, '--input', {str(source)!r}, "
        f"'--output', {str(tmp_path / 'out.jsonl')!r}])\n"
        "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n"
        "raise SystemExit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    expected = Predictor.load(lora_run).predict(["a wonderful film", "i hated it"])
    assert [r["label"] for r in rows] == [p.label for p in expected]


def test_an_onnx_export_from_the_cli_prints_its_result_not_the_exporters_stages(lora_run: Path, tmp_path: Path) -> None:
    argv = ["export", "--run", str(lora_run), "--format", "onnx", "--output", str(tmp_path / "onnx")]
    code = f"from emotune.cli import main; raise SystemExit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout + done.stderr
    # torch's stage lines, the optimiser's INFO lines and the warnings raised in torch.onnx's own
    # modules (their file paths) stay out of a user's terminal.
    for noise in ("[torch.onnx]", "Replaced initializer", "constant folding", "torchvision", "torch/onnx/"):
        assert noise not in said, said[-2000:]
    assert (tmp_path / "onnx" / "model.onnx").is_file()


def test_export_errors(lora_run: Path, tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match="unknown export format 'gguf'"):
        export(lora_run, "gguf", tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(EmotuneError, match="holds files emotune did not write"):
        export(lora_run, "merged", tmp_path / "busy", overwrite=True)
    export(lora_run, "merged", tmp_path / "earlier")
    with pytest.raises(EmotuneError, match="exists; pass overwrite"):
        export(lora_run, "merged", tmp_path / "earlier")


def test_the_export_guide_snippet_gives_the_runs_scores(
    lora_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ast

    export(lora_run, "merged", tmp_path / "m")
    readme = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "export.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    snippet = next(b for b in blocks if "emotune.json" in b)
    assert len(snippet.strip().splitlines()) <= 10
    exec(snippet.replace("models/sst2-merged", str(tmp_path / "m")), {})
    shown = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    expected = Predictor.load(lora_run).predict("what a wonderful film")[0].scores
    assert all(abs(shown[k] - v) < 1e-4 for k, v in expected.items())


def test_whole_word_scoring_survives_both_exports(tiny_gemma: str, sentiment_files, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"), epochs=1)
    cfg.data.verbalisers = [["very bad"], ["very good"]]
    cfg.data.label_tokens = "all"
    run(cfg)
    records = run_records(tmp_path / "run")
    for fmt in ("merged", "onnx"):
        export(tmp_path / "run", fmt, tmp_path / fmt)
        assert_same_predictions(records, Predictor.load(tmp_path / fmt), 1e-4)
    meta = json.loads((tmp_path / "merged" / "emotune.json").read_text())
    assert meta["label_tokens"] == "all" and [len(w) for words in meta["label_word_ids"] for w in words] == [2, 2]


LABELS = "joy,sadness,anger,fear"
TEXTS = ["a wonderful film", "i hated every minute", "what a dull story"]


def test_a_label_set_given_at_export_predicts_like_its_call_time_predictor(tiny_run: Path, tmp_path: Path) -> None:
    """Labels on a run's adapter (the shipped generalist's case): merged, ONNX and seq-cls."""
    from transformers import pipeline

    source = ExportSource.of_labels(LABELS, tiny_run, language="en")
    expected = Predictor.zero_shot(LABELS, adapter=tiny_run, language="en").predict(TEXTS)
    for fmt in ("merged", "onnx"):
        result = export(source, fmt, tmp_path / fmt)
        assert f"labels joy, sadness, anger, fear, scored by {tiny_run}, prompt in en" in result.note
        exported = Predictor.load(tmp_path / fmt)
        assert exported.labels == tuple(LABELS.split(","))
        for got, want in zip(exported.predict(TEXTS), expected, strict=True):
            assert got.label == want.label and got.scores == pytest.approx(want.scores, abs=1e-4)
    export(source, "seq-cls", tmp_path / "seq")
    rows = pipeline("text-classification", model=str(tmp_path / "seq"), top_k=None)(TEXTS)
    for row, want in zip(rows, expected, strict=True):
        assert {d["label"]: d["score"] for d in row} == pytest.approx(want.scores, abs=1e-4)


def test_export_flags_for_labels(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "seq"
    args = ["export", "--run", str(tiny_run), "--labels", "joy,fear", "--format", "seq-cls", "--output", str(out)]
    assert main([*args, "--language", "en"]) == 0
    note = json.loads(capsys.readouterr().out)["note"]
    assert note.endswith(f"labels joy, fear, scored by {tiny_run}, prompt in en")
    assert main(["export", "--run", str(tiny_run), "--task", "emotion", "--output", str(tmp_path / "x")]) == 2
    assert "go with --labels; a run has its own" in capsys.readouterr().err
    assert main(["export", "--labels", "joy", "--run", str(tiny_run), "--output", str(tmp_path / "y")]) == 2
    assert "at least two labels" in capsys.readouterr().err
    assert main([*args, "--language", "en"]) == 2  # the output exists: refused before any weights load
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
