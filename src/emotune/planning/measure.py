"""Peak tensor memory of a block of torch code, on any device, the CPU included.

``torch.cuda.max_memory_allocated`` has no CPU counterpart, and a process's resident size mixes
tensors with the allocator's caches and the interpreter. `PeakTensorMemory` counts what a
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


# Operators that hand a tensor's value to the host: on a GPU each one waits for the device.
HOST_SYNCS = frozenset({"_local_scalar_dense", "item", "nonzero", "is_nonzero", "equal", "allclose"})


class OperatorCount(TorchDispatchMode):
    """Counts the aten operators a block dispatches, forward and backward alike, by name.

    The count is what a GPU's host would launch (one or more kernels each, views aside) and does
    not depend on the device, so it is measured on the CPU. ``views`` are operators that only
    make a new view of a tensor (no kernel); ``host_syncs`` read a tensor's value on the host.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.views = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        self.views += bool(getattr(func, "is_view", False))
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def host_syncs(self) -> int:
        return sum(n for name, n in self.counts.items() if name in HOST_SYNCS)

    def top(self, k: int = 10) -> list[tuple[str, int]]:
        """The ``k`` most frequent operators, most frequent first."""
        return sorted(self.counts.items(), key=lambda kv: -kv[1])[:k]
