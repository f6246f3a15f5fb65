"""A trainable label head (``train.label_head: trainable``): its rows train, are saved with the
run, are what Predictor and both exports score with, and bad settings or files fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emotune.errors import EmotuneError
from emotune.inference.export import export
from emotune.inference.predict import Predictor
from emotune.models.scoring import LabelHead
from emotune.pipeline import run
from emotune.rundir import LABEL_HEAD
from helpers import assert_same_predictions, run_records, tiny_config


@pytest.fixture(scope="module")
def head_run(tiny_gemma: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("head")
    files = {}
    for split, n in (("train", 24), ("dev", 8), ("test", 8)):
        rows = [
            {"text": f"{'great fun' if i % 2 else 'dull and bad'} {i}", "label": ["negative", "positive"][i % 2]}
            for i in range(n)
        ]
        files[split] = str(folder / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = folder / "run"
    run(tiny_config(tiny_gemma, files, str(out), epochs=2, label_head="trainable"))
    return out


def test_the_head_rows_train_and_the_predictor_scores_with_them(head_run: Path) -> None:
    predictor = Predictor.load(head_run)
    rec = predictor.recogniser
    saved = rec.head.rows  # type: ignore[union-attr]
    assert saved is not None and (head_run / LABEL_HEAD).is_file()
    backbone_rows = rec.scorer.model.get_base_model().get_output_embeddings().weight[rec.head.flat_ids]  # type: ignore[union-attr]
    assert not torch.allclose(saved, backbone_rows.float())
    card = json.loads((head_run / "dataset_card.json").read_text())
    assert card["training"]["label_head"] == "trainable"
    assert_same_predictions(run_records(head_run), predictor, 1e-5)


def test_exports_keep_the_trained_head(head_run: Path, tmp_path: Path) -> None:
    merged = export(head_run, "merged", tmp_path / "merged")
    assert not merged.merged and "a trained label head cannot be merged" in merged.note
    assert_same_predictions(run_records(head_run), Predictor.load(tmp_path / "merged"), 1e-5)
    pytest.importorskip("onnxruntime")
    export(head_run, "onnx", tmp_path / "onnx")
    assert json.loads((tmp_path / "onnx" / "emotune.json").read_text())["trained_label_head"] is True
    assert_same_predictions(run_records(head_run), Predictor.load(tmp_path / "onnx"), 1e-4)


def test_a_damaged_head_file_is_a_one_line_error(head_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    export(head_run, "merged", copy)
    (copy / LABEL_HEAD).write_bytes(b"not safetensors")
    with pytest.raises(EmotuneError, match="damaged label head"):
        Predictor.load(copy)


def test_rows_of_the_wrong_shape_are_refused() -> None:
    head = LabelHead([[[1]], [[2]]])
    with pytest.raises(EmotuneError, match="expected"):
        head.make_trainable(torch.zeros(5, 4), torch.zeros(3, 4))


def test_bad_settings_are_refused(tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match=r"train\.label_head must be one of"):
        tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "a"), label_head="learned")
    with pytest.raises(EmotuneError, match="needs a method that trains"):
        tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "b"), method="zero-shot", label_head="trainable")


def test_a_run_with_a_trainable_head_resumes_from_its_checkpoint(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "r"), label_head="trainable", checkpoint_every=1)
    first = run(cfg)
    checkpoint = sorted((tmp_path / "r" / "checkpoints").iterdir())[-1]
    assert "label_head.rows" in load_file(checkpoint / "trainable.safetensors")
    again = run(cfg, resume=True)  # restores rows, both optimiser groups and the schedule
    assert again["macro_f1"] == first["macro_f1"] and again["accuracy"] == first["accuracy"]
