"""The benchmark reports and a matrix's views judge targets from cell files: met, missed (with the
gap), not run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emotune.bench import search, targets
from emotune.bench.curve import Curve
from emotune.errors import EmotuneError


def _cell(out: Path, dataset: str, method: str, seed: int, **metrics: Any) -> None:
    cell = {"dataset": dataset, "method": method, "seed": seed, "train_seconds": 10.0, **metrics}
    (out / "cells").mkdir(parents=True, exist_ok=True)
    (out / "cells" / f"{dataset}__{method}__s{seed}.json").write_text(json.dumps(cell))


def test_paper_targets_reports_met_missed_and_not_run(tmp_path: Path) -> None:
    _cell(tmp_path, "mastodon", "lora", 42, accuracy=0.70, macro_f1=0.70)
    _cell(tmp_path, "mastodon", "lora", 43, accuracy=0.66, macro_f1=0.66)
    _cell(tmp_path, "mastodon", "minilm", 42, accuracy=0.69, macro_f1=0.69)
    _cell(tmp_path, "mosi3", "lora", 42, accuracy=0.80, macro_f1=0.62)
    table = targets.build(tmp_path)
    mastodon = {c["target"]: c for c in table["mastodon"]["checks"]}
    assert table["mastodon"]["methods"]["lora"]["macro_f1"] == 68.0  # mean of two seeds
    assert mastodon["macro_f1 >= paper"]["met"] and mastodon["macro_f1 >= paper"]["gap"] == 0.77
    assert not mastodon["macro_f1 >= minilm"]["met"]
    mosi3 = {c["target"]: c for c in table["mosi3"]["checks"]}
    assert mosi3["accuracy >= paper"]["gap"] == -3.82 and mosi3["macro_f1 >= paper"]["met"]
    assert table["sst2"]["checks"] == []
    text = targets.markdown(table, "m.yaml")
    assert "**not met** (-3.82)" in text and "| sst2 |" in text and "not run" in text


def test_learning_curve_compares_on_the_seeds_the_default_ran(tmp_path: Path) -> None:
    curve = Curve()
    recall = {"a": {"recall": 0.5, "support": 50}, "b": {"recall": 0.0, "support": 50}}
    _cell(tmp_path, "friends", "lora-256", 42, accuracy=0.60, macro_f1=0.40, recall=recall)
    _cell(tmp_path, "friends", "lora-1epoch-256", 42, accuracy=0.65, macro_f1=0.20)
    _cell(tmp_path, "friends", "tfidf-lr-256", 42, accuracy=0.50, macro_f1=0.30)
    _cell(tmp_path, "friends", "tfidf-lr-256", 43, accuracy=0.10, macro_f1=0.90)  # a seed lora did not run
    checks = curve.build(tmp_path)["friends"][256]["checks"]
    assert checks["macro_f1>=tfidf-lr"] is True
    assert checks["silent_labels"] == ["b"]
    assert checks["accuracy_drop_vs_old"] == 5.0 and checks["accuracy_ok"] is False
    assert "acc -5.0 vs old (**more than 2 below**)" in curve.markdown(curve.build(tmp_path), "m.yaml")


def test_harness_timing_table_tells_a_cell_not_run_from_a_method_that_trains_nothing(tmp_path: Path) -> None:
    from emotune.bench.report import read_cells, table

    _cell(tmp_path, "sst2", "zero-shot", 42, accuracy=0.7, train_seconds=0.0, train_examples_per_second=None)
    _cell(tmp_path, "sst2", "lora", 42, accuracy=0.9, train_seconds=100.0, train_examples_per_second=5.0)
    _cell(tmp_path, "sst5", "zero-shot", 42, accuracy=0.3, train_seconds=0.0, train_examples_per_second=None)
    timing = table(read_cells(tmp_path)).split("Training time per cell")[1]
    assert "| sst2 | — (no training) | 100 s, 5.0 ex/s, n=1 |" in timing
    assert "| sst5 | — (no training) | not run |" in timing  # lora has no sst5 cell


def test_report_table_says_when_its_cells_were_scored_on_dev(tmp_path: Path) -> None:
    from emotune.bench.report import read_cells, write_report

    _cell(tmp_path / "test", "mastodon", "lora", 42, accuracy=0.7, macro_f1=0.7)
    write_report(read_cells(tmp_path / "test"), tmp_path / "test", "`m.yaml`")
    assert "Scored on" not in (tmp_path / "test" / "table.md").read_text()
    _cell(tmp_path / "dev", "mastodon", "lora", 42, accuracy=0.7, macro_f1=0.7, config={"train": {"eval_split": "dev"}})
    write_report(read_cells(tmp_path / "dev"), tmp_path / "dev", "`m.yaml`")
    lines = (tmp_path / "dev" / "table.md").read_text().splitlines()
    assert lines[2] == "Scored on the dev split (`train.eval_split`); the paper's columns are test figures."


def test_dev_search_reads_dev_scores_never_test(tmp_path: Path) -> None:
    dev = {"train": {"eval_split": "dev"}}
    test = {"train": {"eval_split": "test"}}
    _cell(tmp_path, "friends", "base", 42, config=dev, accuracy=0.7, macro_f1=0.5, ua=0.4)
    # Scored on test: only the kept checkpoint's dev metrics may enter the table.
    kept = {"accuracy": 0.8, "macro_f1": 0.6, "ua": 0.5}
    _cell(tmp_path, "friends", "context", 42, config=test, accuracy=0.1, macro_f1=0.1, ua=0.1, best_dev=kept)
    _cell(tmp_path, "friends", "context", 43, config=test, accuracy=0.1, macro_f1=0.1, ua=0.1, best_dev=kept)
    table = search.load(tmp_path)
    assert table["context"]["friends"]["macro_f1"] == 0.6 and table["context"]["friends"]["seeds"] == 2
    text = search.markdown(table, "base", str(tmp_path))
    assert "60.0 / 80.0 / 50.0 (2 seeds)" in text and "+10.0 / +10.0 / +10.0 (n=1)" in text
    _cell(tmp_path, "friends", "context", 44, config=test, accuracy=0.1, macro_f1=0.1, ua=0.1)
    with pytest.raises(EmotuneError, match="kept no dev metrics"):
        search.load(tmp_path)
    assert "Δ" not in search.markdown({"context": {"friends": kept | {"seeds": 1}}}, "", str(tmp_path))


def test_dev_search_counts_the_rarest_labels_dev_hits_over_seeds(tmp_path: Path) -> None:
    test = {"train": {"eval_split": "test"}}
    kept = {"accuracy": 0.8, "macro_f1": 0.6, "ua": 0.5}

    def recall(neutral: float) -> dict[str, dict[str, float]]:
        return {"neutral": {"recall": neutral, "support": 4}, "positive": {"recall": 0.9, "support": 10}}

    # The test split's recall must not count: only the kept checkpoint's dev recall does.
    for seed, neutral in ((42, 0.25), (43, 0.5)):
        _cell(
            tmp_path,
            "mosi3",
            "x",
            seed,
            config=test,
            best_dev=kept,
            recall=recall(1.0),
            best_dev_recall=recall(neutral),
        )
    text = search.markdown(search.load(tmp_path), "", str(tmp_path))
    assert "60.0 / 80.0 / 50.0 · neutral 3/8 (2 seeds)" in text and search.RAREST_NOTE in text
    # One cell from before per-label dev recall was kept: no count rather than a partial one.
    _cell(tmp_path, "mosi3", "x", 44, config=test, best_dev=kept)
    text = search.markdown(search.load(tmp_path), "", str(tmp_path))
    assert "60.0 / 80.0 / 50.0 (3 seeds)" in text and search.RAREST_NOTE not in text


def test_timing_helpers_time_a_command_and_a_product(tmp_path: Path) -> None:
    import subprocess
    import sys

    import torch

    from emotune.bench import timing

    marker = tmp_path / "runs.txt"
    script = f"open({str(marker)!r}, 'a').write('x'); print('done')"
    seconds, output = timing.wall_seconds([sys.executable, "-c", script], runs=2, warmup=1)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert output.strip() == "done" and marker.read_text() == "xxx"  # the warm-up ran, untimed
    cpu = torch.device("cpu")
    timing.reset_peak(cpu)  # no GPU work to wait for: both return at once
    timing.sync(cpu)
    assert timing.matmul_peak(torch.float32, cpu, n=64, reps=2) > 0
    assert timing.peak_rss_mb() > 10  # an interpreter with torch loaded holds more than 10 MB
    with pytest.raises(subprocess.CalledProcessError, match="returned non-zero exit status 3"):
        timing.wall_seconds([sys.executable, "-c", "raise SystemExit(3)"], runs=1)


def _shipped_generalist() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "shipped", Path(__file__).parents[1] / "benchmarks/shipped_generalist.py"
    )
    assert spec and spec.loader
    shipped = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shipped)
    return shipped


def test_shipped_generalist_scores_other_temperatures_from_the_probabilities_it_was_given() -> None:
    import numpy as np

    shipped = _shipped_generalist()
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 3)) * 4.0  # sharp: temperature 1 is overconfident here
    gold = [int(np.argmax(row + rng.normal(size=3) * 4.0)) for row in logits]
    z = logits / 1.5  # what the texts were scored with at temperature 1.5
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = shipped.other_temperatures(probs, gold, temperature=1.5)
    assert set(out["ece_by_temperature"]) == {str(t) for t in shipped.GRID}
    best = min(out["ece_by_temperature"], key=out["ece_by_temperature"].get)
    assert float(best) > 1.0 and out["nll_optimal_temperature"] > 1.0
    cells = {
        ("sst2", "generalist"): {"ece_by_temperature": {"1.0": 0.02, "2.0": 0.08}, "nll_optimal_temperature": 1.1},
        ("meld", "generalist"): {"ece_by_temperature": {"1.0": 0.20, "2.0": 0.04}, "nll_optimal_temperature": 2.4},
        ("meld", "frozen"): {"ece": 0.5},
    }
    one = shipped.one_temperature(cells)
    assert one["grid"]["1.0"] == {"ece_at_most_5": 1, "max_ece": 0.20}
    assert one["nll_optimal"] == {"sst2": 1.1, "meld": 2.4}
    assert one["own_best"]["meld"] == {"temperature": 2.0, "ece": 0.04}


def test_shipped_generalist_compares_arms_on_the_seeds_each_comparison_shares(tmp_path: Path) -> None:
    shipped = _shipped_generalist()
    for seed, f1 in ((42, 0.50), (43, 0.60), (44, 0.70)):
        _cell(tmp_path / "a", "sst5", "shipped-256", seed, macro_f1=f1)
        _cell(tmp_path / "b", "sst5", "lora-256", seed, macro_f1=f1 - 0.1)
    _cell(tmp_path / "c", "sst5", "setfit-256", 43, macro_f1=0.2)
    two = {"shipped": (tmp_path / "a" / "cells", "shipped-256"), "scratch": (tmp_path / "b" / "cells", "lora-256")}
    pair = shipped._paired(two, "sst5")
    assert pair["seeds"] == 3 and abs(pair["shipped"] - 0.6) < 1e-9 and abs(pair["scratch"] - 0.5) < 1e-9
    three = shipped._paired(two | {"setfit": (tmp_path / "c" / "cells", "setfit-256")}, "sst5")
    assert three["seeds"] == 1 and abs(three["shipped"] - 0.6) < 1e-9 and three["setfit"] == 0.2
    assert shipped._paired(two, "meld") is None
