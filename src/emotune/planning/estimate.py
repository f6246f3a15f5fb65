"""``emotune plan``: a run's peak GPU memory, estimated per part before any weight loads.

Parts, on the meta-device backbone (`emotune.planning.backbone`):

- **weights**: accelerate's ``compute_module_sizes`` at the weight dtype, with the linear layers
  bitsandbytes quantises at 4 or 8 bits (every ``nn.Linear`` but the output head, as transformers
  leaves it) plus their block scales; for training a quantised backbone, the other weights in fp32
  (PEFT's k-bit preparation upcasts them);
- **adapter**: the method's trainable parameters, counted by PEFT on the meta model, at 16 bytes
  each (fp32 parameter, gradient and AdamW's two moments);
- **activations**: what a micro-batch saves for backward; with gradient checkpointing, each
  layer's input plus the one layer recomputed (`emotune.planning.activations`).

A run fits when the sum stays under 90% of the GPU's memory: the rest is the CUDA context and the
allocator's fragmentation, which no parameter count sees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from emotune.config import uses_checkpointing
from emotune.errors import EmotuneError
from emotune.methods import MethodOptions, get_method
from emotune.models.precision import WeightFormat
from emotune.planning.activations import ActivationProfile, profile
from emotune.planning.backbone import meta_model, model_config

HEADROOM = 0.9
GIB = 2**30
# bitsandbytes' block scales: nf4 keeps one 8-bit absmax per 64 weights with double quantisation,
# plus one fp32 scale per 256 of those; LLM.int8 keeps one fp32 scale per output row.
_NF4_SCALE_BYTES = 1 / 64 + 4 / (64 * 256)


@dataclass(frozen=True)
class PlanRequest:
    """What a run would be: backbone, method, weight format and batch shape.

    Attributes:
        dtype: ``model.dtype``; ``auto`` is bfloat16, as on a GPU with bf16.
        gpu_memory: The GPU's memory in bytes (None: no fit check).
    """

    model: str
    method: MethodOptions
    dtype: str = "auto"
    quantization: str = "none"
    batch_size: int = 8
    max_length: int = 128
    gradient_checkpointing: bool | None = None
    gpu_memory: int | None = None
    trust_remote_code: bool = False

    @property
    def checkpointing(self) -> bool:
        """``gradient_checkpointing`` resolved as a run resolves it (unset: on when quantised)."""
        return uses_checkpointing(self.gradient_checkpointing, self.quantization != "none")

    def weight_format(self) -> WeightFormat:
        """The format on a GPU with bf16 (the plan's device)."""
        return WeightFormat("bfloat16" if self.dtype == "auto" else self.dtype, self.quantization)


@dataclass
class MemoryPlan:
    """Estimated peak memory of a run, per part, in bytes."""

    request: PlanRequest
    parameters: int
    trainable: int
    weights: int
    adapter: int
    activations: int
    activations_checkpointed: int
    profile: ActivationProfile | None = None
    advice: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Peak with the request's own checkpointing setting."""
        acts = self.activations_checkpointed if self.request.checkpointing else self.activations
        return self.weights + self.adapter + acts

    @property
    def fits(self) -> bool | None:
        """Whether the total stays under ``HEADROOM`` of the GPU's memory (None: no GPU given)."""
        gpu = self.request.gpu_memory
        return None if gpu is None else self.total <= HEADROOM * gpu

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``emotune plan --json``)."""
        request = dataclasses.asdict(self.request) | {"method": self.request.method.to_dict()}
        parts = {k: getattr(self, k) for k in ("weights", "adapter", "activations", "activations_checkpointed")}
        return {
            "request": request,
            "weight_format": self.request.weight_format().describe(),
            "parameters": self.parameters,
            "trainable": self.trainable,
            "bytes": parts | {"total": self.total},
            "saved_for_backward": dataclasses.asdict(self.profile) if self.profile else None,
            "fits": self.fits,
            "advice": self.advice,
        }


class _MetaRun:
    """The backbone and method of a request on the meta device, built once and re-estimated for
    other weight formats and batch shapes (the advice's candidates)."""

    def __init__(self, request: PlanRequest) -> None:
        self.method = get_method(request.method)
        config = model_config(request.model, request.trust_remote_code)
        self.model = meta_model(config, torch.float32)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.wrapped = _attach(self.model, self.method)
        self.trainable = sum(p.numel() for p in self.wrapped.parameters() if p.requires_grad)

    def plan(self, request: PlanRequest) -> MemoryPlan:
        fmt = request.weight_format()
        weights = weight_bytes(self.model, fmt, training=self.method.trainable)
        acts = None
        if self.method.trainable:
            # bitsandbytes computes in the compute dtype: activations are as wide as unquantised ones.
            self.wrapped.to(dtype=getattr(torch, fmt.dtype))
            acts = profile(self.wrapped, self.method, request.batch_size, request.max_length)
        plan = MemoryPlan(request, self.parameters, self.trainable, weights, 16 * self.trainable, 0, 0, acts)
        if acts is not None:
            plan.activations, plan.activations_checkpointed = acts.peak(False), acts.peak(True)
        return plan


def estimate(request: PlanRequest) -> MemoryPlan:
    """Builds the backbone on the meta device and estimates each part of the run's peak memory;
    when it does not fit ``request.gpu_memory``, ``advice`` names the changes that make it fit."""
    run = _MetaRun(request)
    if request.batch_size == 0:  # train.batch_size: auto
        request = dataclasses.replace(request, batch_size=_largest_batch(run, request))
    plan = run.plan(request)
    if plan.fits is False:
        plan.advice = advise(run, request)
    return plan


def _largest_batch(run: _MetaRun, request: PlanRequest, start: int = 256) -> int:
    """What ``train.batch_size: auto`` finds on a GPU: halving from 256 until the step fits
    (without a GPU size given, 256)."""
    batch = start
    while batch > 1 and run.plan(dataclasses.replace(request, batch_size=batch)).fits is False:
        batch //= 2
    return batch


# Changes tried in this order, each kept once made: the first costs time, the later ones accuracy
# or throughput. A smaller batch keeps the effective batch through gradient accumulation.
def _candidates(request: PlanRequest) -> list[tuple[str, dict[str, Any]]]:
    steps: list[tuple[str, dict[str, Any]]] = []
    if not request.checkpointing:
        steps.append(("--gradient-checkpointing", {"gradient_checkpointing": True}))
    if request.weight_format().dtype == "float32":
        steps.append(("--dtype auto (bf16 weights)", {"dtype": "auto"}))
    if request.quantization != "4bit":
        steps.append(("--quantization 4bit (QLoRA, pip install 'emotune[qlora]')", {"quantization": "4bit"}))
    batch = request.batch_size
    while batch > 1:
        batch //= 2
        accum = request.batch_size // batch
        steps.append((f"--batch-size {batch} --set train.grad_accum={accum}", {"batch_size": batch}))
    return steps


def advise(run: _MetaRun, request: PlanRequest) -> list[str]:
    """The changes that bring the run under the GPU's memory: each single change that alone fits,
    else the shortest sequence of them that does."""
    single = []
    for flag, change in _candidates(request):
        candidate = dataclasses.replace(request, **change)
        plan = run.plan(candidate)
        if plan.fits:
            also = " (checkpointing comes on with it)" if candidate.checkpointing and not request.checkpointing else ""
            single.append(f"{flag}{also}: {plan.total / GIB:.1f} GiB")
    if single:
        return single
    current, taken = request, []
    for flag, change in _candidates(request):
        current = dataclasses.replace(current, **change)
        taken.append(flag)
        plan = run.plan(current)
        if plan.fits:
            return [" ".join(taken) + f": {plan.total / GIB:.1f} GiB"]
    tried = ", ".join(f for f, _ in _candidates(request))
    return [f"none of {tried} fits, even together: a larger GPU or a shorter max length"]


def _attach(model: nn.Module, method: Any) -> nn.Module:
    """The method's PEFT wrapper around the meta model (the model itself when it has none)."""
    from emotune.models.hub_kernels import import_bitsandbytes_without_hub_kernels

    import_bitsandbytes_without_hub_kernels()  # PEFT's first import pulls bitsandbytes in
    from peft import get_peft_model

    config = method.peft_config(model)
    if config is None:
        return model
    try:
        wrapped = get_peft_model(model, config, low_cpu_mem_usage=True)
    except ValueError as err:
        raise EmotuneError(f"{method.name}: {str(err).splitlines()[0]} (method.target_modules)") from None
    # A prompt encoder is made on the CPU; the plan runs on meta tensors. The adapter computes in
    # the backbone's dtype, as autocast runs it: what it saves is that wide, not fp32.
    return wrapped.to(device="meta", dtype=next(model.parameters()).dtype)


def quantised_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The linear layers bitsandbytes quantises: all the backbone's but the output head (an
    adapter's own layers, LoRA's A and B, are trainable and stay as they are)."""
    head = model.get_output_embeddings()  # type: ignore[operator]
    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and m is not head and not m.weight.requires_grad
    }


def weight_bytes(model: nn.Module, fmt: WeightFormat, training: bool) -> int:
    """The backbone's frozen weights in ``fmt`` (accelerate's module sizes, k-bit layers at their
    width); an adapter injected into the model is the adapter part's, not counted here."""
    from accelerate.utils import CustomDtype, compute_module_sizes

    linears = quantised_linears(model) if fmt.quantized else {}
    low: Any = CustomDtype.INT4 if fmt.quantization == "4bit" else torch.int8
    special = {f"{name}.weight": low for name in linears}
    # PEFT's k-bit preparation (training) casts every weight bitsandbytes left alone to fp32.
    rest = torch.float32 if fmt.quantized and training else getattr(torch, fmt.dtype)
    sizes = compute_module_sizes(model, dtype=rest, special_dtypes=special)
    total = sizes[""] - sum(sizes[n] for n, p in model.named_parameters() if p.requires_grad)
    if fmt.quantization == "4bit":
        total += sum(m.weight.numel() for m in linears.values()) * _NF4_SCALE_BYTES
    elif fmt.quantization == "8bit":
        total += sum(m.out_features for m in linears.values()) * 4
    return int(total)
