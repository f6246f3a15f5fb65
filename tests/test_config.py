"""Typed configs: YAML round trip, dotted overrides, validation; every shipped config loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from emotune.config import RunConfig
from emotune.data import dataset_info, dataset_names
from emotune.errors import EmotuneError
from emotune.overrides import apply_override

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = RunConfig()
    apply_override(cfg, "method.name", "ptuning-v2")
    apply_override(cfg, "train.lr", "1e-4")
    cfg.to_yaml(tmp_path / "c.yaml")
    again = RunConfig.from_yaml(tmp_path / "c.yaml")
    assert again == cfg
    assert again.train.lr == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("train.epochs", "2", 2.0),
        ("train.batch_size", "16", 16),
        ("model.trust_remote_code", "true", True),
        ("method.target_modules", "q_proj,v_proj", ["q_proj", "v_proj"]),
        ("data.max_train_samples", "none", None),
        ("data.labels", "[a, b]", ["a", "b"]),
    ],
)
def test_overrides_are_coerced_to_the_field_type(key: str, value: str, expected: object) -> None:
    cfg = RunConfig()
    apply_override(cfg, key, value)
    section, field = key.split(".")
    assert getattr(getattr(cfg, section), field) == expected


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.lrr", "1", "unknown config key 'train.lrr'"),
        ("nope.x", "1", "unknown config key"),
        ("train", "1", "unknown config key"),
        ("train.batch_size", "eight", "expects int"),
        ("model.trust_remote_code", "maybe", "expects bool"),
        ("method.name", "magic", "unknown method 'magic'"),
        ("method.prompt_length", "4", "method 'lora' has no option 'prompt_length'"),
    ],
)
def test_bad_overrides_are_one_line_errors(key: str, value: str, message: str) -> None:
    with pytest.raises(EmotuneError, match=message):
        apply_override(RunConfig(), key, value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.objective", "dance", "objective"),
        ("runtime.precision", "fp8", "precision"),
        ("method.rank", 0, "rank"),
        ("train.epochs", 0, "positive"),
        ("data.template", "no placeholder", "{text}"),
        ("data.label_tokens", "some", "label_tokens"),
        ("data.language", "fr", "data.language must be one of"),  # English would have been prompted
        ("train.prior_correction", "test", "prior_correction"),
        ("train.prior_strength", -1.0, "prior_strength"),
    ],
)
def test_validation_rejects_bad_values(key: str, value: object, message: str) -> None:
    cfg = RunConfig()
    apply_override(cfg, key, value)
    with pytest.raises(EmotuneError, match=message):
        cfg.validate()


def test_missing_and_broken_config_files(tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match="not found"):
        RunConfig.from_yaml(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed")
    with pytest.raises(EmotuneError, match="invalid YAML"):
        RunConfig.from_yaml(tmp_path / "bad.yaml")


@pytest.mark.parametrize("reader", ["run", "distill", "matrix"])
def test_every_yaml_reader_gives_one_line_for_a_broken_file(reader: str, tmp_path: Path) -> None:
    from emotune.bench.harness import load_matrix
    from emotune.distill.config import DistillConfig

    read = {"run": RunConfig.from_yaml, "distill": DistillConfig.from_yaml, "matrix": load_matrix}[reader]
    cases = {
        b"\xff\xfe a spreadsheet's UTF-16": r"not UTF-8 \(byte 0 is 0xff\)",
        b"seeds: [1\n": "invalid YAML",  # the matrix reader raised yaml's own error
        b"- a\n- b\n": "expected a mapping at the top level",
    }
    for i, (content, message) in enumerate(cases.items()):
        (tmp_path / f"{i}.yaml").write_bytes(content)
        with pytest.raises(EmotuneError, match=message):
            read(tmp_path / f"{i}.yaml")
    with pytest.raises(EmotuneError, match="file not found"):
        read(tmp_path / "none.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_is_valid(path: Path) -> None:
    from emotune.data.multi import corpus_names

    cfg = RunConfig.from_yaml(path).validate()
    assert cfg.model.name == "gemma3-270m"
    names = corpus_names(cfg.data.dataset)
    assert set(names) <= set(dataset_names())
    assert cfg.data.data_dir is not None
    if len(names) == 1:  # the data folder a shipped config names is the corpus's folder under ../shared/datasets
        assert Path(cfg.data.data_dir).name == dataset_info(cfg.data.dataset).folder
    else:  # several corpora: the datasets root, holding each corpus's folder
        assert Path(cfg.data.data_dir).name == "datasets"


def test_there_are_shipped_configs() -> None:
    assert len(CONFIGS) >= 3


def test_given_epochs_win_over_the_step_floor(tmp_path: Path) -> None:
    from emotune.cli import build_config, parser
    from emotune.training.trainer import step_budget

    def cli(*flags: str) -> RunConfig:
        return build_config(parser().parse_args(["train", *flags]))

    # 256 examples at batch 8: one epoch is 32 steps; the floor would make it 200.
    assert step_budget(cli("--epochs", "1").train, 32) == 32
    assert step_budget(cli().train, 32) == 200  # epochs left to the recipe: the floor stays
    assert cli("--epochs", "1", "--min-steps", "50").train.min_steps == 50
    assert cli("--set", "train.epochs=2").train.min_steps == 0
    config = tmp_path / "mine.yaml"
    config.write_text("train: {epochs: 1}\n")
    assert cli("--config", str(config)).train.min_steps == 0
    # A run directory's saved config keeps its meaning: its floor stays, whatever its epochs.
    saved = RunConfig.from_dict({"train": {"epochs": 1, "min_steps": 200}}, saved=True)
    assert saved.train.min_steps == 200
    resumed = tmp_path / "config.yaml"
    saved.to_yaml(resumed)
    assert RunConfig.from_yaml(resumed, saved=True).train.min_steps == 200
