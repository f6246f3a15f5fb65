"""The FastAPI app: ``POST /v1/predict``, ``GET /healthz``, ``GET /readyz``, ``GET /v1/model``,
``GET /metrics`` (Prometheus) and a page to try the model at ``/``.

The model loads in a background task started by the lifespan, so the port opens at once and
``/healthz`` answers while ``/readyz`` (and ``/v1/predict``) answer 503 until the model is ready:
the convention load balancers and Kubernetes readiness probes expect.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from emotune.errors import EmotuneError, first_line
from emotune.inference.call_time import MAX_LABEL_CHARS, MAX_LABELS, parse_labels
from emotune.inference.predict import Prediction, Predictor, abstain_below
from emotune.serve.batcher import BatchKey, MicroBatcher, QueueFull
from emotune.serve.metrics import ServiceMetrics
from emotune.serve.settings import ServeSettings
from emotune.storage import read_json

log = logging.getLogger("emotune.serve")


class PredictRequest(BaseModel):
    """Texts to classify, with optional earlier dialogue turns per text (oldest first)."""

    texts: list[str] = Field(min_length=1, description="texts to classify")
    contexts: list[list[str]] | None = Field(default=None, description="earlier turns per text, oldest first")
    min_confidence: float | None = Field(
        default=None, gt=0, le=1, description="no label below this top probability (scores still given)"
    )
    labels: list[str] | None = Field(
        default=None, description=f"classify into these labels (2 to {MAX_LABELS}) instead of the model's own"
    )
    language: Literal["en", "zh"] | None = Field(
        default=None, description="the prompt's language (default: the text's)"
    )


class LabelScores(BaseModel):
    label: str | None
    labels: list[str]
    scores: dict[str, float]
    confidence: float


class PredictResponse(BaseModel):
    predictions: list[LabelScores]


class ExplainRequest(BaseModel):
    """Texts to explain: a score per word and per earlier turn for the predicted (or a named) label."""

    texts: list[str] = Field(min_length=1, description="texts to explain")
    contexts: list[list[str]] | None = Field(default=None, description="earlier turns per text, oldest first")
    label: str | None = Field(default=None, description="the label to explain (default: the predicted one)")
    method: str = Field(default="occlusion", description="occlusion or ig")


#: Explanations score one variant per word: fewer texts per request than predictions.
MAX_EXPLAIN_TEXTS = 8


def error(status: int, message: str) -> JSONResponse:
    """One JSON shape for every error: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)


def check_limits(body: PredictRequest, settings: ServeSettings) -> JSONResponse | None:
    """The first violated request limit as an error response, or None."""
    if len(body.texts) > settings.max_texts:
        return error(413, f"too many texts: {len(body.texts)} > max {settings.max_texts} per request")
    if body.contexts is not None and len(body.contexts) != len(body.texts):
        return error(422, f"got {len(body.contexts)} contexts for {len(body.texts)} texts")
    for i, text in enumerate(body.texts):
        if not text.strip():
            return error(422, f"text {i} is empty")
        if len(text) > settings.max_chars:
            return error(422, f"text {i} has {len(text)} characters > max {settings.max_chars}")
    for i, turns in enumerate(body.contexts or []):
        if any(len(t) > settings.max_chars for t in turns):
            return error(422, f"a context turn of text {i} has more than {settings.max_chars} characters")
    return None


def authorised(request: Request, settings: ServeSettings) -> bool:
    """True without an API key, or when the Bearer token equals it (constant-time compare)."""
    if not settings.api_key:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), settings.api_key.encode())


def create_app(
    load: Callable[[], Predictor], settings: ServeSettings, describe: dict[str, Any] | None = None
) -> FastAPI:
    """Builds the service.

    Args:
        load: Loads the predictor (called once, in the lifespan, in a worker thread).
        settings: Limits, batching and the optional API key.
        describe: Extra facts for ``/v1/model`` (run, dataset card).
    """
    # One model, two paths into it (batched predictions, explanations with captum's hooks): one at a time.
    lock = threading.Lock()
    state: dict[str, Any] = {"lock": lock}
    metrics = ServiceMetrics()

    async def load_in_background() -> None:
        started = time.perf_counter()
        try:
            predictor = await asyncio.to_thread(load)
        except Exception as err:  # a damaged run: stay up, say why on /readyz
            reason = first_line(err)
            state["error"] = f"model failed to load: {reason}"
            log.error(state["error"])
            return
        metrics.load_seconds, metrics.ready = time.perf_counter() - started, True

        def predict(texts: list[str], contexts: list[list[str]], key: BatchKey) -> list[Prediction]:
            metrics.record_batch(len(texts))
            labels, language = key
            with lock:
                return predictor.predict(texts, contexts, labels=labels, language=language)

        batcher = MicroBatcher(
            predict,
            settings.max_batch,
            settings.max_wait_ms,
            settings.queue_size,
        )
        batcher.start()
        state.update(predictor=predictor, batcher=batcher)
        log.info("model ready")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(load_in_background())
        yield
        loading.cancel()
        if "batcher" in state:
            await state["batcher"].stop()

    app = FastAPI(title="emotune", version="1", lifespan=lifespan)
    install_middleware(app, settings)
    install_metrics(app, metrics)
    install_routes(app, settings, state, describe or {})
    return app


