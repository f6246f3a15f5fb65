"""The emotion generalist shipped inside the package: its files, licences, manifest and defaults."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from emotune.cli import main
from emotune.config import RunConfig
from emotune.data.multi import corpus_names
from emotune.data.sources import REDISTRIBUTABLE
from emotune.errors import EmotuneError
from emotune.inference.call_time import default_adapter
from emotune.models import generalist
from emotune.models.generalist import DEFAULT_LABELS, sha256, shipped_dir, verify
from emotune.pipeline import run
from helpers import tiny_config

ROOT = Path(__file__).resolve().parent.parent
#: The most the shipped files may add to the wheel.
MAX_BYTES = 10 * 1024 * 1024


def test_shipped_files_match_their_manifest() -> None:
    manifest = verify()
    assert {"adapter/adapter_model.safetensors", "config.yaml", "run.json", "NOTICE"} <= set(manifest["files"])
    assert sum((shipped_dir() / f).stat().st_size for f in manifest["files"]) <= MAX_BYTES
    meta = json.loads((shipped_dir() / "run.json").read_text())
    assert meta["temperature"] == manifest["temperature"] > 0 and meta["corpora"]
    # The adapter folder carries its own manifest beside the weights, for use on its own.
    adapter = shipped_dir() / "adapter"
    own = json.loads((adapter / "manifest.json").read_text())
    assert set(own["files"]) == {p.name for p in adapter.iterdir()} - {"manifest.json"}
    assert all(sha256(adapter / name) == digest for name, digest in own["files"].items())
    assert {k: own[k] for k in ("commit", "config", "training_data")} == {
        k: manifest[k] for k in ("commit", "config", "training_data")
    }


def test_the_shipped_config_is_the_one_in_configs() -> None:
    manifest = verify()
    committed = RunConfig.from_yaml(ROOT / manifest["config"]).recipe()
    # The manifest's recipe read as this emotune reads a saved config (settings added since take
    # their defaults, as they do when the shipped run loads).
    assert RunConfig.from_dict(manifest["recipe"] | {"output": "x"}, saved=True).recipe() == committed
    assert RunConfig.from_yaml(shipped_dir() / "config.yaml", saved=True).recipe() == committed


def test_the_shipped_generalist_is_licence_clean() -> None:
    manifest = verify()
    corpora = corpus_names(manifest["recipe"]["data"]["dataset"])
    assert corpora and all(c in REDISTRIBUTABLE for c in corpora)
    assert [d["corpus"] for d in manifest["training_data"]] == corpora
    assert all(d["licence"] for d in manifest["training_data"])
    held_out = set(manifest["recipe"]["data"]["exclude_test_of"])
    assert {"sst2", "sst5", "friends", "mastodon", "mosi2", "mosi3", "meld", "emobank"} <= held_out
    notice = (shipped_dir() / "NOTICE").read_text()
    assert "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms" in notice
    assert all(name in notice for name in ("GoEmotions", "XED", "Poem Sentiment"))
    assert "prohibited_use_policy" in (shipped_dir() / "TERMS_OF_USE.md").read_text()
    assert "Model Derivatives" in (shipped_dir() / "GEMMA_TERMS.txt").read_text()


def test_an_altered_shipped_file_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "generalist"
    shutil.copytree(shipped_dir(), copy)
    with (copy / "adapter" / "adapter_model.safetensors").open("r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(EmotuneError, match=r"adapter_model\.safetensors does not match its manifest"):
        verify(copy)
    monkeypatch.setattr(generalist, "shipped_dir", lambda: copy)
    for argv in (["predict", "a text"], ["predict", "--labels", "joy,anger", "a text"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "does not match its manifest" in err and len(err.splitlines()) == 1


def test_the_wheel_holds_every_shipped_file(tmp_path: Path) -> None:
    build = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w"]
    subprocess.run([*build, str(tmp_path)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("emotune-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in verify()["files"]:
        assert f"emotune/resources/generalist/{name}" in names


def test_the_generalist_is_the_default_for_the_default_backbone() -> None:
    assert default_adapter(None, None, False) == "generalist"
    assert default_adapter("gemma3-270m", None, False) == "generalist"
    assert default_adapter("smollm2-135m", None, False) is None  # another backbone: frozen
    assert default_adapter(None, None, True) is None  # --frozen-backbone
    assert default_adapter(None, "runs/mine", False) == "runs/mine"


def test_init_from_generalist_resolves_to_the_shipped_adapter(tmp_path: Path) -> None:
    from emotune.training.warm_start import check_init_from

    cfg = RunConfig()
    cfg.train.init_from = "generalist"
    assert check_init_from(cfg.train.init_from, cfg.model.name, cfg.method) == shipped_dir()
    assert check_init_from("none", cfg.model.name, cfg.method) is None


def test_the_default_start_is_the_generalist_where_it_fits(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from emotune.methods import default_options
    from emotune.training.warm_start import check_init_from

    cfg = RunConfig().validate()
    assert cfg.train.init_from == "auto"  # LoRA on the default backbone starts from the generalist
    assert check_init_from("auto", cfg.model.name, cfg.method) == shipped_dir()
    wider = default_options("lora")
    wider.rank = 16  # its adapter's shapes would not fit
    for model, method, why in (
        ("smollm2-135m", cfg.method, "an adapter of gemma3-270m, not of smollm2-135m"),
        (cfg.model.name, wider, "lora options differ from the shipped generalist's: rank 16 (generalist: 8)"),
        (cfg.model.name, default_options("ia3"), "the shipped generalist is lora, this run ia3"),
    ):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="emotune.training.warm_start"):
            assert check_init_from("auto", model, method) is None  # a fresh adapter, no error
        assert why in caplog.text  # and the log says why


def test_none_and_older_configs_start_fresh(tmp_path: Path) -> None:
    assert RunConfig.from_dict({"train": {"init_from": "none"}}).validate().train.init_from is None
    # A run saved before the default start existed (no init_from key) started from scratch.
    older = RunConfig.from_dict({"train": {"epochs": 1}, "output": "x"}, saved=True)
    assert older.train.init_from is None
    for name in ("paper", "paper-full", "small-data", "methods-256", "imbalance", "prior-correction"):
        defaults = yaml.safe_load((ROOT / "benchmarks" / f"{name}.yaml").read_text())["defaults"]
        assert defaults["train"]["init_from"] == "none", name  # the paper's matrices start from scratch
    assert generalist_config().train.init_from is None  # a generalist never starts from the shipped one


def generalist_config() -> RunConfig:
    return RunConfig.from_yaml(ROOT / "configs" / "generalist.yaml").validate()


def test_a_run_records_which_adapter_it_started_from(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path
) -> None:
    first = run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "a"), epochs=1))
    assert first["recipe"]["init_from"] == "none"  # "auto" on a backbone the generalist does not fit
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "b"), epochs=1, init_from=str(tmp_path / "a"))
    assert run(cfg)["recipe"]["init_from"] == str(tmp_path / "a")
    card = json.loads((tmp_path / "b" / "dataset_card.json").read_text())
    assert card["training"]["init_from"] == str(tmp_path / "a")


def test_labels_with_a_trained_label_head_are_one_line(
    tiny_gemma: str, sentiment_files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "head"
    run(tiny_config(tiny_gemma, sentiment_files, str(out), epochs=1, label_head="trainable"))
    capsys.readouterr()  # training's own output
    assert main(["predict", "--run", str(out), "--labels", "joy,anger", "a text"]) == 2
    err = capsys.readouterr().err.strip()
    assert "label head was trained" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("labels", "message"), [("", "empty label"), ("joy", "at least two"), ("joy,JOY", "same label")]
)
def test_bad_label_lists_for_the_generalist(labels: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--labels", labels, "a text"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_predict_with_no_run_and_no_labels_uses_the_generalist(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "I can't believe they cancelled it", "what a lovely surprise"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["label"] in DEFAULT_LABELS and list(row["scores"]) == list(DEFAULT_LABELS)
        assert sum(row["scores"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_the_generalist_exports_a_label_set_for_a_text_classification_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import pipeline

    import emotune.models.precision as precision
    from emotune.inference.predict import Predictor

    # The export computes in fp32; on a CPU with native bf16 the predictor would autocast to bf16
    # (differences of a few 1e-4), so both run in fp32 here: the test is about the same function.
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)

    labels, texts = "joy,anger,sadness,fear", ["I can't stop smiling today", "they lied to me again, I am furious"]
    assert main(["export", "--labels", labels, "--format", "seq-cls", "--output", str(tmp_path / "seq")]) == 0
    assert "scored by generalist, prompt in en" in json.loads(capsys.readouterr().out)["note"]
    rows = pipeline("text-classification", model=str(tmp_path / "seq"), top_k=None)(texts)
    for row, want in zip(rows, Predictor.generalist(labels, language="en").predict(texts), strict=True):
        assert {d["label"]: d["score"] for d in row} == pytest.approx(want.scores, abs=1e-4)
