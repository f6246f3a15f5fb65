"""The run directory's owners: `RunMeta` for run.json, `ExportMeta` for emotune.json, `load_run`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from emotune.cli import main
from emotune.errors import EmotuneError
from emotune.rundir import RUN_FORMAT, ExportMeta, RunMeta, load_run

LABELS = {"names": ["negative", "positive"]}


def test_run_meta_round_trips_keeps_unknown_keys_and_reads_older_files(tmp_path: Path) -> None:
    meta = RunMeta("sst2", "en", "sentiment", LABELS, temperature=1.5, extra={"added_later": 3})
    meta.save(tmp_path)
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["format"] == 1 and data["added_later"] == 3 and "threshold" not in data
    assert RunMeta.load(tmp_path) == meta
    # Vector scaling changes every probability: only a run that has it asks for format 2.
    meta.class_scaling = {"scale": [0.5, 2.0], "bias": [0.0, 0.1]}
    meta.save(tmp_path)
    assert json.loads((tmp_path / "run.json").read_text())["format"] == RUN_FORMAT == 2
    assert RunMeta.load(tmp_path) == meta
    # A run.json from before the class: no format, no temperature.
    (tmp_path / "run.json").write_text(
        json.dumps({"dataset": "sst2", "language": "en", "task": "sentiment", "labels": LABELS})
    )
    older = RunMeta.load(tmp_path)
    assert older.temperature == 1.0 and older.head_bias is None and older.extra == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not a run directory (no run.json)"),
        ("{not json", "run.json: not valid JSON"),
        (json.dumps({"labels": LABELS, "format": RUN_FORMAT + 1}), "written by a newer emotune"),
        (json.dumps({"dataset": "x"}), "not a classifier run (no label set)"),
    ],
)
def test_a_bad_run_directory_is_one_line(tmp_path: Path, content: str | None, message: str, capsys) -> None:
    (tmp_path / "config.yaml").write_text("model: {name: gemma3-270m}\n")
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    with pytest.raises(EmotuneError, match=re.escape(message)):
        load_run(tmp_path)
    assert main(["predict", "--run", str(tmp_path), "a text"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_load_run_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match="no such folder"):
        load_run(tmp_path / "absent")
    with pytest.raises(EmotuneError, match=re.escape("no config.yaml")):
        load_run(tmp_path)
    (tmp_path / "config.yaml").write_text("model: {name: gemma3-270m}\n")
    RunMeta("sst2", "en", "sentiment", LABELS).save(tmp_path)
    with pytest.raises(EmotuneError, match=re.escape("run has no adapter/")):
        load_run(tmp_path).adapter(needed=True)


def test_export_meta_reads_older_exports_and_names_damage(tmp_path: Path) -> None:
    core = {
        "format": "onnx",
        "labels": ["negative", "positive"],
        "multi_label": False,
        "threshold": 0.5,
        "prompt_head": "Classify: ",
        "prompt_tail": "\nSentiment:",
        "add_bos": True,
        "max_length": 128,
    }
    (tmp_path / "emotune.json").write_text(json.dumps(core))
    meta = ExportMeta.load(tmp_path)
    assert meta.max_length == 128 and meta.temperature == 1.0 and not meta.trained_label_head
    meta.save(tmp_path)
    assert ExportMeta.load(tmp_path) == meta
    (tmp_path / "emotune.json").write_text(json.dumps({"format": "onnx"}))
    with pytest.raises(EmotuneError, match=re.escape("emotune.json: damaged")):
        ExportMeta.load(tmp_path)
