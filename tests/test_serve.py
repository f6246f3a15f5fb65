"""The HTTP service over real HTTP on loopback: uvicorn in a subprocess, a real client."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import AUTH, KEY, NEGATIVE, POSITIVE
from emotune.inference.predict import Predictor


def test_health_ready_and_model(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server}/readyz").json() == {"status": "ready"}
    info = httpx.get(f"{server}/v1/model", headers=AUTH).json()
    assert info["labels"] == ["negative", "positive"] and info["method"] == "lora"
    assert info["dataset_card"]["split_sizes"]["train"] == 16
    assert "api_key" not in info["limits"]
    assert httpx.get(f"{server}/openapi.json").json()["paths"]["/v1/predict"]


def test_predict_matches_the_python_api(server: str, tiny_run: Path) -> None:
    texts = ["a wonderful film", "i hated it"]
    reply = httpx.post(f"{server}/v1/predict", json={"texts": texts}, headers=AUTH)
    assert reply.status_code == 200
    got = reply.json()["predictions"]
    expected = Predictor.load(tiny_run).predict(texts)
    for pred, ref in zip(got, expected, strict=True):
        assert pred["label"] == ref.label and pred["labels"] == [ref.label]
        assert sum(pred["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        assert pred["scores"] == pytest.approx(ref.scores, abs=1e-5)
    with_context = {"texts": ["good fun"], "contexts": [["i loved it", "great great great"]]}
    assert httpx.post(f"{server}/v1/predict", json=with_context, headers=AUTH).status_code == 200


def test_concurrent_clients_are_micro_batched(server: str) -> None:
    texts = POSITIVE + NEGATIVE
    before = httpx.get(f"{server}/v1/model", headers=AUTH).json()["batches_run"]
    alone = {t: httpx.post(f"{server}/v1/predict", json={"texts": [t]}, headers=AUTH).json() for t in texts}
    after_alone = httpx.get(f"{server}/v1/model", headers=AUTH).json()["batches_run"]
    assert after_alone - before == len(texts)  # one at a time: one forward pass each

    def ask(text: str) -> dict[str, object]:
        with httpx.Client(timeout=60) as client:
            return client.post(f"{server}/v1/predict", json={"texts": [text]}, headers=AUTH).json()

    with ThreadPoolExecutor(len(texts)) as pool:
        together = dict(zip(texts, pool.map(ask, texts), strict=True))
    batches = httpx.get(f"{server}/v1/model", headers=AUTH).json()["batches_run"] - after_alone
    assert batches < len(texts), "concurrent requests were not merged into shared forward passes"
    for text in texts:  # batching (padding) must not change any answer
        a, b = alone[text]["predictions"][0], together[text]["predictions"][0]  # type: ignore[index]
        assert a["label"] == b["label"] and a["scores"] == pytest.approx(b["scores"], abs=1e-4)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"texts": ["a"] * 5}, 413, "too many texts"),
        ({"texts": ["x" * 61]}, 422, "61 characters"),
        ({"texts": ["   "]}, 422, "text 0 is empty"),
        ({"texts": []}, 422, "texts"),
        ({"sentences": ["a"]}, 422, "texts"),
        ({"texts": ["a"], "contexts": [["b"], ["c"]]}, 422, "2 contexts for 1 texts"),
        ({"texts": ["word " * 500]}, 413, "larger than 2000 bytes"),
    ],
)
def test_bad_requests(server: str, body: dict[str, object], status: int, message: str) -> None:
    reply = httpx.post(f"{server}/v1/predict", json=body, headers=AUTH)
    assert reply.status_code == status and message in reply.json()["error"]


def test_malformed_json_and_wrong_keys(server: str) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    reply = httpx.post(f"{server}/v1/predict", content=b"{not json", headers=headers)
    assert reply.status_code == 422 and "invalid request" in reply.json()["error"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        reply = httpx.post(f"{server}/v1/predict", json={"texts": ["a"]}, headers=headers)
        assert reply.status_code == 401 and "API key" in reply.json()["error"]
    assert httpx.get(f"{server}/healthz").status_code == 200  # probes need no key


class _FakePredictor:
    labels = ("negative", "positive")

    def predict(self, texts, contexts=None, labels=None, language=None):  # type: ignore[no-untyped-def]
        from emotune.inference.predict import Prediction

        return [Prediction("positive", {"negative": 0.1, "positive": 0.9}, ("positive",)) for _ in texts]


def test_the_port_answers_while_the_model_loads() -> None:
    import threading

    from fastapi.testclient import TestClient

    from emotune.serve.app import create_app
    from emotune.serve.settings import ServeSettings

    gate = threading.Event()

    def slow_load() -> _FakePredictor:
        assert gate.wait(10)
        return _FakePredictor()

    with TestClient(create_app(slow_load, ServeSettings())) as client:  # type: ignore[arg-type]
        assert client.get("/healthz").status_code == 200
        loading = client.get("/readyz")
        assert loading.status_code == 503 and loading.json() == {"error": "model is loading"}
        assert client.post("/v1/predict", json={"texts": ["hi"]}).status_code == 503
        gate.set()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.post("/v1/predict", json={"texts": ["hi"]}).json()["predictions"][0]["label"] == "positive"


def test_a_model_that_fails_to_load_says_why_on_readyz() -> None:

    from fastapi.testclient import TestClient

    from emotune.errors import EmotuneError
    from emotune.serve.app import create_app
    from emotune.serve.settings import ServeSettings

    def broken() -> _FakePredictor:
        raise EmotuneError("runs/x/adapter: cannot load adapter (bad header)")

    with TestClient(create_app(broken, ServeSettings())) as client:  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while "failed" not in client.get("/readyz").text and time.monotonic() < deadline:
            time.sleep(0.02)
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"error": "model failed to load: runs/x/adapter: cannot load adapter (bad header)"}


def test_metrics_in_the_prometheus_text_format(server: str) -> None:
    httpx.post(f"{server}/v1/predict", json={"texts": ["a wonderful film"]}, headers=AUTH)
    httpx.post(f"{server}/v1/predict", json={"texts": [""]}, headers=AUTH)  # 422
    text = httpx.get(f"{server}/metrics").text  # open, like the probes
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.split()[1] in ("HELP", "TYPE")
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)  # every sample line is "name{labels} number"
    assert samples['emotune_responses_total{path="/v1/predict",code="200"}'] >= 1
    assert samples['emotune_responses_total{path="/v1/predict",code="422"}'] >= 1
    assert samples["emotune_errors_total"] >= 1 and samples["emotune_model_ready"] == 1
    assert samples["emotune_model_load_seconds"] > 0
    assert samples['emotune_request_seconds_bucket{le="+Inf"}'] == samples["emotune_request_seconds_count"] >= 2
    assert samples["emotune_batch_texts_count"] >= 1
    assert "# TYPE emotune_request_seconds histogram" in text


def test_the_page_is_served(server: str) -> None:
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="text"' in page.text and "v1/predict" in page.text


def test_an_address_that_cannot_be_listened_on_is_one_line_before_any_model_loads(capsys) -> None:
    import socket

    from emotune.cli import main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        # A run that does not exist: the address is checked first, so no run (or model) is read.
        assert main(["serve", "--run", "no-such-run", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in capsys.readouterr().err
    assert main(["serve", "--run", "no-such-run", "--port", "99999"]) == 2
    assert "--port must be in 0-65535, got 99999" in capsys.readouterr().err
