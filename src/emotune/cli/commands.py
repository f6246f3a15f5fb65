"""The subcommands: each turns parsed arguments into a library call and prints its result."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from emotune.cli.flags import DISTILL_FLAGS, build_config, set_items
from emotune.errors import EmotuneError
from emotune.methods import UNTRAINED, get_method


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


def add_plan_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpu-memory", help="the GPU's memory, e.g. 24GiB (default: this machine's GPU, if any)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.run:
        # Start from the run's own config so only what the user passes here changes.
        saved = not args.config
        if saved:
            from emotune.rundir import load_run

            args.config = str(load_run(args.run).config_file)
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
    from emotune.distributed import is_main
    from emotune.inference.labelling import label_file
    from emotune.inference.predict import check_min_confidence
    from emotune.inference.rows import dialogue_columns
    from emotune.storage import check_encoding

    if args.input and not args.output:
        raise EmotuneError("--input needs --output FILE.jsonl")
    if not args.input and not args.texts:
        raise EmotuneError("give texts to classify, or --input FILE --output FILE.jsonl")
    if args.speaker_column and not args.dialogue_column:
        raise EmotuneError("--speaker-column needs --dialogue-column")
    if args.dialogue_column and not args.input:
        raise EmotuneError("--dialogue-column needs --input FILE")
    check_min_confidence(args.min_confidence)
    check_encoding(args.encoding)
    if args.chunk_rows < 1:
        raise EmotuneError("--chunk-rows must be >= 1")
    predictor = load_predictor(args)  # after the cheap checks
    predictor.min_confidence = args.min_confidence
    if args.input:
        dialogue = dialogue_columns(predictor, args.dialogue_column, args.speaker_column)
        source, target = Path(args.input), Path(args.output)
        result = label_file(predictor, source, target, args.text_column, args.chunk_rows, dialogue, args.encoding)
        if is_main():  # under accelerate launch one process reports for all
            print(json.dumps(asdict(result)))
        return
    preds = predictor.predict(args.texts)
    for text, pred in zip(args.texts, preds, strict=True):
        if is_main():
            print(json.dumps({"text": text, **pred.to_dict()}, ensure_ascii=False))


def cmd_explain(args: argparse.Namespace) -> None:
    from emotune.inference.explain import METHODS

    if not args.texts or any(not t.strip() for t in args.texts):
        raise EmotuneError("give one or more non-empty texts to explain")
    if args.method not in METHODS:
        raise EmotuneError(f"--method must be one of {METHODS}, got '{args.method}'")
    known = _labels_without_loading(args)
    if args.label is not None and known is not None and args.label not in known:
        raise EmotuneError(f"label '{args.label}' is not one of the run's labels {list(known)}")
    predictor = load_predictor(args)
    for text, explanation in zip(
        args.texts, predictor.explain(args.texts, args.label, method=args.method), strict=True
    ):
        print(json.dumps({"text": text, **explanation.to_dict()}, ensure_ascii=False))


def _labels_without_loading(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The labels a predictor will have, read before any weights load (None: not known yet)."""
    from emotune.data.schema import LabelSet
    from emotune.rundir import RUN_FILE, RunMeta

    if args.labels is not None:
        from emotune.inference.call_time import parse_labels

        return parse_labels(args.labels)
    if not args.run or not (Path(args.run) / RUN_FILE).is_file() or getattr(args, "corpus", None):
        return None
    return LabelSet.from_dict(RunMeta.load(Path(args.run)).labels).names


def load_predictor(args: argparse.Namespace) -> Any:
    """``--run RUN``; ``--labels`` on the shipped generalist, ``--run``'s adapter or the frozen
    ``--model``; neither: the shipped generalist with Ekman's emotions and neutral."""
    from emotune.inference.predict import Predictor, check_batch_size
    from emotune.models.generalist import DEFAULT_LABELS, is_shipped

    batch = getattr(args, "batch_size", None)
    check_batch_size(batch)  # before any weights load
    if args.labels is None and (args.run or args.model or args.frozen_backbone or not is_shipped()):
        if not args.run:
            raise EmotuneError("give --labels L1,L2,... (with --model or --frozen-backbone), or --run RUN")
        if args.model or args.task or args.frozen_backbone:
            raise EmotuneError("--model, --task and --frozen-backbone go with --labels; a run has its own")
        predictor = Predictor.load(args.run, batch_size=batch, corpus=getattr(args, "corpus", None))
        predictor.language = args.language or predictor.language
        return predictor
    from emotune.inference.call_time import parse_labels

    labels = parse_labels(DEFAULT_LABELS if args.labels is None else args.labels)  # before any weights load
    return Predictor.zero_shot(
        labels,
        args.model,
        args.run,
        task=args.task,
        batch_size=batch,
        language=args.language,
        frozen_backbone=args.frozen_backbone,
    )


def cmd_serve(args: argparse.Namespace) -> None:
    from emotune.serve.server import serve
    from emotune.serve.settings import ServeSettings

    # The limits the command line offers (--max-texts, ...); the rest keep their defaults.
    settings = ServeSettings(**{f.name: getattr(args, f.name) for f in fields(ServeSettings) if hasattr(args, f.name)})
    serve(
        args.run,
        args.host,
        args.port,
        settings,
        labels=args.labels,
        model=args.model,
        task=args.task,
        language=args.language,
        frozen_backbone=args.frozen_backbone,
        corpus=args.corpus,
    )


def cmd_export(args: argparse.Namespace) -> None:
    from emotune.inference.export import ExportSource, check_output, export
    from emotune.models.generalist import NAME as GENERALIST

    check_output(args.format, Path(args.output), args.overwrite)  # before any weights load
    source: ExportSource | str = args.run or GENERALIST
    if args.labels is not None:
        source = ExportSource.of_labels(
            args.labels,
            args.run,
            model=args.model,
            task=args.task,
            language=args.language,
            frozen_backbone=args.frozen_backbone,
        )
    elif args.model or args.task or args.frozen_backbone or args.language:
        raise EmotuneError("--model, --task, --language and --frozen-backbone go with --labels; a run has its own")
    result = export(source, args.format, Path(args.output), quantize=args.int8, overwrite=args.overwrite)
    print(json.dumps(asdict(result)))


def cmd_distill(args: argparse.Namespace) -> None:
    from emotune.distill import distill, distill_config

    overrides: list[tuple[str, Any]] = [
        (flag.replace("-", "_"), getattr(args, flag.replace("-", "_"))) for flag in DISTILL_FLAGS
    ]
    overrides = [(k, v) for k, v in overrides if v is not None] + set_items(args.set)
    if args.encoding:
        overrides.append(("data.encoding", args.encoding))
    if args.overwrite:
        overrides.append(("overwrite", True))
    metrics = distill(distill_config(args.run, args.output, overrides))
    print(json.dumps(_summary(metrics)))


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
        "ece",
        "ece_floor_p95",  # an ECE under it is what a perfectly calibrated model shows on as many texts
        "invalid_rate",
        "train_seconds",
        "unrecalled",
    )
    return {k: metrics[k] for k in keys if k in metrics}
