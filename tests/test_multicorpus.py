"""Several corpora in one run, and a run that starts from another run's adapter (--init-from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import NEGATIVE, POSITIVE
from emotune.cli import main
from emotune.config import RunConfig
from emotune.errors import EmotuneError
from emotune.inference.predict import Predictor
from emotune.models.multi import segment_mask
from emotune.pipeline import run
from helpers import tiny_config


@pytest.fixture
def sst_root(tmp_path: Path) -> Path:
    """SST-2 and SST-5 in their published stsa format, in ROOT/sst (a datasets root)."""
    folder = tmp_path / "datasets" / "sst"
    folder.mkdir(parents=True)
    fine = {**dict.fromkeys(POSITIVE, 4), **dict.fromkeys(NEGATIVE, 0)}
    fine |= {POSITIVE[0]: 3, NEGATIVE[0]: 1, POSITIVE[1]: 2}
    for split in ("train", "dev", "test"):
        binary = [f"1 {t}" for t in POSITIVE] + [f"0 {t}" for t in NEGATIVE]
        (folder / f"stsa.binary.{split}").write_text("\n".join(binary) + "\n")
        (folder / f"stsa.fine.{split}").write_text("\n".join(f"{k} {t}" for t, k in fine.items()) + "\n")
    return folder.parent


def multi_config(model: str, root: Path, output: Path, **data: object) -> RunConfig:
    return RunConfig.from_dict(
        {
            "model": {"name": model},
            "method": {"name": "lora"},
            "data": {"dataset": "sst2,sst5", "data_dir": str(root), **data},
            "train": {"batch_size": 4, "epochs": 2, "lr": 5e-3, "checkpoint_every": 0, "min_steps": 0},
            "runtime": {"precision": "fp32"},
            "output": str(output),
        }
    ).validate()


def test_multi_corpus_run_evaluates_every_corpus_and_their_mean(
    tiny_gemma: str, sst_root: Path, tmp_path: Path
) -> None:
    metrics = run(multi_config(tiny_gemma, sst_root, tmp_path / "run"))
    per = metrics["corpora"]
    assert set(per) == {"sst2", "sst5"}
    for name, n in (("sst2", 16), ("sst5", 16)):
        saved = json.loads((tmp_path / "run" / "corpora" / name / "metrics.json").read_text())
        assert saved["n"] == n and per[name]["macro_f1"] == pytest.approx(saved["macro_f1"])
    assert metrics["macro_f1"] == pytest.approx((per["sst2"]["macro_f1"] + per["sst5"]["macro_f1"]) / 2)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["corpora"] == per
    # The run predicts any of its label sets: the first by default, another by name.
    assert Predictor.load(tmp_path / "run").labels == ("negative", "positive")
    five = Predictor.load(tmp_path / "run", corpus="sst5")
    assert five.labels == ("very negative", "negative", "neutral", "positive", "very positive")
    assert five.predict("a wonderful film")[0].label in five.labels
    with pytest.raises(EmotuneError, match="not trained on corpus 'friends'"):
        Predictor.load(tmp_path / "run", corpus="friends")
    # Labels at call time that share a first token are scored whole, also on a run over several
    # corpora (whose own config refuses whole-word scoring for training).
    shared = ["very bad", "very good", "neutral"]
    called = Predictor.zero_shot(shared, tiny_gemma, tmp_path / "run")
    assert called.recogniser.head.scores_whole_words
    assert called.predict("a wonderful film")[0].label in shared


def test_each_training_row_carries_its_own_corpus_prompt_and_labels(
    tiny_gemma: str, sst_root: Path, tmp_path: Path
) -> None:
    from emotune.data.multi import load_corpora, mixed_train
    from emotune.pipeline.mixture import Mixture

    cfg = multi_config(tiny_gemma, sst_root, tmp_path / "run", shuffle_labels=True)
    corpora = load_corpora(cfg.data, 0)
    assert corpora.offsets == [0, 2]
    job = Mixture(cfg)
    job.corpora = corpora
    rec = job.build(tmp_path, resume=False)
    train = mixed_train(corpora, 1.0, None, 0)
    assert {corpora.corpus_of(int(e.label)) for e in train} == {0, 1}  # type: ignore[arg-type]
    rows = rec.encode(train)

    def choices(row: list[int]) -> list[str]:  # the label list the prompt shows: "... to A, B, or C : text"
        words = rec.tokenizer.decode(row).split()
        return [w for w in words[words.index("to") + 1 : words.index(":")] if w not in {",", "or"}]

    five = []
    for ex, row in zip(train, rows, strict=True):
        if corpora.corpus_of(int(ex.label)) == 0:  # type: ignore[arg-type]
            assert sorted(choices(row)) == ["negative", "positive"]
        else:
            assert sorted(choices(row)) == ["bad", "good", "great", "neutral", "terrible"]
            five.append(tuple(choices(row)))
    assert len(set(five)) > 1  # label names listed in a fresh order per example
    # Each row is classified among its own corpus's labels only.
    gold = torch.tensor([1, 4])  # an SST-2 label, an SST-5 label
    mask = segment_mask(rec.segments, gold)
    assert mask.tolist() == [
        [True, True, False, False, False, False, False],
        [False, False, True, True, True, True, True],
    ]


def test_init_from_starts_from_the_runs_adapter(tiny_gemma: str, sentiment_files, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from emotune.models.recogniser import build_recogniser
    from emotune.training.warm_start import check_init_from, warm_start

    run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "a"), epochs=1))
    cfg = tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "b"), init_from=str(tmp_path / "a"))
    rec = build_recogniser(cfg, Predictor.load(tmp_path / "a").recogniser.labels, "en", "sentiment")
    warm_start(rec, check_init_from(cfg.train.init_from, cfg.model.name, cfg.method))
    saved = load_file(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    params = dict(rec.model.named_parameters())
    lora_b = [k for k in saved if "lora_B" in k]
    assert lora_b and all(
        torch.equal(params[k.replace(".weight", ".default.weight")].detach().cpu(), saved[k]) for k in lora_b
    )
    metrics = run(cfg)  # and trains from there
    assert 0.0 <= metrics["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--method", "ptuning-v2"], "a 'lora' run, this run trains 'ptuning-v2'"),
        (["--model", "OTHER"], "trained on backbone"),
    ],
)
def test_init_from_refuses_another_backbone_or_method(
    tiny_gemma: str, sentiment_files, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    run(tiny_config(tiny_gemma, sentiment_files, str(tmp_path / "a"), epochs=1))
    capsys.readouterr()
    flags = [f if f != "OTHER" else str(tmp_path / "other") for f in flags]
    argv = ["train", "--model", tiny_gemma, "--dataset", "files", "--labels", "negative,positive"]
    argv += ["--train-file", sentiment_files["train"], "--test-file", sentiment_files["test"]]
    argv += ["--init-from", str(tmp_path / "a"), "--output", str(tmp_path / "b"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_multi_corpus_refuses_settings_for_one_label_set(tiny_gemma: str, sst_root: Path, tmp_path: Path) -> None:
    cfg = multi_config(tiny_gemma, sst_root, tmp_path / "run")
    cfg.train.class_weights = "balanced"
    with pytest.raises(EmotuneError, match=r"do not take train\.class_weights"):
        cfg.validate()
