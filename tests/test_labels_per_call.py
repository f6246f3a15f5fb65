"""Labels per call (`Predictor.predict(labels=...)`, ``labels`` per HTTP request), the prompt's
language from each text, and the bound on a label set."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import AUTH
from emotune.cli import main
from emotune.errors import EmotuneError
from emotune.inference.call_time import MAX_LABEL_CHARS, MAX_LABELS, parse_labels, text_language
from emotune.inference.predict import Predictor

CHINESE = "这部电影真的太好看了，我很喜欢"


def test_labels_per_call_on_a_frozen_backbone(tiny_gemma: str) -> None:
    predictor = Predictor.zero_shot("negative,positive", model=tiny_gemma)
    emotions = predictor.predict(["a wonderful film", "i hated it"], labels=["joy", "anger", "fear"])
    assert all(list(p.scores) == ["joy", "anger", "fear"] for p in emotions)
    assert all(sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5) for p in emotions)
    own = predictor.predict("a wonderful film")[0]
    assert list(own.scores) == ["negative", "positive"]  # the predictor's own labels are unchanged


def test_labels_per_call_equal_a_predictor_made_for_them(tiny_gemma: str) -> None:
    per_call = Predictor.zero_shot("negative,positive", model=tiny_gemma).predict(
        ["a wonderful film"], labels="joy,anger,fear"
    )[0]
    made = Predictor.zero_shot("joy,anger,fear", model=tiny_gemma).predict(["a wonderful film"])[0]
    assert per_call.scores == pytest.approx(made.scores, abs=1e-5)


def test_a_runs_predictor_takes_labels_per_call_without_its_temperature(tiny_run: Path) -> None:
    predictor = Predictor.load(tiny_run)
    pred = predictor.predict("i loved it", labels=["joy", "sadness"])[0]
    assert set(pred.scores) == {"joy", "sadness"}
    sets = predictor.call_time_scoring()
    assert sets.temperature == 1.0 and not sets.contextual  # one-corpus temperature fits only its labels


def test_the_prompt_language_follows_the_text(tiny_gemma: str) -> None:
    assert text_language(CHINESE) == "zh" and text_language("a wonderful film") == "en"
    assert text_language("I watched 《霸王别姬》 yesterday and loved it") == "en"  # a third of the letters
    predictor = Predictor.zero_shot("negative,positive", model=tiny_gemma)
    predictor.predict([CHINESE, "a wonderful film"])
    languages = {lang for _, lang in predictor.call_time_scoring()._cache}
    assert languages == {"en", "zh"}
    built = predictor.call_time_scoring().recogniser(("negative", "positive"), "zh")
    assert built.prompt.language == "zh" and built.labels.names == ("negative", "positive")
    fixed = Predictor.zero_shot("negative,positive", model=tiny_gemma, language="en")
    fixed.predict([CHINESE])
    assert {lang for _, lang in fixed.call_time_scoring()._cache} == {"en"}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([f"label{i}" for i in range(MAX_LABELS + 1)], f"at most {MAX_LABELS}"),
        (["joy", "x" * (MAX_LABEL_CHARS + 1)], f"over {MAX_LABEL_CHARS} characters"),
        (["joy", "joy"], "given twice"),
        ([], "at least two labels"),
    ],
)
def test_the_label_set_is_bounded(labels: list[str], message: str) -> None:
    with pytest.raises(EmotuneError, match=message):
        parse_labels(labels)


def test_cli_refuses_too_many_labels_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    labels = ",".join(f"l{i}" for i in range(MAX_LABELS + 1))
    assert main(["predict", "--labels", labels, "--frozen-backbone", "a text"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"at most {MAX_LABELS}" in err and len(err.splitlines()) == 1


def test_labels_per_http_request(server: str) -> None:
    info = httpx.get(f"{server}/v1/model", headers=AUTH).json()
    assert info["labels_per_request"] is True and info["limits"]["max_labels"] == MAX_LABELS
    body = {"texts": ["a wonderful film", "i hated it"], "labels": ["joy", "anger", "fear"]}
    reply = httpx.post(f"{server}/v1/predict", json=body, headers=AUTH)
    assert reply.status_code == 200
    assert all(set(p["scores"]) == {"joy", "anger", "fear"} for p in reply.json()["predictions"])
    plain = httpx.post(f"{server}/v1/predict", json={"texts": ["a wonderful film"]}, headers=AUTH).json()
    assert set(plain["predictions"][0]["scores"]) == {"negative", "positive"}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([f"l{i}" for i in range(MAX_LABELS + 1)], f"at most {MAX_LABELS}"),
        (["joy", "y" * (MAX_LABEL_CHARS + 1)], "characters"),
        (["joy", "joy"], "given twice"),
        (["joy"], "at least two labels"),
    ],
)
def test_bad_labels_per_http_request_are_422(server: str, labels: list[str], message: str) -> None:
    body = {"texts": ["a wonderful film"], "labels": labels}
    reply = httpx.post(f"{server}/v1/predict", json=body, headers=AUTH)
    assert reply.status_code == 422 and message in reply.json()["error"]


def test_requests_with_different_labels_are_batched_apart(server: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sets = [["joy", "anger"], ["sadness", "fear", "joy"], None]

    def ask(labels: list[str] | None) -> dict[str, object]:
        body: dict[str, object] = {"texts": ["a wonderful film"]} | ({"labels": labels} if labels else {})
        with httpx.Client(timeout=60) as client:
            return client.post(f"{server}/v1/predict", json=body, headers=AUTH).json()

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(ask, sets * 2))
    for labels, reply in zip(sets * 2, replies, strict=True):
        scores = reply["predictions"][0]["scores"]  # type: ignore[index]
        assert set(scores) == set(labels or ["negative", "positive"])


def test_the_micro_batcher_never_mixes_label_sets() -> None:
    import asyncio

    from emotune.inference.predict import Prediction
    from emotune.serve.batcher import BatchKey, MicroBatcher

    calls: list[tuple[BatchKey, list[str]]] = []

    def fake(texts: list[str], contexts: list[list[str]], key: BatchKey) -> list[Prediction]:
        calls.append((key, texts))
        return [Prediction(",".join(key[0] or ("own",)) + f"|{t}") for t in texts]

    keys: list[BatchKey] = [(("a", "b"), None), (None, None), (("a", "b"), "zh"), (("c", "d"), None)] * 3

    async def run() -> list[list[Prediction]]:
        batcher = MicroBatcher(fake, 32, 50, 100)
        batcher.start()
        found = await asyncio.gather(*(batcher.submit([f"t{i}"], [[]], k) for i, k in enumerate(keys)))
        await batcher.stop()
        return found

    results = asyncio.run(run())
    for i, (key, result) in enumerate(zip(keys, results, strict=True)):
        assert result[0].label == ",".join(key[0] or ("own",)) + f"|t{i}"
    assert len(calls) == len(set(keys))  # one pass per label set and language, all requests gathered


@pytest.mark.parametrize(
    ("labels", "task"), [(["negative", "positive"], "sentiment"), (["joy", "anger", "sadness"], "emotion")]
)
def test_the_task_word_of_own_files_follows_their_labels(tmp_path: Path, labels: list[str], task: str) -> None:
    from emotune.config import DataConfig
    from emotune.data import load_data

    rows = "".join(f'{{"text": "text {i}", "label": "{labels[i % len(labels)]}"}}\n' for i in range(6))
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text(rows)
    files = {f"{s}_file": str(tmp_path / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert load_data(DataConfig(dataset="files", labels=labels, **files)).task == task
    overridden = DataConfig(dataset="files", labels=labels, task_word="mood", **files)
    assert load_data(overridden).task == "mood"
