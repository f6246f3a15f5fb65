"""Tracing a torch label scorer into an ONNX file: one call for the LLM's export and a student's.

torch's exporter prints each stage (``[torch.onnx] ...``), warns of optional packages a text
model never needs (torchvision) and of its own deprecations, and its graph optimiser logs every
rewrite at INFO; none of it is for the person who asked for an export, so the trace runs without
it (errors still surface).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: The exporter's loggers: torch's own and the ONNX optimiser's (onnxscript, onnx_ir).
EXPORTER_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


def trace_to_onnx(
    module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, input_names: Sequence[str], dims: dict[str, Any]
) -> None:
    """Writes ``module`` called on ``args`` to ``path`` as one self-contained ONNX file whose
    output is ``label_logits``, with the dynamic ``dims`` (``{input: {axis: torch.export.Dim}}``)."""
    with torch.no_grad(), warnings.catch_warnings(), _errors_only(EXPORTER_LOGGERS):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(input_names),
            output_names=["label_logits"],
            dynamic_shapes=dims,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


@contextmanager
def _errors_only(names: Sequence[str]) -> Iterator[None]:
    """Raises the loggers ``names`` to ERROR for the block, then gives back their own levels (set
    here, not at start-up: importing torch resets its loggers' levels)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
