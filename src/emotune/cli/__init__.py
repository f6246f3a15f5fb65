"""The ``emotune`` command: parses arguments into a config and calls the library, nothing more."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from emotune.cli import commands as c
from emotune.cli.flags import DISTILL_FLAGS, FLAGS, Flag, add_config_flags, build_config, method_flags
from emotune.errors import EmotuneError

__all__ = ["DISTILL_FLAGS", "FLAGS", "Flag", "build_config", "main", "method_flags", "parser"]


DESCRIPTION = "Emotion and sentiment recognition with a customised language model."
EPILOG = (
    'Start: emotune predict "I can\'t believe they cancelled it" (the shipped generalist, '
    "Ekman's emotions + neutral); emotune predict --labels joy,anger,neutral TEXT (your own labels); "
    "emotune COMMAND --help for each command."
)


def command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    """A command whose own ``--help`` opens with the summary the command list shows."""
    return sub.add_parser(name, help=summary, description=summary)


def parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs)."""
    root = argparse.ArgumentParser(prog="emotune", description=DESCRIPTION, epilog=EPILOG)
    root.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = root.add_subparsers(dest="command", required=True)
    p = command(sub, "train", "customise a backbone on a dataset and write a run directory")
    add_config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's newest checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the run's memory plan (emotune plan) and stop")
    c.add_plan_flags(p)
    p.set_defaults(func=c.cmd_train)
    p = command(sub, "plan", "a run's peak GPU memory per part, from the model's config alone (no weights)")
    add_config_flags(p)
    c.add_plan_flags(p)
    p.set_defaults(func=c.cmd_plan)
    p = command(sub, "evaluate", "metrics of a run (--run) or of a fresh zero-shot model on a split")
    add_config_flags(p)
    p.add_argument("--run", help="a trained run directory to evaluate")
    p.set_defaults(func=c.cmd_evaluate)
    p = command(sub, "predict", "classify texts with a run directory, or with labels given at call time")
    p.add_argument(
        "--run", help="run directory written by train or evaluate, or 'generalist' (with --labels: its adapter)"
    )
    add_call_time_flags(p)
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--input", help="CSV/TSV/JSONL/TXT file to classify")
    p.add_argument("--output", help="JSONL file to write (with --input)")
    p.add_argument("--text-column", default="text", help="text column of --input")
    p.add_argument("--encoding", default="utf-8", help="text encoding of --input (default utf-8; e.g. latin-1)")
    p.add_argument("--dialogue-column", help="column grouping consecutive rows of --input into dialogues (context)")
    p.add_argument("--speaker-column", help="speaker column of --input, for context lines 'speaker: text'")
    p.add_argument("--batch-size", type=int, help="texts per forward pass (default: 16 on a CPU, 256 on a GPU)")
    p.add_argument("--corpus", help="a run trained on several corpora: predict this corpus's labels")
    p.add_argument(
        "--chunk-rows",
        type=int,
        default=256,
        help="--input: rows per synced write; under accelerate launch, rows dealt to each process in turn",
    )
    p.add_argument(
        "--min-confidence", type=float, help="no label below this top probability, in (0, 1] (scores still given)"
    )
    p.set_defaults(func=c.cmd_predict)
    p = command(sub, "explain", "which words (and earlier turns) decided a text's label")
    p.add_argument("--run", help="run directory (with --labels: its adapter)")
    add_call_time_flags(p)
    p.add_argument("texts", nargs="*", help="texts to explain")
    p.add_argument("--label", help="the label to explain (default: the predicted one)")
    p.add_argument("--method", default="occlusion", help="occlusion (default, any backend) or ig (emotune[explain])")
    p.add_argument("--batch-size", type=int, help="texts per forward pass (default: 16 on a CPU, 256 on a GPU)")
    p.add_argument("--corpus", help="a run trained on several corpora: explain this corpus's labels")
    p.set_defaults(func=c.cmd_explain)
    p = command(sub, "serve", "HTTP prediction service for a run or a label set (needs emotune[serve])")
    p.add_argument("--run", help="run directory to serve (with --labels: its adapter)")
    add_call_time_flags(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--corpus", help="a run trained on several corpora: serve this corpus's labels")
    p.add_argument("--max-texts", type=int, default=64, help="most texts per request (413 above)")
    p.add_argument("--max-chars", type=int, default=4000, help="most characters per text (422 above)")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000, help="largest request body (413 above)")
    p.add_argument("--max-batch", type=int, default=32, help="most texts merged into one forward pass")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for others to batch")
    p.set_defaults(func=c.cmd_serve)
    p = command(
        sub, "export", "ship a trained run or a label set: merged HF model, ONNX label scorer, or seq-cls classifier"
    )
    p.add_argument(
        "--run",
        help="run directory to export, or 'generalist' (the shipped one); with --labels: the run whose adapter "
        "scores them (default: the shipped generalist)",
    )
    p.add_argument(
        "--format",
        default="merged",
        help="merged (HF folder, adapter folded in), onnx, or seq-cls (*ForSequenceClassification for serving engines)",
    )
    p.add_argument("--output", required=True, help="folder to write (predict/serve load it with --run)")
    p.add_argument("--int8", action="store_true", help="onnx: dynamic int8 weights (smaller, faster on CPUs)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in the output folder")
    add_call_time_flags(p, language="with --labels: the exported prompt's language (default: the labels' script)")
    p.set_defaults(func=c.cmd_export)
    p = command(sub, "distill", "teach a small encoder from a trained run: encoder-speed prediction")
    p.add_argument("--run", required=True, help="the teacher: a trained run directory")
    p.add_argument("--output", required=True, help="the student's run directory (a re-run resumes it)")
    for flag, (kind, text) in DISTILL_FLAGS.items():
        p.add_argument(f"--{flag}", dest=flag.replace("-", "_"), type=kind, help=text)
    p.add_argument("--encoding", help="text encoding of the data files and --unlabelled (default: the teacher's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. data.train_file=more.csv")
    p.add_argument("--overwrite", action="store_true", help="start again in an existing output folder")
    p.set_defaults(func=c.cmd_distill)
    p = command(sub, "bench", "run a benchmark matrix (datasets x methods x seeds); resumable")
    p.add_argument("--matrix", required=True, help="matrix YAML (see benchmarks/paper.yaml)")
    p.add_argument("--out", required=True, help="results folder: cells/*.json, table.md, summary.json, bars.png")
    p.add_argument("--runs", default="runs/bench", help="where each cell's run directory goes")
    p.add_argument("--datasets", help="run only these datasets of the matrix (comma-separated keys)")
    p.add_argument("--methods", help="run only these methods of the matrix (comma-separated keys)")
    p.add_argument("--seeds", help="run only these seeds of the matrix (comma-separated)")
    p.set_defaults(func=c.cmd_bench)
    command(sub, "models", "list registered backbones").set_defaults(func=c.cmd_models)
    p = command(sub, "datasets", "list registered datasets; NAME: where to get one; --check: load and count")
    p.add_argument("name", nargs="?", help="a registered dataset to describe")
    p.add_argument("--check", action="store_true", help="load every dataset found under --data-dir and count")
    p.add_argument("--data-dir", help="datasets root with one folder per corpus (default ../shared/datasets)")
    p.set_defaults(func=c.cmd_datasets)
    p = command(sub, "quickstart", "zero-shot vs LoRA vs P-Tuning v2 on the built-in corpus, offline")
    p.add_argument("--output", default="runs/quickstart", help="folder for one run directory per method")
    p.add_argument("--methods", default="zero-shot,lora,ptuning-v2", help="comma-separated methods to compare")
    p.add_argument("--model", default="gemma3-270m", help="backbone (see `emotune models`)")
    p.set_defaults(func=c.cmd_quickstart)
    return root