def install_metrics(app: FastAPI, metrics: ServiceMetrics) -> None:
    """Counts every response (limits and auth included: this middleware is outermost) and serves
    ``GET /metrics`` (open, like the probes) and the try-it page at ``/``."""

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        metrics.record_response(request.url.path, response.status_code, time.perf_counter() - started)
        return response

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("emotune.serve").joinpath("static/index.html").read_text("utf-8"))


def install_middleware(app: FastAPI, settings: ServeSettings) -> None:
    """Body-size limit and API key, checked before any parsing."""

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/v1/") and not authorised(request, settings):
            return error(401, "missing or wrong API key (send 'Authorization: Bearer <key>')")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            return error(413, f"request body larger than {settings.max_body_bytes} bytes")
        if request.method == "POST" and len(await request.body()) > settings.max_body_bytes:
            return error(413, f"request body larger than {settings.max_body_bytes} bytes")  # chunked bodies
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"invalid request: {where or 'body'}: {first.get('msg', 'malformed JSON')}")


def install_routes(app: FastAPI, settings: ServeSettings, state: dict[str, Any], describe: dict[str, Any]) -> None:
    """The endpoints: probes, model facts, predictions and explanations."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if "predictor" not in state:
            return error(503, state.get("error", "model is loading"))
        return JSONResponse({"status": "ready"})

    @app.get("/v1/model")
    async def model() -> JSONResponse:
        if "predictor" not in state:
            return error(503, "model is loading")
        predictor: Predictor = state["predictor"]
        cfg = predictor.recogniser
        facts = {
            "labels": list(predictor.labels),
            "method": getattr(getattr(cfg, "method", None), "name", None) or _backend_name(cfg),
            "multi_label": cfg.multi_label,
            "labels_per_request": labels_per_request(predictor),
            "batches_run": state["batcher"].batches,
            "limits": {k: v for k, v in vars(settings).items() if k != "api_key"}
            | {"max_labels": MAX_LABELS, "max_label_chars": MAX_LABEL_CHARS},
        }
        return JSONResponse({**describe, **facts})

    @app.post("/v1/predict", response_model=PredictResponse)
    async def predict(body: PredictRequest) -> Any:
        if "predictor" not in state:
            return error(503, "model is loading")
        problem = check_limits(body, settings)
        if problem is not None:
            return problem
        contexts = body.contexts or [[] for _ in body.texts]
        try:
            key = request_key(state["predictor"], body)
            results: list[Prediction] = await state["batcher"].submit(body.texts, contexts, key)
            results = [abstain_below(p, body.min_confidence) for p in results]
        except QueueFull:
            return error(503, "server busy: prediction queue is full, retry later")
        except EmotuneError as err:
            return error(422, str(err))
        return {"predictions": [p.to_dict() for p in results]}

    @app.post("/v1/explain")
    async def explain(body: ExplainRequest) -> Any:
        if "predictor" not in state:
            return error(503, "model is loading")
        problem = check_limits(PredictRequest(texts=body.texts, contexts=body.contexts), settings)
        if problem is None and len(body.texts) > MAX_EXPLAIN_TEXTS:
            problem = error(413, f"too many texts: {len(body.texts)} > max {MAX_EXPLAIN_TEXTS} per explain request")
        if problem is not None:
            return problem
        predictor: Predictor = state["predictor"]

        def explain_locked() -> list[Any]:
            with state["lock"]:
                return predictor.explain(body.texts, body.label, body.contexts, method=body.method)

        try:  # a forward pass per word: off the event loop, never beside a prediction batch
            found = await asyncio.to_thread(explain_locked)
        except EmotuneError as err:
            return error(422, str(err))
        return {"explanations": [e.to_dict() for e in found]}


def request_key(predictor: Predictor, body: PredictRequest) -> BatchKey:
    """The labels and language a request asks for, checked before it queues.

    Raises:
        EmotuneError: For bad labels, or labels this predictor cannot score (HTTP 422).
    """
    if body.labels is None:
        return None, body.language
    names = parse_labels(body.labels)
    predictor.call_time_scoring()
    return names, body.language


def labels_per_request(predictor: Predictor) -> bool:
    """Whether ``labels`` may be given per request (a backend that scores new label sets)."""
    try:
        predictor.call_time_scoring()
    except EmotuneError:
        return False
    return True


def describe_run(run: Path) -> dict[str, Any]:
    """Backbone, method and dataset card of a run directory, for ``/v1/model``."""
    from emotune.config import RunConfig
    from emotune.rundir import load_run

    loaded = load_run(run)
    card_path = run / "dataset_card.json"
    card = read_json(card_path) if card_path.is_file() else None
    backbone = RunConfig.from_yaml(loaded.config_file, saved=True).model.name
    exported = backbone == "."  # an export carries its own weights
    if loaded.meta.student:  # a distilled student: its encoder, not its teacher's backbone
        backbone = loaded.meta.student
    return {"run": str(run), "backbone": str(run) if exported else backbone, "dataset_card": card}


def _backend_name(rec: Any) -> str:
    """What a backend without a PEFT method is: a distilled student, or an LLM's ONNX export."""
    name = getattr(rec, "method_name", "onnx")
    return "onnx export" if name == "onnx" else str(name)
