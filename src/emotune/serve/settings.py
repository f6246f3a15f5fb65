"""Service limits and options; validated once at startup."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from emotune.errors import EmotuneError


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of ``emotune serve``.

    Attributes:
        max_texts: Most texts in one request (more: 413).
        max_chars: Most characters in one text or context turn (more: 422).
        max_body_bytes: Largest request body (more: 413).
        max_batch: Most texts in one forward pass; concurrent requests are merged up to it.
        max_wait_ms: How long the first request of a batch waits for others to join it.
        queue_size: Requests waiting for the model; beyond it the service answers 503.
        api_key: When set, clients must send ``Authorization: Bearer <key>`` (else 401).
    """

    max_texts: int = 64
    max_chars: int = 4000
    max_body_bytes: int = 1_000_000
    max_batch: int = 32
    max_wait_ms: float = 5.0
    queue_size: int = 256
    api_key: str | None = field(default_factory=lambda: os.environ.get("EMOTUNE_API_KEY") or None)

    def __post_init__(self) -> None:
        for key in ("max_texts", "max_chars", "max_body_bytes", "max_batch", "queue_size"):
            if getattr(self, key) < 1:
                raise EmotuneError(f"serve: {key} must be >= 1")
        if self.max_wait_ms < 0:
            raise EmotuneError("serve: max_wait_ms must be >= 0")
