"""The benchmark harness on tiny models: a small matrix, baselines, report, resume after a stop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from transformers import BertConfig, BertModel

from conftest import build_tokenizer
from emotune.bench.harness import Cell, load_matrix, run_cell, run_matrix
from emotune.errors import EmotuneError


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = build_tokenizer(folder)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def _matrix(tmp_path: Path, model: str, files: dict[str, str], encoder: str) -> Path:
    spec = {
        "defaults": {
            "model": {"name": model},
            "train": {"batch_size": 4, "epochs": 1, "lr": 5e-3, "checkpoint_every": 0},
            "runtime": {"precision": "fp32"},
        },
        "seeds": [1, 2],
        "datasets": {
            "tiny": {
                "dataset": "files",
                "train_file": files["train"],
                "dev_file": files["dev"],
                "test_file": files["test"],
                "labels": ["negative", "positive"],
            }
        },
        "methods": {
            "lora": {"method": {"name": "lora"}},
            "tfidf-lr": {"baseline": "tfidf-lr", "seeds": 1},
            "minilm": {"baseline": "minilm", "baseline_model": encoder, "seeds": 1, "train": {"lr": 1e-3}},
        },
    }
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_matrix_runs_resumes_and_reports(tiny_gemma: str, sentiment_files, tiny_encoder: str, tmp_path: Path) -> None:
    matrix = load_matrix(_matrix(tmp_path, tiny_gemma, sentiment_files, tiny_encoder))
    keys = ["tiny__lora__s1", "tiny__lora__s2", "tiny__tfidf-lr__s1", "tiny__minilm__s1"]
    assert [c.key for c in matrix.cells] == keys
    out, runs = tmp_path / "results", tmp_path / "runs"
    calls: list[str] = []

    def stopped_after_one(cell: Cell, where: Path) -> dict[str, Any]:
        if calls:
            raise KeyboardInterrupt  # the user stops the run during the second cell
        calls.append(cell.key)
        return run_cell(cell, where)

    with pytest.raises(KeyboardInterrupt):
        run_matrix(matrix, out, runs, runner=stopped_after_one)
    first = out / "cells" / "tiny__lora__s1.json"
    stamp = first.stat().st_mtime_ns

    def counted(cell: Cell, where: Path) -> dict[str, Any]:
        calls.append(cell.key)
        return run_cell(cell, where)

    results = run_matrix(matrix, out, runs, runner=counted)
    assert calls == keys
    assert first.stat().st_mtime_ns == stamp  # the finished cell was not redone
    assert len(results) == 4 and all(0.0 <= r["accuracy"] <= 1.0 for r in results)
    tfidf = json.loads((out / "cells" / "tiny__tfidf-lr__s1.json").read_text())
    assert tfidf["accuracy"] >= 0.75  # the tiny task's words separate the classes
    lora = json.loads(first.read_text())
    assert "cores" in lora["machine"] and "torch threads" in lora["machine"]  # wall times name their hardware
    # and whether the CPU has the bf16 units runtime.precision auto uses (AVX-512) or runs fp32
    assert torch.backends.cpu.get_cpu_capability() in lora["machine"]
    assert (lora["recipe"]["device"], lora["recipe"]["precision"]) in {("cpu", "fp32"), ("cpu", "bf16")}
    table = (out / "table.md").read_text()
    assert "| tiny | accuracy / macro_f1 |" in table and "±" in table  # two LoRA seeds: mean ± std
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiny/lora"]["seeds"] == 2
    assert (out / "bars.png").stat().st_size > 1000


def test_matrix_errors(tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match="matrix file not found"):
        load_matrix(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"seeds": [1], "datasets": {"s": {"dataset": "sst2"}}, "methods": {"x": {"baseline": "svm"}}})
    )
    with pytest.raises(EmotuneError, match="unknown baseline 'svm'"):
        load_matrix(bad)
    bad.write_text(
        yaml.safe_dump({"seeds": [1], "datasets": {"s": {"dataset": "sst2"}}, "methods": {"x": {"train": {"lr": -1}}}})
    )
    with pytest.raises(EmotuneError, match=r"train\.lr must be positive"):
        load_matrix(bad)


def test_a_matrix_writes_the_views_it_asks_for(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    methods = {f"{m}-{n}": {"method": {"name": "lora"}} for m in ("lora", "other") for n in (8, 16)}
    spec = {"seeds": [1, 2], "datasets": {"d": {"dataset": "sst2"}}, "methods": methods}
    path.write_text(yaml.safe_dump(spec | {"views": {"curve": {"baselines": ["other"], "columns": ["lora", "other"]}}}))

    def fake(cell: Cell, where: Path) -> dict[str, Any]:
        f1 = 0.4 + 0.1 * cell.seed + (0.1 if cell.method.startswith("lora") else 0.0)
        return {"n": 10, "accuracy": 0.5, "macro_f1": f1, "ua": 0.5, "train_seconds": 1.0}

    out = tmp_path / "out"
    run_matrix(load_matrix(path).only(seeds=[1]), out, tmp_path / "runs", runner=fake)
    curve = json.loads((out / "learning-curve.json").read_text())["table"]["d"]
    assert curve["8"]["lora"]["macro_f1"] == 60.0 and curve["8"]["checks"]["macro_f1>=other"] is True
    run_matrix(load_matrix(path), out, tmp_path / "runs", runner=fake)  # more seeds: the view follows
    curve = json.loads((out / "learning-curve.json").read_text())["table"]["d"]
    assert curve["16"]["lora"]["seeds"] == 2 and curve["16"]["lora"]["macro_f1"] == 65.0
    assert "| d | 16 | 65.0±7.1 / 50.0 | 55.0±7.1 / 50.0 | ≥other |" in (out / "learning-curve.md").read_text()


@pytest.mark.parametrize(
    ("views", "message"),
    [
        ({"chart": {}}, "unknown view 'chart'"),
        ({"search": {"baseline": "x"}}, "view 'search': got an unexpected keyword argument 'baseline'"),
        (["curve"], "'views' must map view names"),
    ],
)
def test_a_matrix_refuses_unknown_views_and_options(tmp_path: Path, views: Any, message: str) -> None:
    path = tmp_path / "m.yaml"
    spec = {"seeds": [1], "datasets": {"d": {"dataset": "sst2"}}, "methods": {"x": {"method": {"name": "lora"}}}}
    path.write_text(yaml.safe_dump(spec | {"views": views}))
    with pytest.raises(EmotuneError, match=message):
        load_matrix(path)


MATRICES = sorted((Path(__file__).parent.parent / "benchmarks").rglob("*.yaml"))


@pytest.mark.parametrize("path", MATRICES, ids=[p.parent.name + "/" + p.name for p in MATRICES])
def test_every_shipped_matrix_is_valid(path: Path) -> None:
    matrix = load_matrix(path)
    assert matrix.cells and len({c.key for c in matrix.cells}) == len(matrix.cells)


def test_a_rerun_keeps_the_table_and_a_second_matrix_joins_its_header(tmp_path: Path) -> None:
    def matrix(name: str, method: str) -> Path:
        path = tmp_path / name
        spec = {"seeds": [1], "datasets": {"d": {"dataset": "sst2"}}, "methods": {method: {"method": {"name": "lora"}}}}
        path.write_text(yaml.safe_dump(spec))
        return path

    def fake(cell: Cell, where: Path) -> dict[str, Any]:
        return {"n": 10, "accuracy": 0.5, "macro_f1": 0.5, "ua": 0.5}

    out = tmp_path / "out"
    first = load_matrix(matrix("a.yaml", "lora"))
    run_matrix(first, out, tmp_path / "runs", runner=fake)
    table = out / "table.md"
    assert table.read_text().startswith(f"Matrix: `{first.source}`")
    stamp = table.stat().st_mtime_ns
    run_matrix(first, out, tmp_path / "runs", runner=fake)  # every cell done: nothing rewritten
    assert table.stat().st_mtime_ns == stamp
    second = load_matrix(matrix("b.yaml", "lora-b"))
    run_matrix(second, out, tmp_path / "runs", runner=fake)
    assert table.read_text().startswith(f"Matrix: `{first.source}` + `{second.source}`")
    cell = json.loads((out / "cells" / "d__lora-b__s1.json").read_text())
    assert cell["matrix"] == second.source


def test_a_rerun_rebuilds_the_report_after_cells_are_copied_in(tmp_path: Path) -> None:
    """A cell finished on another machine (a GPU lane) and copied into ``cells/`` joins the table
    on the next re-run, although that re-run has nothing to train."""
    path = tmp_path / "m.yaml"
    spec = {"seeds": [1, 2], "datasets": {"d": {"dataset": "sst2"}}, "methods": {"x": {"method": {"name": "lora"}}}}
    path.write_text(yaml.safe_dump(spec))
    matrix = load_matrix(path)

    def fake(cell: Cell, where: Path) -> dict[str, Any]:
        return {"n": 10, "accuracy": 0.5, "macro_f1": 0.25 * cell.seed, "ua": 0.5}

    out = tmp_path / "out"
    run_matrix(matrix.only(seeds=[1]), out, tmp_path / "runs", runner=fake)
    elsewhere = tmp_path / "gpu"
    run_matrix(matrix.only(seeds=[2]), elsewhere, tmp_path / "runs", runner=fake)
    (out / "cells" / "d__x__s2.json").write_bytes((elsewhere / "cells" / "d__x__s2.json").read_bytes())
    run_matrix(matrix, out, tmp_path / "runs", runner=lambda c, w: pytest.fail(f"{c.key} ran again"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["d/x"]["seeds"] == 2 and summary["d/x"]["macro_f1"] == pytest.approx(0.375)
    assert "37.50" in (out / "table.md").read_text()  # the mean of both seeds' macro-F1


def test_part_of_a_matrix_runs_by_dataset_and_method_keys(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    spec = {
        "seeds": [1, 2],
        "datasets": {"a": {"dataset": "sst2"}, "b": {"dataset": "sst5"}},
        "methods": {"x": {"method": {"name": "lora"}}, "y": {"method": {"name": "zero-shot"}, "seeds": 1}},
    }
    path.write_text(yaml.safe_dump(spec))
    matrix = load_matrix(path)
    assert len(matrix.cells) == 6
    part = matrix.only(["b"], ["x"])
    assert [c.key for c in part.cells] == ["b__x__s1", "b__x__s2"] and part.source == matrix.source
    assert len(matrix.only(None, ["y"]).cells) == 2 and len(matrix.only(seeds=[2]).cells) == 2
    with pytest.raises(EmotuneError, match=r"no method \['z'\]"):
        matrix.only(None, ["z"])


def test_seeds_can_be_counted_per_dataset(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    spec = {
        "seeds": [1, 2, 3],
        "datasets": {"a": {"dataset": "sst2"}, "b": {"dataset": "sst5"}},
        "methods": {"x": {"method": {"name": "lora"}, "seeds": {"default": 1, "b": 3}}, "y": {"seeds": {"a": 2}}},
    }
    path.write_text(yaml.safe_dump(spec))
    keys = [c.key for c in load_matrix(path).cells]
    # y names no default, so b runs every seed of the matrix
    assert keys == ["a__x__s1", "a__y__s1", "a__y__s2", "b__x__s1", "b__x__s2", "b__x__s3"] + [
        f"b__y__s{s}" for s in (1, 2, 3)
    ]
    for seeds, error in (({"c": 2}, r"unknown datasets \['c'\]"), ({"a": 0}, "positive count, got 0")):
        spec["methods"]["x"]["seeds"] = seeds
        path.write_text(yaml.safe_dump(spec))
        with pytest.raises(EmotuneError, match=error):
            load_matrix(path)


def test_a_cell_keeps_per_label_recall_and_the_recipe(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"seeds": [1], "datasets": {"d": {"dataset": "sst2"}}, "methods": {"x": {}}}))

    def fake(cell: Cell, where: Path) -> dict[str, Any]:
        per_class = {"negative": {"recall": 0.0, "support": 3}, "positive": {"recall": 1.0, "support": 7}}
        dev_recall = {"negative": {"recall": 0.5, "support": 2}, "positive": {"recall": 1.0, "support": 4}}
        kept = {"best_dev": {"macro_f1": 0.6}, "best_dev_recall": dev_recall}
        return {"n": 10, "accuracy": 0.7, "macro_f1": 0.4, "per_class": per_class, "recipe": {"steps": 200}} | kept

    run_matrix(load_matrix(path), tmp_path / "out", tmp_path / "runs", runner=fake)
    cell = json.loads((tmp_path / "out" / "cells" / "d__x__s1.json").read_text())
    assert cell["recall"]["negative"] == {"recall": 0.0, "support": 3} and cell["recipe"] == {"steps": 200}
    # The kept checkpoint's dev recall per label: a search can count rare-label hits without a re-evaluation.
    assert cell["best_dev_recall"]["negative"] == {"recall": 0.5, "support": 2}


def test_setfit_and_the_classification_head_recipe_run_on_tiny_data(
    tiny_gemma: str, sentiment_files, tiny_encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("setfit")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    spec = yaml.safe_load(_matrix(tmp_path, tiny_gemma, sentiment_files, tiny_encoder).read_text())
    spec["methods"] = {
        "setfit": {"baseline": "setfit", "baseline_model": tiny_encoder, "seeds": 1},
        "seq-cls-lora": {"baseline": "seq-cls-lora", "seeds": 1, "train": {"epochs": 2, "min_steps": 0}},
    }
    (tmp_path / "peers.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    results = run_matrix(load_matrix(tmp_path / "peers.yaml"), tmp_path / "out", tmp_path / "runs")
    assert len(results) == 2
    for name in ("setfit", "seq-cls-lora"):
        cell = json.loads((tmp_path / "out" / "cells" / f"tiny__{name}__s1.json").read_text())
        assert cell["method"] == name and cell["n"] == 8 and 0.0 <= cell["macro_f1"] <= 1.0
        assert cell["train_seconds"] > 0
    assert list(work.iterdir()) == []  # SetFit's trainer leaves no ./checkpoints behind
