"""The ``emotune`` command: parses arguments into a config and calls the library, nothing more."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from emotune.config import RunConfig, apply_override
from emotune.errors import EmotuneError

# Convenience flags and the config keys they set; anything else goes through --set KEY=VALUE.
FLAGS: dict[str, str] = {
    "model": "model.name",
    "trust_remote_code": "model.trust_remote_code",
    "method": "method.name",
    "rank": "method.rank",
    "prompt_length": "method.prompt_length",
    "dataset": "data.dataset",
    "data_dir": "data.data_dir",
    "train_file": "data.train_file",
    "dev_file": "data.dev_file",
    "test_file": "data.test_file",
    "text_column": "data.text_column",
    "label_column": "data.label_column",
    "labels": "data.labels",
    "hf_name": "data.hf_name",
    "language": "data.language",
    "max_train_samples": "data.max_train_samples",
    "max_samples": "data.max_eval_samples",
    "context_turns": "data.context_turns",
    "objective": "train.objective",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "split": "train.eval_split",
    "precision": "train.precision",
    "device": "train.device",
    "gradient_checkpointing": "train.gradient_checkpointing",
    "class_weights": "train.class_weights",
    "loss": "train.loss",
    "output": "output",
    "overwrite": "overwrite",
}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (flags and --set override it)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted override, e.g. train.lr=1e-4",
    )
    p.add_argument("--model", help="registered name, HF folder, .gguf file or Hub id (default gemma3-270m)")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help="allow model code from the Hub",
    )
    p.add_argument("--method", help="zero-shot, lora, ptuning-v2 or prompt-tuning")
    p.add_argument("--rank", type=int, help="LoRA rank (paper: 8)")
    p.add_argument(
        "--prompt-length",
        type=int,
        help="virtual tokens for ptuning-v2 / prompt-tuning (paper: 32)",
    )
    p.add_argument("--dataset", help="registered dataset (see `emotune datasets`)")
    p.add_argument("--data-dir", help="folder holding the dataset's files")
    for split in ("train", "dev", "test"):
        p.add_argument(f"--{split}-file", help=f"{split} file for --dataset files (.csv/.tsv/.jsonl)")
    p.add_argument("--text-column", help="text column of --dataset files")
    p.add_argument("--label-column", help="label column of --dataset files")
    p.add_argument("--labels", help="comma-separated label names (their order fixes the indices)")
    p.add_argument("--hf-name", help="Hugging Face dataset name or save_to_disk folder (--dataset hf)")
    p.add_argument("--language", help="prompt language: en or zh")
    p.add_argument("--max-train-samples", type=int, help="seeded subset of the train split")
    p.add_argument("--max-samples", type=int, help="seeded subset of the dev and evaluation splits")
    p.add_argument("--context-turns", type=int, help="earlier dialogue turns put before the utterance (default 0)")
    p.add_argument("--objective", help="classify (label scoring, default) or generate (paper's LM loss)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate (default: the method's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--split", help="split for the final evaluation (default test)")
    p.add_argument("--precision", help="auto (bf16 where the hardware has it), fp32 or bf16")
    p.add_argument("--device", help="auto (this process's GPU under accelerate launch, else CPU), cpu or cuda")
    p.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        default=None,
        help="recompute activations in backward (less memory, ~30%% slower)",
    )
    p.add_argument("--class-weights", help="none or balanced (inverse class frequency)")
    p.add_argument("--loss", help="cross-entropy (default) or focal (train.focal_gamma, default 2)")
    p.add_argument("--output", help="run directory to write")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing run directory")


def build_config(args: argparse.Namespace) -> RunConfig:
    """Config file, then convenience flags, then --set overrides; validated."""
    cfg = RunConfig.from_yaml(args.config) if args.config else RunConfig()
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            apply_override(cfg, key, value)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise EmotuneError(f"--set expects KEY=VALUE, got '{item}'")
        apply_override(cfg, key.strip(), value)
    return cfg.validate()


def cmd_train(args: argparse.Namespace) -> None:
    from emotune.distributed import is_main
    from emotune.train import train

    saved = Path(args.output or "") / "config.yaml"
    if args.resume and not args.config and args.output and saved.is_file():
        args.config = str(saved)  # resume the run as it was configured; flags still override
    cfg = build_config(args)
    if not is_main():  # under accelerate launch / torchrun one process reports for all
        logging.getLogger("emotune").setLevel(logging.WARNING)
    metrics = train(cfg, resume=args.resume)
    if is_main():
        print(json.dumps(_summary(metrics)))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from emotune.evaluate import evaluate_run
    from emotune.train import train

    if args.run:
        # Start from the run's own config so only what the user passes here changes.
        args.config = args.config or str(Path(args.run) / "config.yaml")
        metrics = evaluate_run(Path(args.run), build_config(args), args.output)
    else:
        args.method = args.method or "zero-shot"
        cfg = build_config(args)
        if cfg.method.name != "zero-shot":
            raise EmotuneError("evaluate without --run needs --method zero-shot (train the others first)")
        metrics = train(cfg)
    print(json.dumps(_summary(metrics)))


def cmd_predict(args: argparse.Namespace) -> None:
    from emotune.predict import Predictor
    from emotune.predict_files import predict_file

    if args.input and not args.output:
        raise EmotuneError("--input needs --output FILE.jsonl")
    if not args.input and not args.texts:
        raise EmotuneError("give texts to classify, or --input FILE --output FILE.jsonl")
    predictor = Predictor.load(args.run, batch_size=args.batch_size)  # after the cheap checks
    if args.input:
        result = predict_file(predictor, Path(args.input), Path(args.output), args.text_column)
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


def cmd_bench(args: argparse.Namespace) -> None:
    from emotune.harness import load_matrix, run_matrix

    matrix = load_matrix(args.matrix)
    results = run_matrix(matrix, Path(args.out), Path(args.runs))
    print(json.dumps({"cells": len(matrix.cells), "finished": len(results), "table": f"{args.out}/table.md"}))


def cmd_models(args: argparse.Namespace) -> None:
    from emotune.backbones import BACKBONES, DEFAULT_BACKBONE, cache_dir

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
    for name in dataset_names():
        info = dataset_info(name)
        print(f"{name:<20} {info.language:<4} {info.task:<10} {info.description}\n{'':<20} files: {info.files}")


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
    p.set_defaults(func=cmd_train)
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
    p.add_argument("--batch-size", type=int, default=16)
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
    p = sub.add_parser("bench", help="run a benchmark matrix (datasets x methods x seeds); resumable")
    p.add_argument("--matrix", required=True, help="matrix YAML (see benchmarks/paper.yaml)")
    p.add_argument("--out", required=True, help="results folder: cells/*.json, table.md, summary.json, bars.png")
    p.add_argument("--runs", default="runs/bench", help="where each cell's run directory goes")
    p.set_defaults(func=cmd_bench)
    sub.add_parser("models", help="list registered backbones").set_defaults(func=cmd_models)
    p = sub.add_parser("datasets", help="list registered datasets (--check: load them and count)")
    p.add_argument("--check", action="store_true", help="load every dataset found under --data-dir and count")
    p.add_argument("--data-dir", help="datasets root with one folder per corpus (default ../shared/datasets)")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser("quickstart", help="zero-shot vs LoRA vs P-Tuning v2 on the built-in corpus, offline")
    p.add_argument("--output", default="runs/quickstart")
    p.add_argument("--methods", default="zero-shot,lora,ptuning-v2")
    p.add_argument("--model", default="gemma3-270m")
    p.set_defaults(func=cmd_quickstart)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    for noisy in ("transformers", "peft", "accelerate", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # PEFT calls a transformers API that warns about its own future rename on every load.
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    try:
        args.func(args)
    except EmotuneError as err:
        print(f"emotune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emotune: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
