"""Labels at call time: predict and serve with any label set, without a dataset or a run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from emotune.cli import main
from emotune.errors import EmotuneError
from emotune.inference.call_time import label_language, parse_labels, task_word
from emotune.inference.predict import Predictor


def test_predict_with_labels_needs_no_run_and_returns_the_given_labels(tiny_gemma: str) -> None:
    predictor = Predictor.zero_shot("joy,anger,sadness", model=tiny_gemma)
    preds = predictor.predict(["a wonderful film", "i hated it"])
    assert predictor.labels == ("joy", "anger", "sadness")
    for pred in preds:
        assert pred.label in {"joy", "anger", "sadness"} and list(pred.scores) == ["joy", "anger", "sadness"]
        assert sum(pred.scores.values()) == pytest.approx(1.0, abs=1e-5)
    rec = predictor.recogniser
    assert rec.prompt.task == "emotion" and rec.prompt.language == "en"
    assert rec.head.bias.abs().sum() > 0  # calibrated on a content-free input


def test_calibration_can_be_turned_off(tiny_gemma: str) -> None:
    rec = Predictor.zero_shot("negative,positive", model=tiny_gemma, calibrate=False).recogniser
    assert rec.prompt.task == "sentiment"
    assert float(rec.head.bias.abs().sum()) == 0.0


def test_labels_sharing_a_first_token_are_scored_by_whole_words(tiny_gemma: str) -> None:
    predictor = Predictor.zero_shot(["very positive", "very negative", "neutral"], model=tiny_gemma)
    assert predictor.recogniser.head.scores_whole_words
    assert predictor.predict("a wonderful film")[0].label in predictor.labels


def test_a_trained_runs_adapter_scores_new_labels(tiny_run: Path) -> None:
    predictor = Predictor.zero_shot("joy,sadness,anger,fear", adapter=tiny_run)
    assert predictor.labels == ("joy", "sadness", "anger", "fear")
    assert predictor.recogniser.method.name == "lora"
    assert predictor.predict("i loved it")[0].label in predictor.labels


def test_cli_predict_with_labels(tiny_gemma: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--labels", "joy, anger", "--model", tiny_gemma, "a wonderful film", "i hated it"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["a wonderful film", "i hated it"]
    assert all(set(r["scores"]) == {"joy", "anger"} for r in rows)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("joy", "at least two labels"),
        ("joy,Joy", "'joy' and 'Joy' are the same label"),
        ("joy,anger,joy", "'joy' is given twice"),
        ("joy,,anger", "empty label"),
        ("zebra,giraffe", "cannot tell these labels apart"),  # both unknown to the tiny tokenizer
    ],
)
def test_bad_label_sets_are_one_line_and_exit_2(
    tiny_gemma: str, labels: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "--labels", labels, "--model", tiny_gemma, "a text"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_predict_without_run_or_labels_and_no_shipped_generalist_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from emotune.models import generalist

    monkeypatch.setattr(generalist, "shipped_dir", lambda: tmp_path / "none")  # a package without it
    assert main(["predict", "a text"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--labels" in err and len(err.splitlines()) == 1


def test_a_run_with_a_trained_label_head_refuses_new_labels(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "label_head.safetensors").write_bytes(b"")
    with pytest.raises(EmotuneError, match="trained for its own labels"):
        Predictor.zero_shot("joy,anger", adapter=run)


def test_language_and_task_follow_the_labels() -> None:
    assert label_language(["高兴", "生气"]) == "zh" and label_language(["joy", "anger"]) == "en"
    assert task_word(["Positive", "negative", "neutral"]) == "sentiment"
    assert task_word(["积极", "消极"]) == "sentiment"
    assert task_word(["joy", "anger"]) == "emotion"
    assert parse_labels(" joy , anger ") == ("joy", "anger")


def test_the_http_service_answers_with_labels_given_at_start(tiny_gemma: str) -> None:
    TestClient = pytest.importorskip("fastapi.testclient").TestClient
    from emotune.inference.call_time import describe_call_time
    from emotune.serve.app import create_app
    from emotune.serve.settings import ServeSettings

    labels = parse_labels("joy,anger")
    app = create_app(
        lambda: Predictor.zero_shot(labels, tiny_gemma), ServeSettings(), describe_call_time(labels, tiny_gemma, None)
    )
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        body = client.post("/v1/predict", json={"texts": ["a wonderful film"]}).json()
        assert body["predictions"][0]["label"] in labels
        assert client.get("/v1/model").json()["labels"] == ["joy", "anger"]
