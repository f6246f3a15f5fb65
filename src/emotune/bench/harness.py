"""Benchmark harness: a YAML matrix of datasets x methods x seeds, run cell by cell, resumable.

Matrix file::

    defaults:                 # RunConfig fields every cell starts from
      train: {epochs: 1}
      data: {max_train_samples: 1000}
    seeds: [42, 43, 44]
    datasets:                 # key -> DataConfig fields
      sst2: {dataset: sst2, data_dir: ../shared/datasets/sst}
    methods:                  # key -> RunConfig fields, or {baseline: tfidf-lr|minilm, ...}
      zero-shot: {method: {name: zero-shot}, seeds: 1}
      lora: {method: {name: lora}}
      tfidf-lr: {baseline: tfidf-lr, seeds: 1}
      minilm: {baseline: minilm, seeds: {default: 1, sst2: 3}}   # seeds per dataset
    views:                    # optional: written beside the report (emotune.bench.views)
      curve: {}               # learning curve over <method>-<budget> keys; targets; search

Each finished cell is one JSON file ``OUT/cells/<dataset>__<method>__s<seed>.json`` written
atomically; a re-run skips cells whose file exists, so a stopped run continues where it was.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotune.bench.baselines import BASELINES, run_baseline
from emotune.bench.record import machine
from emotune.bench.report import KEEP, read_cells, report_is_current, write_report
from emotune.bench.views import check_views, write_views
from emotune.config import RunConfig
from emotune.errors import EmotuneError
from emotune.methods import UNTRAINED
from emotune.metrics import recall_by_label
from emotune.pipeline import finished_training, run
from emotune.storage import read_yaml_mapping, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One run of the matrix."""

    dataset: str
    method: str
    seed: int
    config: dict[str, Any] = field(hash=False, compare=False)
    baseline: str | None = None
    baseline_model: str | None = None

    @property
    def key(self) -> str:
        return f"{self.dataset}__{self.method}__s{self.seed}"


@dataclass
class Matrix:
    """A parsed, validated matrix file."""

    cells: list[Cell]
    source: str
    views: dict[str, dict[str, Any]] = field(default_factory=dict)

    def only(
        self, datasets: list[str] | None = None, methods: list[str] | None = None, seeds: list[int] | None = None
    ) -> Matrix:
        """The cells of the given dataset and method keys and seeds (None: all); unknown keys are
        an error, so a typo does not silently run nothing."""
        checks: list[tuple[str, list[Any] | None, set[Any]]] = [
            ("dataset", datasets, {c.dataset for c in self.cells}),
            ("method", methods, {c.method for c in self.cells}),
            ("seed", seeds, {c.seed for c in self.cells}),
        ]
        for kind, wanted, known in checks:
            missing = sorted(set(wanted or ()) - known)
            if missing:
                raise EmotuneError(f"{self.source}: no {kind} {missing} in the matrix (it has {sorted(known)})")
        keep = [
            c
            for c in self.cells
            if (datasets is None or c.dataset in datasets)
            and (methods is None or c.method in methods)
            and (seeds is None or c.seed in seeds)
        ]
        return Matrix(keep, self.source, self.views)


def load_matrix(path: str | Path) -> Matrix:
    """Reads and validates a matrix file (every cell must build a valid RunConfig)."""
    file = Path(path)
    spec = read_yaml_mapping(file, "matrix")
    for key in ("seeds", "datasets", "methods"):
        if not spec.get(key):
            raise EmotuneError(f"{file}: '{key}' is missing or empty")
    unknown = set(spec) - {"defaults", "seeds", "datasets", "methods", "views"}
    if unknown:
        raise EmotuneError(f"{file}: unknown top-level keys {sorted(unknown)}")
    for method, entry in spec["methods"].items():
        _check_seed_counts(file, method, (entry or {}).get("seeds"), spec["datasets"])
    cells = [cell for d in spec["datasets"] for m in spec["methods"] for cell in _cells(spec, d, m)]
    for cell in cells:
        if cell.baseline is not None and cell.baseline not in BASELINES:
            raise EmotuneError(f"{file}: method '{cell.method}': unknown baseline '{cell.baseline}'")
        RunConfig.from_dict(cell.config).validate()
    return Matrix(cells, str(file), check_views(file, spec.get("views")))