def add_call_time_flags(
    p: argparse.ArgumentParser, language: str = "the prompt's language (default: each text's own)"
) -> None:
    """Labels at call time: no run directory needed (the shipped generalist scores them);
    ``language`` is the help of ``--language``."""
    p.add_argument(
        "--labels",
        help="classify into these labels, comma-separated, at most 64 (no run needed; default without "
        "--run: the shipped generalist's anger,disgust,fear,joy,neutral,sadness,surprise)",
    )
    p.add_argument(
        "--model",
        help="with --labels: another backbone than gemma3-270m, scored frozen (the generalist is its adapter)",
    )
    p.add_argument("--task", help="with --labels: the prompt's task word (default: sentiment or emotion)")
    p.add_argument(
        "--frozen-backbone",
        action="store_true",
        help="with --labels: score with the frozen backbone instead of the shipped generalist",
    )
    p.add_argument("--language", choices=("en", "zh"), help=language)


#: Settings whose flag is not their own name.
RENAMED_FLAGS = {
    "teacher": "--run",
    "adapter": "--run",
    "fmt": "--format",
    "eval_split": "--split",
    "quantize": "--int8",
}


def as_flags(err: EmotuneError) -> str:
    """The error's line with each setting it names shown as the flag that sets it (first mention).

    A word inside a path the message quotes (``runs/output/``, ``output.jsonl``) is not a setting,
    nor is a message's leading ``NAME:`` where NAME is a file or folder that exists: messages about
    a path open with it, and a folder may be called ``output``.
    """
    text = str(err)
    for setting in err.settings:
        flag = RENAMED_FLAGS.get(setting, "--" + setting.replace("_", "-"))
        start = len(setting) + 1 if text.startswith(setting + ":") and Path(setting).exists() else 0
        pattern = rf"(?<![\w./\\-]){re.escape(setting)}(?![\w/\\-])(?!\.\w)"
        text = text[:start] + re.sub(pattern, flag, text[start:], count=1)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    for noisy in ("transformers", "peft", "accelerate", "httpx", "bitsandbytes", "huggingface_hub"):
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
        print(f"emotune: error: {as_flags(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emotune: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    return 0
