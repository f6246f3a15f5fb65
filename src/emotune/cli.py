"""The ``emotune`` command: parses arguments into a config and calls the library, nothing more."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import typing
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emotune.config import RunConfig, apply_override
from emotune.errors import EmotuneError
from emotune.methods import UNTRAINED, get_method, method_class, method_names


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
    "dataset": Flag("data.dataset", str, "registered dataset (see `emotune datasets`)"),
    "data-dir": Flag("data.data_dir", str, "folder holding the dataset's files"),
    "train-file": Flag("data.train_file", str, "train file for --dataset files (.csv/.tsv/.jsonl)"),
    "dev-file": Flag("data.dev_file", str, "dev file for --dataset files"),
    "test-file": Flag("data.test_file", str, "test file for --dataset files"),
    "text-column": Flag("data.text_column", str, "text column of --dataset files"),
    "label-column": Flag("data.label_column", str, "label column of --dataset files"),
    "labels": Flag("data.labels", str, "comma-separated label names (their order fixes the indices)"),
    "hf-name": Flag("data.hf_name", str, "Hugging Face dataset name or save_to_disk folder (--dataset hf)"),
    "language": Flag("data.language", str, "prompt language: en or zh"),
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
    "overwrite": Flag("overwrite", None, "replace an existing run directory"),
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


def _add_config_flags(p: argparse.ArgumentParser) -> None:
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
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise EmotuneError(f"--set expects KEY=VALUE, got '{item}'")
        apply_override(cfg, key.strip(), value)
    return cfg.validate()


def cmd_train(args: argparse.Namespace) -> None:
    saved = Path(args.output or "") / "config.yaml"
    from_run = bool(args.resume and not args.config and args.output and saved.is_file())
    if from_run:
        args.config = str(saved)  # resume the run as it was configured; flags still override
    cfg = build_config(args, saved=from_run)
    if args.dry_run:
        from emotune.planning.report import plan_text

        print(plan_text(cfg, args.gpu_memory, args.json))
        return
    from emotune.distributed import is_main
    from emotune.pipeline import run

    if not is_main():  # under accelerate launch / torchrun one process reports for all
        logging.getLogger("emotune").setLevel(logging.WARNING)
    metrics = run(cfg, resume=args.resume)
    if is_main():
        print(json.dumps(_summary(metrics)))


def cmd_plan(args: argparse.Namespace) -> None:
    cfg = build_config(args)
    from emotune.planning.report import plan_text

    print(plan_text(cfg, args.gpu_memory, args.json))


def _add_plan_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpu-memory", help="the GPU's memory, e.g. 24GiB (default: this machine's GPU, if any)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.run:
        # Start from the run's own config so only what the user passes here changes.
        saved = not args.config
        args.config = args.config or str(Path(args.run) / "config.yaml")
        if saved and not Path(args.config).is_file():
            raise EmotuneError(f"{args.run}: not a run directory (no config.yaml)")
        cfg = build_config(args, saved=saved)
        from emotune.pipeline import evaluate_saved

        metrics = evaluate_saved(Path(args.run), cfg, args.output)
    else:
        args.method = args.method or UNTRAINED
        cfg = build_config(args)
        if get_method(cfg.method).trainable:
            raise EmotuneError(f"evaluate without --run needs an untrained method such as '{UNTRAINED}' (train first)")
        from emotune.pipeline import run

        metrics = run(cfg)
    print(json.dumps(_summary(metrics)))


def cmd_predict(args: argparse.Namespace) -> None:
    from emotune.inference.predict import Predictor
    from emotune.inference.predict_files import dialogue_columns, predict_file

    if args.input and not args.output:
        raise EmotuneError("--input needs --output FILE.jsonl")
    if not args.input and not args.texts:
        raise EmotuneError("give texts to classify, or --input FILE --output FILE.jsonl")
    if args.speaker_column and not args.dialogue_column:
        raise EmotuneError("--speaker-column needs --dialogue-column")
    if args.dialogue_column and not args.input:
        raise EmotuneError("--dialogue-column needs --input FILE")
    predictor = Predictor.load(args.run, batch_size=args.batch_size)  # after the cheap checks
    if args.input:
        dialogue = dialogue_columns(predictor, args.dialogue_column, args.speaker_column)
        result = predict_file(predictor, Path(args.input), Path(args.output), args.text_column, dialogue=dialogue)
        print(json.dumps(asdict(result)))
        return
    for text, pred in zip(args.texts, predictor.predict(args.texts), strict=True):
        print(json.dumps({"text": text, **pred.to_dict()}, ensure_ascii=False))


def cmd_serve(args: argparse.Namespace) -> None:
    from emotune.serve.server import serve
    from emotune.serve.settings import ServeSettings

    settings = ServeSettings(
        max_texts=args.max_texts,
        max_chars=args.max_chars,
        max_body_bytes=args.max_body_bytes,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
    )
    serve(args.run, args.host, args.port, settings)


def cmd_export(args: argparse.Namespace) -> None:
    from emotune.inference.export import export

    result = export(Path(args.run), args.format, Path(args.output), quantize=args.int8, overwrite=args.overwrite)
    print(json.dumps(asdict(result)))


def cmd_bench(args: argparse.Namespace) -> None:
    from emotune.bench.harness import load_matrix, run_matrix

    seeds = [int(s) for s in _names(args.seeds) or []] or None
    matrix = load_matrix(args.matrix).only(_names(args.datasets), _names(args.methods), seeds)
    results = run_matrix(matrix, Path(args.out), Path(args.runs))
    print(json.dumps({"cells": len(matrix.cells), "finished": len(results), "table": f"{args.out}/table.md"}))


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def cmd_models(args: argparse.Namespace) -> None:
    from emotune.models.backbones import BACKBONES, DEFAULT_BACKBONE, cache_dir

    for spec in BACKBONES.values():
        cached = (cache_dir() / "backbones" / spec.name / "config.json").is_file()
        mark = " (default)" if spec.name == DEFAULT_BACKBONE else ""
        print(
            f"{spec.name}{mark}\n  {spec.description}\n  languages: {spec.languages}; install: {spec.install}; "
            f"cached: {'yes' if cached else 'no'}"
        )
    print("Any Hugging Face causal LM also works: --model ORG/NAME, a local folder or a .gguf file.")


def cmd_datasets(args: argparse.Namespace) -> None:
    from emotune.data import dataset_info, dataset_names

    if args.check:
        from emotune.data.check import check_datasets

        print(check_datasets(Path(args.data_dir or "../shared/datasets")))
        return
    if args.name:
        from emotune.data.sources import describe

        print(describe(args.name))
        return
    for name in dataset_names():
        info = dataset_info(name)
        print(f"{name:<20} {info.language:<4} {info.task:<10} {info.description}")
    print("`emotune datasets NAME` says where to get one and which files it reads.")


def cmd_quickstart(args: argparse.Namespace) -> None:
    from emotune.quickstart import quickstart

    quickstart(Path(args.output), methods=args.methods.split(","), model=args.model)


def _summary(metrics: dict[str, object]) -> dict[str, object]:
    keys = (
        "split",
        "method",
        "n",
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "ua",
        "invalid_rate",
        "train_seconds",
        "unrecalled",
    )
    return {k: metrics[k] for k in keys if k in metrics}


def parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs)."""
    root = argparse.ArgumentParser(prog="emotune", description=__doc__)
    root.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = root.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="customise a backbone on a dataset and write a run directory")
    _add_config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's newest checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the run's memory plan (emotune plan) and stop")
    _add_plan_flags(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("plan", help="a run's peak GPU memory per part, from the model's config alone (no weights)")
    _add_config_flags(p)
    _add_plan_flags(p)
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("evaluate", help="metrics of a run (--run) or of a fresh zero-shot model on a split")
    _add_config_flags(p)
    p.add_argument("--run", help="a trained run directory to evaluate")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("predict", help="classify texts with a run directory")
    p.add_argument("--run", required=True, help="run directory written by train or evaluate")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--input", help="CSV/TSV/JSONL/TXT file to classify")
    p.add_argument("--output", help="JSONL file to write (with --input)")
    p.add_argument("--text-column", default="text", help="text column of --input")
    p.add_argument("--dialogue-column", help="column grouping consecutive rows of --input into dialogues (context)")
    p.add_argument("--speaker-column", help="speaker column of --input, for context lines 'speaker: text'")
    p.add_argument("--batch-size", type=int, help="texts per forward pass (default: 16 on a CPU, 256 on a GPU)")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("serve", help="HTTP prediction service for a run (needs emotune[serve])")
    p.add_argument("--run", required=True, help="run directory to serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-texts", type=int, default=64, help="most texts per request (413 above)")
    p.add_argument("--max-chars", type=int, default=4000, help="most characters per text (422 above)")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000, help="largest request body (413 above)")
    p.add_argument("--max-batch", type=int, default=32, help="most texts merged into one forward pass")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for others to batch")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("export", help="ship a trained run: merged HF model, or ONNX label scorer (emotune[onnx])")
    p.add_argument("--run", required=True, help="run directory to export")
    p.add_argument("--format", default="merged", help="merged (HF folder, adapter folded in) or onnx")
    p.add_argument("--output", required=True, help="folder to write (predict/serve load it with --run)")
    p.add_argument("--int8", action="store_true", help="onnx: dynamic int8 weights (smaller, faster on CPUs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("bench", help="run a benchmark matrix (datasets x methods x seeds); resumable")
    p.add_argument("--matrix", required=True, help="matrix YAML (see benchmarks/paper.yaml)")
    p.add_argument("--out", required=True, help="results folder: cells/*.json, table.md, summary.json, bars.png")
    p.add_argument("--runs", default="runs/bench", help="where each cell's run directory goes")
    p.add_argument("--datasets", help="run only these datasets of the matrix (comma-separated keys)")
    p.add_argument("--methods", help="run only these methods of the matrix (comma-separated keys)")
    p.add_argument("--seeds", help="run only these seeds of the matrix (comma-separated)")
    p.set_defaults(func=cmd_bench)
    sub.add_parser("models", help="list registered backbones").set_defaults(func=cmd_models)
    p = sub.add_parser("datasets", help="list registered datasets; NAME: where to get one; --check: load and count")
    p.add_argument("name", nargs="?", help="a registered dataset to describe")
    p.add_argument("--check", action="store_true", help="load every dataset found under --data-dir and count")
    p.add_argument("--data-dir", help="datasets root with one folder per corpus (default ../shared/datasets)")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser("quickstart", help="zero-shot vs LoRA vs P-Tuning v2 on the built-in corpus, offline")
    p.add_argument("--output", default="runs/quickstart", help="folder for one run directory per method")
    p.add_argument("--methods", default="zero-shot,lora,ptuning-v2", help="comma-separated methods to compare")
    p.add_argument("--model", default="gemma3-270m", help="backbone (see `emotune models`)")
    p.set_defaults(func=cmd_quickstart)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    for noisy in ("transformers", "peft", "accelerate", "httpx", "bitsandbytes"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if not args.verbose:  # weight-loading and download bars only when asked for (read at transformers' import)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # PEFT calls a transformers API that warns about its own future rename on every load.
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    try:
        args.func(args)
    except BrokenPipeError:  # `emotune datasets | head`: the reader left, nothing to report
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except EmotuneError as err:
        print(f"emotune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emotune: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