def _cells(spec: dict[str, Any], dataset: str, method: str) -> list[Cell]:
    entry = dict(spec["methods"][method] or {})
    baseline, baseline_model = entry.pop("baseline", None), entry.pop("baseline_model", None)
    n_seeds = _seed_count(entry.pop("seeds", None), dataset)
    config = _merge(copy.deepcopy(spec.get("defaults") or {}), entry)
    config = _merge(config, {"data": spec["datasets"][dataset] or {}})
    if baseline is not None:
        config["method"] = {"name": UNTRAINED}  # unused by baselines; keeps the config valid
    seeds = spec["seeds"][: int(n_seeds)] if n_seeds else spec["seeds"]
    return [
        Cell(dataset, method, int(s), _merge(copy.deepcopy(config), {"train": {"seed": s}}), baseline, baseline_model)
        for s in seeds
    ]


def _seed_count(value: int | dict[str, int] | None, dataset: str) -> int | None:
    """How many of the matrix's seeds a method runs on ``dataset`` (None: all of them).

    A mapping gives a count per dataset key, ``default`` for the rest: extra seeds where one
    seed's verdict is too noisy to trust, without paying for them on every corpus.
    """
    if isinstance(value, dict):
        return value.get(dataset, value.get("default"))
    return value


def _check_seed_counts(file: Path, method: str, value: Any, datasets: dict[str, Any]) -> None:
    counts = value if isinstance(value, dict) else {"default": value}
    unknown = sorted(set(counts) - set(datasets) - {"default"})
    if unknown:
        raise EmotuneError(f"{file}: method '{method}': seeds for unknown datasets {unknown}")
    for n in counts.values():
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise EmotuneError(f"{file}: method '{method}': seeds must be a positive count, got {n!r}")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def run_cell(cell: Cell, runs: Path) -> dict[str, Any]:
    """Trains/evaluates one cell; returns its metrics."""
    cfg = RunConfig.from_dict(cell.config)
    cfg.output, cfg.overwrite = str(runs / cell.key), True
    cfg.validate()
    if cell.baseline is not None:
        return run_baseline(cell.baseline, cfg, Path(cfg.output), cell.baseline_model)
    # A cell that died while being evaluated has a finished training of this very config in its
    # run directory: only its evaluation runs again. Anything else starts afresh.
    return run(cfg, resume=finished_training(Path(cfg.output), cfg) is not None)


def run_matrix(
    matrix: Matrix, out: Path, runs: Path, runner: Callable[[Cell, Path], dict[str, Any]] = run_cell
) -> list[dict[str, Any]]:
    """Runs every unfinished cell, logging cells done and left with an ETA, then writes the
    report; returns all cell results. When every cell was done earlier and the report already
    covers every cell file, it is left as it is (it may combine several matrices written into the
    same folder)."""
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    todo = [c for c in matrix.cells if not (cells_dir / f"{c.key}.json").is_file()]
    log.info("%d cells: %d done earlier, %d to run", len(matrix.cells), len(matrix.cells) - len(todo), len(todo))
    started = time.monotonic()
    for i, cell in enumerate(todo):
        log.info("[%d/%d] %s: running%s", i + 1, len(todo), cell.key, _eta(started, i, len(todo)))
        metrics = runner(cell, runs)
        record = {"dataset": cell.dataset, "method": cell.method, "seed": cell.seed, "matrix": matrix.source}
        record |= {"config": cell.config} | {k: metrics.get(k) for k in KEEP} | _recall_and_recipe(metrics)
        record["machine"] = machine()
        write_json(cells_dir / f"{cell.key}.json", record)
    results = read_cells(out)
    if todo or not report_is_current(results, out):
        write_report(results, out, matrix_sources(out, matrix.source))
    write_views(matrix.views, out, matrix.source)
    return results


def _recall_and_recipe(metrics: dict[str, Any]) -> dict[str, Any]:
    """Each label's recall and support, the recipe training resolved (steps, weighting), and the
    kept checkpoint's dev metrics and dev recall per label (what a recipe search compares)."""
    kept = {k: metrics.get(k) for k in ("recipe", "best_dev", "best_dev_recall")}
    return {"recall": recall_by_label(metrics) or None} | kept


def _eta(started: float, done: int, total: int) -> str:
    if not done:
        return ""
    per_cell = (time.monotonic() - started) / done
    return f" ({done} done, {total - done} left, ETA {per_cell * (total - done) / 60:.0f} min)"


def matrix_sources(out: Path, current: str) -> str:
    """The matrices whose cells share ``out``: those the existing table names, plus ``current``."""
    table = out / "table.md"
    first = table.read_text().splitlines()[0] if table.is_file() else ""
    earlier = [s.strip(" `") for s in first.removeprefix("Matrix:").split(" + ")] if first.startswith("Matrix:") else []
    return " + ".join(f"`{s}`" for s in dict.fromkeys([*earlier, current]) if s)
