"""Crash safety in real processes: kill -9 mid-training then --resume; resumable file prediction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from emotune.inference.labelling import label_file
from emotune.inference.predict import Predictor
from emotune.pipeline import run
from helpers import tiny_config

CLI = [sys.executable, "-c", "from emotune.cli import main; raise SystemExit(main())"]


def test_kill_9_mid_training_then_resume_gives_the_same_result(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    settings = {"epochs": 12, "checkpoint_every": 1, "eval_every": 8}
    straight = run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "straight"), **settings))
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "killed"), **settings)
    cfg_file = tmp_path / "killed.yaml"
    cfg.to_yaml(cfg_file)
    proc = subprocess.Popen([*CLI, "train", "--config", str(cfg_file)], stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 180
    while not any(int(p.name.split("-")[1]) >= 15 for p in ckpts.glob("step-*")):
        assert proc.poll() is None, "training finished before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint after 180 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # at whatever point it has reached: maybe mid-write
    proc.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists()
    resumed = subprocess.run([*CLI, "train", "--output", str(tmp_path / "killed"), "--resume"], capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    metrics = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "best_dev_macro_f1", "best_dev_step"):
        assert metrics[key] == pytest.approx(straight[key], abs=1e-6)
    ours = [json.loads(x) for x in (tmp_path / "killed" / "predictions.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (tmp_path / "straight" / "predictions.jsonl").read_text().splitlines()]
    for a, b in zip(ours, ref, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)


def test_file_prediction_resumes_after_a_crash_and_reports_bad_rows(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "run"), epochs=1))
    predictor = Predictor.load(tmp_path / "run")
    source = tmp_path / "in.jsonl"
    rows = [{"text": f"good fun {i}" if i % 7 else ""} for i in range(40)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    reference = label_file(predictor, source, tmp_path / "ref.jsonl", chunk=8)
    assert (reference.rows, reference.errors, reference.resumed_from) == (41, 7, 0)
    expected = (tmp_path / "ref.jsonl").read_text().splitlines()
    # A crash after 2 chunks and a torn third line: the partial file keeps 17 rows and a fragment.
    target = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    partial.write_text("\n".join(expected[:17]) + "\n" + expected[17][:10])
    result = label_file(predictor, source, target, chunk=8)
    assert result.resumed_from == 17 and result.rows == 41 and not partial.exists()
    got = target.read_text().splitlines()
    assert [json.loads(x)["row"] for x in got] == list(range(1, 42))
    for a, b in zip(got, expected, strict=True):
        ra, rb = json.loads(a), json.loads(b)
        assert ra.get("label") == rb.get("label") and ra.get("error") == rb.get("error")
    assert json.loads(got[-1])["error"] == "line 41: not valid JSON"
    with pytest.raises(Exception, match="already exists"):
        label_file(predictor, source, target)


def test_a_run_stopped_while_evaluated_is_evaluated_again_without_training(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emotune.training.steps as steps
    from emotune.bench.harness import Cell, run_cell
    from emotune.pipeline.one_corpus import OneCorpus

    straight = run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "straight"), epochs=3))
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "runs" / "c__lora__s42"), epochs=3)
    scoring = OneCorpus.evaluate

    def stopped(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise KeyboardInterrupt  # Ctrl-C (or a deadline) while the test split is scored

    monkeypatch.setattr(OneCorpus, "evaluate", stopped)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    folder = Path(cfg.output)
    assert (folder / "trained.json").is_file() and not (folder / "metrics.json").exists()  # training kept
    monkeypatch.setattr(OneCorpus, "evaluate", scoring)
    monkeypatch.setattr(steps.Trainer, "fit", lambda self: pytest.fail("trained again"))
    # The benchmark harness finds the finished training of the same config and only evaluates it.
    metrics = run_cell(Cell("c", "lora", 42, cfg.to_dict() | {"output": None}), tmp_path / "runs")
    for key in ("accuracy", "macro_f1", "best_dev_macro_f1", "best_dev_step", "train_examples_seen"):
        assert metrics[key] == straight[key], key
    assert metrics["best_dev"] == straight["best_dev"]
    assert metrics["best_dev_recall"] == straight["best_dev_recall"]
    # `--resume` with a changed config (more epochs) goes on training, as it did before.
    longer = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "runs" / "c__lora__s42"), epochs=4)
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        run(longer, resume=True)
    assert (folder / "trained.json").is_file()  # the finished training is still there
    # A changed cell trains again rather than reuse weights trained for another recipe.
    changed = Cell("c", "lora", 42, cfg.to_dict() | {"output": None, "train": cfg.to_dict()["train"] | {"lr": 1e-3}})
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        run_cell(changed, tmp_path / "runs")


def test_a_damaged_training_record_is_a_one_line_error(tmp_path: Path) -> None:
    from emotune import rundir
    from emotune.errors import EmotuneError

    (tmp_path / "trained.json").write_text("{not json")
    with pytest.raises(EmotuneError, match="damaged training record"):
        rundir.read_trained(tmp_path)
    assert rundir.read_trained(tmp_path / "elsewhere") is None


def test_a_labelling_stopped_before_its_first_row_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emotune.inference.labelling as labelling

    source = tmp_path / "in.txt"
    source.write_text("".join(f"text {i}\n" for i in range(6)))
    calls = []

    def stop_on_second_chunk(predictor: Any, block: Any) -> tuple[str, int]:
        calls.append(len(block))
        if len(calls) == 2 or predictor == "fails at once":
            raise KeyboardInterrupt
        return "".join(json.dumps({"row": r.row}) + "\n" for r in block), 0

    monkeypatch.setattr(labelling, "predict_block", stop_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        label_file("fails at once", source, tmp_path / "a.jsonl", chunk=3)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # nothing to resume, nothing left
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        label_file("works once", source, tmp_path / "b.jsonl", chunk=3)  # type: ignore[arg-type]
    # One chunk was written before the stop: its partial file stays for the resume.
    assert len((tmp_path / "b.jsonl.partial").read_text().splitlines()) == 3


def test_an_input_file_without_rows_gives_an_empty_output_and_says_so(tmp_path: Path, caplog) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text\n")  # a header and nothing under it
    with caplog.at_level("WARNING", logger="emotune"):
        result = label_file("never asked", source, tmp_path / "out.jsonl")  # type: ignore[arg-type]
    assert result.rows == 0 and (tmp_path / "out.jsonl").read_text() == ""
    assert f"{source}: no rows to classify" in caplog.text
