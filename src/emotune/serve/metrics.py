"""Prometheus metrics for ``GET /metrics``, in the text exposition format (no extra dependency).

Requests and responses by path and status code, texts per forward pass, request latency, and the
model's load time and readiness.
"""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus histograms are exposed."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        """Records one observation."""
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        """The histogram's exposition lines."""
        out = [f'{name}_bucket{{le="{b:g}"}} {c}' for b, c in zip(self.buckets, self.counts, strict=True)]
        out += [
            f'{name}_bucket{{le="+Inf"}} {self.count}',
            f"{name}_sum {self.total:.6f}",
            f"{name}_count {self.count}",
        ]
        return out


class ServiceMetrics:
    """Counters and histograms the app updates; thread-safe (the model runs in a worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.responses: dict[tuple[str, int], int] = defaultdict(int)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_texts = Histogram(BATCH_BUCKETS)
        self.load_seconds: float | None = None
        self.ready = False

    def record_response(self, path: str, code: int, seconds: float) -> None:
        """One answered request (any path, any status)."""
        with self._lock:
            self.responses[(path, code)] += 1
            if path == "/v1/predict":
                self.latency.observe(seconds)

    def record_batch(self, texts: int) -> None:
        """One forward pass over ``texts`` texts."""
        with self._lock:
            self.batch_texts.observe(texts)

    def render(self) -> str:
        """The exposition text."""
        with self._lock:
            responses = [
                f'emotune_responses_total{{path="{p}",code="{c}"}} {n}' for (p, c), n in sorted(self.responses.items())
            ]
            errors = sum(n for (_, c), n in self.responses.items() if c >= 400)
            lines = _family("emotune_responses_total", "counter", "HTTP responses by path and status code.", responses)
            lines += _family(
                "emotune_errors_total",
                "counter",
                "Responses with a 4xx or 5xx code.",
                [f"emotune_errors_total {errors}"],
            )
            lines += _family(
                "emotune_request_seconds",
                "histogram",
                "Latency of /v1/predict.",
                self.latency.lines("emotune_request_seconds"),
            )
            lines += _family(
                "emotune_batch_texts",
                "histogram",
                "Texts per forward pass.",
                self.batch_texts.lines("emotune_batch_texts"),
            )
            ready = [f"emotune_model_ready {int(self.ready)}"]
            lines += _family("emotune_model_ready", "gauge", "1 once the model answers.", ready)
            if self.load_seconds is not None:
                load = [f"emotune_model_load_seconds {self.load_seconds:.3f}"]
                lines += _family("emotune_model_load_seconds", "gauge", "Time to load the model.", load)
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str, samples: list[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]
