"""What one training micro-batch keeps for backward, counted on the meta device.

The method's own forward (`emotune.methods.base.Method.hidden_states`: LoRA's dropout and
low-rank paths, P-Tuning v2's prefix cache, prompt tuning's extra positions) runs over a meta-device
backbone, and every tensor autograd saves is counted once per storage (``saved_tensors_hooks``), per
decoder layer. No arithmetic runs, so a 9B model's batch is counted in well under a second.

Attention is counted as the fused kernels a GPU runs (flash / memory-efficient SDPA, which emotune
selects there): they keep queries, keys, values, the output and one log-sum-exp per row, never the
``length x length`` probabilities. Architectures whose attention transformers runs eagerly
(soft-capped Gemma 2) keep those probabilities, and are counted so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from emotune.methods import Method
from emotune.methods.base import decoder_of


@dataclass(frozen=True)
class ActivationProfile:
    """Bytes saved for backward by one micro-batch.

    Attributes:
        total: Everything saved, all layers and the parts around them.
        in_layers: What the decoder layers save, all together.
        per_layer: The largest one decoder layer saves.
        layer_input: One layer's input hidden states (what checkpointing keeps per layer).
        layers: Decoder layers.
    """

    total: int
    in_layers: int
    per_layer: int
    layer_input: int
    layers: int

    def peak(self, checkpointing: bool) -> int:
        """The activations alive at the start of backward: everything saved; with checkpointing,
        each layer's input plus the one layer being recomputed. (Measured on the CPU, the
        gradients in flight then stay inside the slack of this count: benchmarks/results/memory-plan.json.)"""
        if not checkpointing:
            return self.total
        around = self.total - self.in_layers
        return around + self.layers * self.layer_input + self.per_layer


class _SavedBytes:
    """A pack hook that adds up the bytes of every distinct storage autograd saves.

    Weights that autograd saves (a frozen linear layer keeps its weight for the input gradient)
    are references to memory the plan counts as weights already, so they are known from the start.
    """

    def __init__(self, resident: Iterable[torch.Tensor] = ()) -> None:
        self.storages: dict[int, Any] = {}
        for tensor in resident:
            self.storages[id(tensor.untyped_storage())] = tensor.untyped_storage()
        self.total = 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if id(storage) not in self.storages:
            self.storages[id(storage)] = storage  # held, so the id is not reused
            self.total += storage.nbytes()
        return tensor


class _FusedAttention(torch.autograd.Function):
    """Shapes and saved tensors of a flash-attention call, with no arithmetic (meta tensors)."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = q.new_empty(*q.shape[:-1], v.shape[-1])
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:  # pragma: no cover (never run)
        q, k, v, _, _ = ctx.saved_tensors
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)


@contextlib.contextmanager
def _fused_attention() -> Iterator[None]:
    """SDPA as `_FusedAttention`; masks built in full (transformers' shortcut that skips an
    all-ones mask reads its values, which meta tensors do not have)."""
    from transformers import masking_utils

    original = torch.nn.functional.scaled_dot_product_attention, masking_utils._ignore_causal_mask_sdpa

    def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _FusedAttention.apply(q, k, v)

    torch.nn.functional.scaled_dot_product_attention = sdpa  # type: ignore[assignment]
    masking_utils._ignore_causal_mask_sdpa = lambda *args, **kwargs: False
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention, masking_utils._ignore_causal_mask_sdpa = original


def decoder_layers(wrapped: nn.Module) -> list[nn.Module]:
    """The decoder's repeated layers (the first ModuleList of the decoder stack)."""
    decoder = decoder_of(wrapped)
    layers = getattr(decoder, "layers", None) or next(
        (m for m in decoder.children() if isinstance(m, nn.ModuleList)), None
    )
    return list(layers) if layers is not None else []


def profile(wrapped: nn.Module, method: Method, batch_size: int, length: int, labels: int = 8) -> ActivationProfile:
    """Counts what one training micro-batch of ``batch_size x length`` tokens saves for backward."""
    counter = _SavedBytes([*wrapped.parameters(), *wrapped.buffers()])
    layers = decoder_layers(wrapped)
    spans: list[int] = []
    inputs: list[int] = []

    def before(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs.get("hidden_states")
        inputs.append(hidden.untyped_storage().nbytes() if isinstance(hidden, torch.Tensor) else 0)
        spans.append(-counter.total)

    def after(module: nn.Module, args: Any, kwargs: Any, out: Any) -> None:
        spans[-1] += counter.total

    handles = [layer.register_forward_pre_hook(before, with_kwargs=True) for layer in layers]
    handles += [layer.register_forward_hook(after, with_kwargs=True) for layer in layers]
    ids = torch.zeros(batch_size, length, dtype=torch.long, device="meta")
    mask = torch.ones(batch_size, length, dtype=torch.long, device="meta")
    wrapped.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t), _fused_attention():
            hidden = method.hidden_states(wrapped, ids, mask)[:, -1]
            rows = torch.empty(labels, hidden.shape[-1], device="meta", dtype=hidden.dtype)
            (hidden.float() @ rows.float().T).logsumexp(-1)  # the label head: hidden x label rows
    finally:
        for handle in handles:
            handle.remove()
    return ActivationProfile(counter.total, sum(spans), max(spans, default=0), max(inputs, default=0), len(layers))
