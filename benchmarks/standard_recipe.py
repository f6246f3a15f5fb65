"""The standard recipe emotune is timed against: Hugging Face + PEFT LoRA trained with the causal-LM
loss over the full vocabulary on "prompt + label word", the way peers fine-tune a generative LLM
as a classifier (LLaMA-Factory's SFT, a plain ``Trainer`` with ``DataCollatorForLanguageModeling``).

It is given what emotune has, so a ratio measures the method and nothing else: the same backbone
loaded by the same loader in the same weight format, the same LoRA targets and rank, the same
autocast dtype (bf16 where emotune runs bf16), dynamic padding (each batch padded to its longest
row, as transformers' collators do) and fused AdamW. ``padding`` and ``autocast`` can be set to
the earlier, weaker recipe (fp32, every batch padded to 64 tokens) to show what each part is worth.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from emotune.models.backbones import load_backbone
from emotune.models.precision import WeightFormat


@dataclass
class StandardRecipe:
    """A PEFT LoRA causal LM, its tokenizer and optimiser; `step` is one training step."""

    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    device: torch.device
    autocast: torch.dtype | None = None
    #: None pads each batch to its longest row; a number pads every batch to that many tokens.
    padding: int | None = None
    max_length: int = 128

    @classmethod
    def build(
        cls,
        source: str,
        fmt: WeightFormat,
        device: torch.device,
        targets: str | list[str] = "all-linear",
        *,
        rank: int = 8,
        checkpointing: bool = False,
        **settings: Any,
    ) -> StandardRecipe:
        """Loads ``source`` in ``fmt`` on ``device`` and attaches LoRA to ``targets``.

        A quantised backbone gets PEFT's k-bit preparation (QLoRA), with ``checkpointing`` as asked.
        """
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        model, tokenizer = load_backbone(source, fmt, device)
        if fmt.quantized:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
        elif checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM"
        )
        model = get_peft_model(model, config)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=2e-4, fused=True)
        tokenizer.padding_side = "right"
        model.train()
        return cls(model, tokenizer, optimizer, device, **settings)

    def context(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def step(self, texts: list[str]) -> int:
        """One forward, backward and AdamW step on ``texts``; returns the tokens it ran, padding included."""
        fixed = self.padding is not None
        enc = self.tokenizer(
            texts,
            truncation=True,
            padding="max_length" if fixed else "longest",
            max_length=self.padding if fixed else self.max_length,
            return_tensors="pt",
        ).to(self.device)
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        with self.context():
            loss = self.model(**enc, labels=labels).loss  # logits over the whole vocabulary
        loss.backward()
        # transformers' Trainer clips at max_grad_norm 1.0 by default, as emotune does.
        torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return int(enc.input_ids.numel())
