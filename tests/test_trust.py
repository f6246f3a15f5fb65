"""Predictions a person can trust: calibration metrics, temperature scaling, abstention and
explanations (occlusion and integrated gradients), in Python, on the CLI and over HTTP."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import NEGATIVE, POSITIVE
from emotune.calibration import (
    calibration_metrics,
    ece_floor,
    fit_temperature,
    multilabel_calibration,
    selective,
)
from emotune.cli import main
from emotune.errors import EmotuneError
from emotune.inference.predict import Predictor
from emotune.pipeline import run
from emotune.rundir import RunMeta
from emotune.storage import read_json, write_json
from helpers import tiny_config


def test_calibration_metrics_on_hand_made_probabilities() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    gold = [0, 1, 1, 0]
    m = calibration_metrics(probs, gold)
    # Bins: 0.6 (right), 0.7 (right), 0.8 (wrong), 0.9 (right) -> gaps 0.4, 0.3, 0.8, 0.1, each 1/4.
    assert m["ece"] == pytest.approx((0.4 + 0.3 + 0.8 + 0.1) / 4)
    assert m["mce"] == pytest.approx(0.8)
    brier = ((0.1**2 + 0.1**2) + (0.8**2 + 0.8**2) + (0.3**2 + 0.3**2) + (0.4**2 + 0.4**2)) / 4
    assert m["brier"] == pytest.approx(brier)
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.7, 0.6])))
    assert sum(b["n"] for b in m["reliability"]) == 4 and len(m["reliability"]) == 15


def test_perfectly_calibrated_bins_have_no_error() -> None:
    probs = np.array([[0.75, 0.25]] * 4)
    assert calibration_metrics(probs, [0, 0, 0, 1])["ece"] == pytest.approx(0.0)


def test_ece_floor_is_the_ece_of_a_perfectly_calibrated_model_on_as_many_texts() -> None:
    certain = ece_floor(np.eye(3)[[0, 1, 2, 0]])
    assert certain == {"ece_floor": 0.0, "ece_floor_p95": 0.0}  # confidence 1: always right
    # One bin at confidence 0.7: ECE = |share right - 0.7|, whose mean over draws is
    # sqrt(0.7 * 0.3 / n) * sqrt(2 / pi) (the mean absolute deviation of a binomial share).
    small, large = (ece_floor(np.array([[0.7, 0.3]] * n), draws=2000) for n in (400, 10_000))
    assert small["ece_floor"] == pytest.approx(np.sqrt(0.21 / 400) * np.sqrt(2 / np.pi), rel=0.1)
    assert large["ece_floor"] == pytest.approx(np.sqrt(0.21 / 10_000) * np.sqrt(2 / np.pi), rel=0.1)
    assert small["ece_floor"] < small["ece_floor_p95"] and ece_floor(np.zeros((0, 2))) == {}


def test_multilabel_calibration_is_per_label() -> None:
    probs = np.array([[0.9, 0.2], [0.8, 0.6]])
    m = multilabel_calibration(probs, [[0], [0]], ["a", "b"])
    # a: confidences 0.9, 0.8, both right -> gaps 0.1 and 0.2; b: 0.8 right, 0.6 wrong -> 0.2 and 0.6.
    assert m["ece_per_label"] == {"a": pytest.approx(0.15), "b": pytest.approx(0.4)}
    assert m["ece"] == pytest.approx(0.275)


def test_temperature_fitting_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 5))
    scaled = np.exp(logits / 2.5)
    probs = scaled / scaled.sum(-1, keepdims=True)
    gold = [rng.choice(5, p=p) for p in probs]
    assert fit_temperature(logits, gold) == pytest.approx(2.5, rel=0.05)


def test_selective_accuracy_and_risk_coverage() -> None:
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    sel = selective(probs, [0, 0, 1, 0], points=4)
    assert sel["accuracy_at_coverage"]["0.5"] == 1.0 and sel["accuracy_at_coverage"]["1.0"] == 0.75
    assert sel["risk_coverage"] == [[0.25, 0.0], [0.5, 0.0], [0.75, pytest.approx(1 / 3, abs=1e-6)], [1.0, 0.25]]


def test_a_run_from_before_temperature_scaling_loads_with_temperature_1(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    meta = read_json(old / "run.json")
    meta.pop("temperature", None)
    write_json(old / "run.json", meta)
    assert Predictor.load(old).recogniser.temperature == 1.0
    labels = {"names": ["a", "b"]}
    assert RunMeta.from_dict({"labels": labels}).temperature == 1.0
    assert RunMeta.from_dict({"labels": labels, "temperature": 0.0}).temperature == 1.0


@pytest.fixture(scope="module")
def pair(tiny_gemma: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The same tiny run twice: with temperature scaling (the default) and with --no-temperature."""
    folder = tmp_path_factory.mktemp("trust")
    rows = [{"text": t, "label": "positive"} for t in POSITIVE] + [{"text": t, "label": "negative"} for t in NEGATIVE]
    files = {}
    for split in ("train", "dev", "test"):
        files[split] = str(folder / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    run(tiny_config(tiny_gemma, files, str(folder / "scaled"), epochs=3))
    run(tiny_config(tiny_gemma, files, str(folder / "raw"), epochs=3, temperature=False))
    return folder / "scaled", folder / "raw", files


def test_temperature_is_fitted_stored_and_changes_no_prediction(pair: tuple[Path, Path, dict[str, str]]) -> None:
    scaled, raw, _ = pair
    temperature = read_json(scaled / "run.json")["temperature"]
    assert temperature != 1.0 and "temperature" not in read_json(raw / "run.json")
    a, b = read_json(scaled / "metrics.json"), read_json(raw / "metrics.json")
    for key in ("accuracy", "macro_f1", "weighted_f1", "ua"):
        assert a[key] == b[key]
    assert a["temperature"] == pytest.approx(temperature) and b["temperature"] == 1.0
    assert a["ece_before_temperature"] == pytest.approx(b["ece"], abs=1e-4)  # before = the unscaled run
    assert a["nll"] <= a["nll_before_temperature"] + 1e-9  # fitted by NLL (on dev = test here)
    assert json.loads((scaled / "trained.json").read_text())["recipe"]["temperature"] == pytest.approx(
        temperature, abs=1e-4
    )
    assert a["ece_floor"] < a["ece_floor_p95"]  # beside ECE: what perfect calibration shows on as many texts
    try:  # the plot needs matplotlib, an extra
        import matplotlib  # noqa: F401

        assert (scaled / "reliability.png").is_file()
    except ImportError:
        pass
    texts = POSITIVE + NEGATIVE
    with_t, without_t = Predictor.load(scaled).predict(texts), Predictor.load(raw).predict(texts)
    assert [p.label for p in with_t] == [p.label for p in without_t]
    assert any(abs(p.confidence - q.confidence) > 1e-4 for p, q in zip(with_t, without_t, strict=True))


def test_abstention_in_python_and_on_the_cli(
    pair: tuple[Path, Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    scaled, _, _ = pair
    predictor = Predictor.load(scaled)
    sure = predictor.predict("a wonderful film")[0]
    unsure = predictor.predict("a wonderful film", min_confidence=1.0)[0]
    assert unsure.label is None and unsure.labels == () and unsure.scores == sure.scores
    assert predictor.predict("a wonderful film", min_confidence=sure.confidence)[0].label == sure.label
    assert main(["predict", "--run", str(scaled), "--min-confidence", "1", "a wonderful film"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["label"] is None and row["labels"] == [] and row["confidence"] == pytest.approx(sure.confidence)
    for bad in ("0", "1.5", "-0.2"):
        assert main(["predict", "--run", str(scaled), "--min-confidence", bad, "a text"]) == 2
        err = capsys.readouterr().err.strip()
        assert "--min-confidence must be in (0, 1]" in err and len(err.splitlines()) == 1


def _planted(tmp_path: Path) -> dict[str, str]:
    """A task decided by one word among filler words: 'wonderful' (positive), 'terrible'
    (negative), or neither (neutral), so that each planted word is what its label rests on."""
    filler = ["a", "film", "story", "the", "of", "and", "movie", "acting", "it", "with"]
    rng = random.Random(0)
    rows = []
    for i in range(96):
        words = rng.sample(filler, 4)
        label = ("negative", "neutral", "positive")[i % 3]
        if label != "neutral":
            words.insert(rng.randrange(5), "wonderful" if label == "positive" else "terrible")
        rows.append({"text": " ".join(words), "label": label})
    files = {}
    for split, part in (("train", rows), ("dev", rows[:24]), ("test", rows[24:48])):
        files[split] = str(tmp_path / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in part))
    return files


@pytest.fixture(scope="module")
def planted_run(tiny_gemma: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("planted")
    cfg = tiny_config(tiny_gemma, _planted(folder), str(folder / "run"), epochs=4)
    cfg.data.labels = ["negative", "neutral", "positive"]
    run(cfg)
    return folder / "run"


@pytest.mark.parametrize("method", ["occlusion", "ig"])
def test_explain_gives_the_planted_word_the_top_score(planted_run: Path, method: str) -> None:
    if method == "ig":
        pytest.importorskip("captum")
    predictor = Predictor.load(planted_run)
    for text, label in (("the film wonderful of it", "positive"), ("acting terrible and the story", "negative")):
        exp = predictor.explain(text, method=method)[0]
        assert exp.label == label and exp.method == method
        assert [w for w, _ in exp.words] == text.split()
        top = max(exp.words, key=lambda w: w[1])[0]
        assert top in ("wonderful", "terrible")
        other = predictor.explain(text, label="neutral", method=method)[0]
        assert min(other.words, key=lambda w: w[1])[0] == top  # the same word speaks against "neutral"


def test_explain_scores_earlier_turns(planted_run: Path) -> None:
    exp = Predictor.load(planted_run).explain("the film", contexts=[["it was terrible", "and the story"]])[0]
    assert [t for t, _ in exp.turns] == ["it was terrible", "and the story"]
    assert all(isinstance(s, float) for _, s in exp.turns)


def test_explain_bad_input_is_one_line(planted_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    predictor = Predictor.load(planted_run)
    with pytest.raises(EmotuneError, match="not one of the run's labels"):
        predictor.explain("a film", label="joy")
    with pytest.raises(EmotuneError, match="at most 256"):
        predictor.explain(" ".join(["film"] * 300))
    capsys.readouterr()
    for argv in (["a film", "--label", "joy"], ["  "], ["a film", "--method", "lime"]):
        assert main(["explain", "--run", str(planted_run), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("emotune: error:") and len(err.splitlines()) == 1


def test_explain_on_the_cli_prints_words_and_scores(planted_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--run", str(planted_run), "the film wonderful"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["text"] == "the film wonderful" and [w for w, _ in row["words"]] == ["the", "film", "wonderful"]


def test_http_explain_and_abstention(planted_run: Path) -> None:
    TestClient = pytest.importorskip("fastapi.testclient").TestClient
    from emotune.serve.app import create_app
    from emotune.serve.settings import ServeSettings

    def load() -> Predictor:
        predictor = Predictor.load(planted_run)
        predictor.recogniser.temperature = 1e3  # no probability of 1.0, so min_confidence 1 abstains
        return predictor

    with TestClient(create_app(load, ServeSettings())) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        body = client.post("/v1/explain", json={"texts": ["the film wonderful"]}).json()
        words = body["explanations"][0]["words"]
        assert [w for w, _ in words] == ["the", "film", "wonderful"]
        assert max(words, key=lambda w: w[1])[0] == "wonderful"
        assert client.post("/v1/explain", json={"texts": ["a film"], "label": "joy"}).status_code == 422
        answer = client.post("/v1/predict", json={"texts": ["the film wonderful"], "min_confidence": 1.0}).json()
        assert answer["predictions"][0]["label"] is None and answer["predictions"][0]["scores"]
        assert client.post("/v1/predict", json={"texts": ["a"], "min_confidence": 0}).status_code == 422
