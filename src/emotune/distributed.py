"""Process topology from Accelerate: one code path for 1 process and for ``accelerate launch``.

With one process every helper is the identity (shard = everything, gather = nothing to do),
so training, evaluation and prediction never branch on "distributed" in user-facing code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError

if TYPE_CHECKING:
    import torch

#: The values of ``runtime.device`` (the config validates against them; torch is imported only
#: when a device is resolved, so the config and the CLI's parser stay torch-free).
DEVICES = ("auto", "cpu", "cuda")

_CPU_ONLY: list[bool] = [False]  # set by resolve_device("cpu") before the state is created


@lru_cache(maxsize=1)
def _state() -> Any:
    import torch
    from accelerate import PartialState

    # Without cpu=True Accelerate only recognises multi-process runs on accelerators; on a
    # CPU-only machine (or with runtime.device=cpu) the processes join one gloo group instead.
    return PartialState(cpu=_CPU_ONLY[0] or not torch.cuda.is_available())


def _launched_alone() -> bool:
    """True when no launcher started several processes (``WORLD_SIZE`` unset or 1): then every
    answer below is known without creating Accelerate's state, which imports torch."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) == 1


def world_size() -> int:
    """Number of processes (1 unless launched with accelerate/torchrun)."""
    return 1 if _launched_alone() else int(_state().num_processes)


def rank() -> int:
    """This process's index."""
    return 0 if _launched_alone() else int(_state().process_index)


def is_main() -> bool:
    """True in the one process that writes run files and logs."""
    return True if _launched_alone() else bool(_state().is_main_process)


def wait_for_everyone() -> None:
    """Barrier (a no-op with one process)."""
    if not _launched_alone():
        _state().wait_for_everyone()


def resolve_device(choice: str) -> torch.device:
    """The device for ``runtime.device``: "auto" (this process's accelerator, else CPU), "cpu" or "cuda"."""
    import torch

    if choice not in DEVICES:
        raise EmotuneError(f"runtime.device must be one of {DEVICES}, got '{choice}'")
    if choice == "cpu":
        _CPU_ONLY[0] = True
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise EmotuneError("runtime.device is 'cuda' but no CUDA GPU is available")
    return torch.device(_state().device)


def shares_work() -> bool:
    """True when several processes were launched to split each call's work between them."""
    return world_size() > 1


def my_share(items: Sequence[int]) -> list[int]:
    """This process's slice of a global batch (every ``world_size``-th item from ``rank``)."""
    if not shares_work():
        return list(items)
    return list(items[rank() :: world_size()])


def gather_rows(local: dict[int, Any]) -> dict[int, Any]:
    """Merges every process's ``{index: row}`` results; each index is owned by exactly one process,
    so a split's tail is neither dropped nor counted twice."""
    if not shares_work():
        return local
    from accelerate.utils import gather_object

    merged: dict[int, Any] = {}
    for part in gather_object([local]):
        merged.update(part)
    return merged
