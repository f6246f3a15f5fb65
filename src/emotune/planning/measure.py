"""Peak tensor memory of a block of torch code, on any device, the CPU included.

``torch.cuda.max_memory_allocated`` has no CPU counterpart, and a process's resident size mixes
tensors with the allocator's caches and the interpreter. :class:`PeakTensorMemory` counts what a
plan estimates: the bytes of every tensor storage alive at once, from the dispatcher's view of each
operator's outputs and the moment each storage is freed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakTensorMemory(TorchDispatchMode):
    """Counts live tensor bytes inside the block; ``peak`` is their high-water mark.

    Args:
        resident: Tensors alive before the block that count from the start (a model's weights).

    Example::

        with PeakTensorMemory(model.parameters()) as mem:
            loss = model(x).sum()
            loss.backward()
        mem.peak  # weights + activations + gradients, in bytes
    """

    def __init__(self, resident: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self._live: dict[int, int] = {}
        self.current = 0
        self.peak = 0
        for tensor in resident:
            self._track(tensor)
        self.baseline = self.current

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self._live or storage.nbytes() == 0 or tensor.device.type == "meta":
            return
        self._live[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        # A storage's Python object lives as long as the storage itself, so this runs when it is freed.
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self._track(item)
        return out
