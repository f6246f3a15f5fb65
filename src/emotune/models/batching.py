"""Grouping token rows by length (pure Python: shared by the torch and ONNX backends)."""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Groups indices of similar length into batches (less padding), longest first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
