"""The CLI: commands run the library; user errors are one line with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emotune.cli import as_flags, main


def _train_args(model: str, files: dict[str, str], out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        model,
        "--dataset",
        "files",
        "--train-file",
        files["train"],
        "--dev-file",
        files["dev"],
        "--test-file",
        files["test"],
        "--labels",
        "negative,positive",
        "--epochs",
        "1",
        "--min-steps",
        "0",
        "--batch-size",
        "4",
        "--precision",
        "fp32",
        "--output",
        str(out),
        *extra,
    ]


def test_train_then_predict_texts_and_file(tiny_gemma: str, sentiment_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train_args(tiny_gemma, sentiment_files, out, "--set", "method.rank=4", "--set", "train.lr=0.01")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["method"] == "lora" and summary["n"] == 8
    assert "rank: 4" in (out / "config.yaml").read_text()

    assert main(["predict", "--run", str(out), "a wonderful film", "i hated it"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["text"] for x in lines] == ["a wonderful film", "i hated it"]
    for line in lines:
        assert line["label"] in ("negative", "positive")
        assert sum(line["scores"].values()) == pytest.approx(1.0, abs=1e-5)

    src, dst = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("a wonderful film\n\ni hated it\n")
    assert main(["predict", "--run", str(out), "--input", str(src), "--output", str(dst)]) == 0
    alone = [json.loads(x) for x in dst.read_text().splitlines()]
    assert len(alone) == 2

    # A run trained with two turns of context: a dialogue column gives the second row the first.
    card = json.loads((out / "dataset_card.json").read_text())
    (out / "dataset_card.json").write_text(json.dumps(card | {"context_turns": 2}))
    table, dst = tmp_path / "dialogue.csv", tmp_path / "dialogue.jsonl"
    table.write_text("scene,who,text\n1,Ann,a wonderful film\n1,Bob,i hated it\n")
    argv = ["--input", str(table), "--output", str(dst), "--dialogue-column", "scene", "--speaker-column", "who"]
    assert main(["predict", "--run", str(out), *argv]) == 0
    rows = [json.loads(x) for x in dst.read_text().splitlines()]
    assert rows[0]["scores"] == pytest.approx(alone[0]["scores"])  # first turn: no context
    assert rows[1]["scores"] != pytest.approx(alone[1]["scores"])  # "Ann: a wonderful film" before it


def test_evaluate_zero_shot_and_a_trained_run(tiny_gemma: str, sentiment_files, tmp_path: Path, capsys) -> None:
    args = [
        "evaluate",
        "--model",
        tiny_gemma,
        "--dataset",
        "files",
        "--test-file",
        sentiment_files["test"],
        "--labels",
        "negative,positive",
        "--output",
        str(tmp_path / "zs"),
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "zs" / "metrics.json").read_text())
    assert metrics["method"] == "zero-shot" and metrics["n"] == 8
    assert main(["predict", "--run", str(tmp_path / "zs"), "good"]) == 0  # a zero-shot run predicts too

    out = tmp_path / "run"
    assert main(_train_args(tiny_gemma, sentiment_files, out)) == 0
    assert main(["evaluate", "--run", str(out), "--split", "dev"]) == 0
    assert json.loads((out / "eval-dev" / "metrics.json").read_text())["n"] == 8
    # Into the run's own folder it would replace the run's test metrics and predictions: refused.
    own = (out / "metrics.json").read_text()
    capsys.readouterr()
    assert main(["evaluate", "--run", str(out), "--split", "dev", "--output", str(out)]) == 2
    assert "holds a run whose own results this evaluation would replace" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == own


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--dataset", "nope", "--output", "x"], "unknown dataset 'nope'"),
        (["train", "--set", "train.lrr=1"], "unknown config key 'train.lrr'"),
        (["train", "--set", "oops"], "--set expects KEY=VALUE"),
        (["train", "--config", "missing.yaml"], "missing.yaml: config file not found"),
        (["train", "--method", "magic"], "unknown method 'magic'"),
        (["evaluate", "--method", "lora"], "needs an untrained method such as 'zero-shot'"),
        (["predict", "--run", "no/such/run", "hi"], "not a run directory"),
        (["predict", "--run", "no/such/run"], "give texts to classify"),
        (["predict", "--run", "no/such/run", "--input", "in.txt"], "--input needs --output"),
        (["predict", "--run", "r", "hi", "--speaker-column", "s"], "--speaker-column needs --dialogue-column"),
        (["predict", "--run", "r", "hi", "--dialogue-column", "d"], "--dialogue-column needs --input FILE"),
        (["serve", "--run", "no/such/run"], "not a run directory"),
        (["bench", "--matrix", "none.yaml", "--out", "o"], "none.yaml: matrix file not found"),
        (["train", "--device", "tpu"], "runtime.device must be one of"),
        (["train", "--dataset", "m3ed", "--data-dir", "."], "annotation.json: file not found"),
        (
            ["train", "--model", "/no/such/model.gguf", "--dataset", "quickstart"],
            "GGUF file not found",
        ),
    ],
)
def test_user_errors_are_one_line(argv: list[str], message: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--model", "someone/not-a-model", "--dataset", "quickstart", "--output", "o"],
        # Labels at call time read the tokenizer before the weights: the same one line, no traceback.
        ["predict", "--model", "someone/not-a-model", "--labels", "joy,anger", "hello"],
    ],
)
def test_offline_hub_id_is_a_clear_error(argv: list[str], tmp_path: Path, capsys, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The client read the variable at its import; offline mode fails at once instead of retrying.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot load model 'someone/not-a-model'" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("emotune: error")]) == 1


def test_run_directory_is_protected(tiny_gemma: str, sentiment_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train_args(tiny_gemma, sentiment_files, out)) == 0
    assert main(_train_args(tiny_gemma, sentiment_files, out)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(_train_args(tiny_gemma, sentiment_files, out, "--overwrite")) == 0


def test_overwrite_never_deletes_a_folder_emotune_did_not_write(
    tiny_gemma: str, sentiment_files, tmp_path: Path, capsys
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's own file")
    run_dir = tmp_path / "run"
    assert main(_train_args(tiny_gemma, sentiment_files, run_dir)) == 0
    capsys.readouterr()
    for argv in (
        _train_args(tiny_gemma, sentiment_files, mine, "--overwrite"),
        ["export", "--run", str(run_dir), "--format", "merged", "--output", str(mine), "--overwrite"],
        ["distill", "--run", str(run_dir), "--output", str(mine), "--overwrite"],
    ):
        assert main(argv) == 2, argv[0]
        err = capsys.readouterr().err
        assert "holds files emotune did not write (notes.txt); --overwrite replaces only runs" in err, err
        assert (mine / "notes.txt").read_text() == "a user's own file"
    # What emotune wrote stays replaceable: a sequence-classification export has no run files.
    from emotune.rundir import check_replaceable

    seq_cls = tmp_path / "seq-cls"
    seq_cls.mkdir()
    (seq_cls / "config.json").write_text('{"architectures": ["X"], "emotune": {"labels": ["a", "b"]}}')
    check_replaceable(seq_cls)


def test_predict_rejects_a_damaged_adapter(tiny_gemma: str, sentiment_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train_args(tiny_gemma, sentiment_files, out)) == 0
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"not a tensor file")
    assert main(["predict", "--run", str(out), "good"]) == 2
    assert "cannot load adapter" in capsys.readouterr().err


def test_listing_commands(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "gemma3-270m (default)" in out and "smollm2-135m" in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("sst2", "sst5", "files", "hf", "quickstart"):
        assert name in out


def test_help_says_what_emotune_does_and_how_to_start(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "Emotion and sentiment recognition" in out
    assert 'emotune predict "I can' in out and "--labels" in out
    assert "``" not in out  # no docstring markup in what a user reads
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "customise a backbone on a dataset" in capsys.readouterr().out  # a command's own help opens with it


def test_a_library_error_shows_the_cli_flag_of_each_setting_it_names() -> None:
    from emotune.errors import EmotuneError

    err = EmotuneError("runs/output/scores: a new output or pass overwrite.", settings=("output", "overwrite"))
    assert as_flags(err) == "runs/output/scores: a new --output or pass --overwrite."
    err = EmotuneError("output.jsonl already exists; choose another output", settings=("output",))
    assert as_flags(err) == "output.jsonl already exists; choose another --output"
    err = EmotuneError("needs at least one of train_file, dev_file", settings=("train_file", "dev_file"))
    assert as_flags(err) == "needs at least one of --train-file, --dev-file"
    # Settings whose flag has another name: a Python caller reads the parameter, the CLI its flag.
    err = EmotuneError("method 'prompt-tuning' cannot be merged; use fmt merged", settings=("fmt",))
    assert as_flags(err) == "method 'prompt-tuning' cannot be merged; use --format merged"


def test_a_leading_path_named_like_a_setting_stays_a_path(tmp_path: Path, monkeypatch) -> None:
    from emotune.errors import EmotuneError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "output").mkdir()
    err = EmotuneError("output: a folder; output names the JSONL file to write", settings=("output",))
    assert as_flags(err) == "output: a folder; --output names the JSONL file to write"
    # A message that opens with the setting itself (no such file here) still shows the flag there.
    err = EmotuneError("labels: the tokenizer cannot tell these labels apart", settings=("labels",))
    assert as_flags(err) == "--labels: the tokenizer cannot tell these labels apart"


def test_distill_without_a_teacher_names_the_setting() -> None:
    from emotune.distill.config import DistillConfig
    from emotune.errors import EmotuneError

    with pytest.raises(EmotuneError, match="needs teacher") as caught:
        DistillConfig().validate()
    assert caught.value.settings == ("teacher",)
    assert as_flags(caught.value) == "distill needs --run (a trained run's directory)"


def test_resume_reads_the_runs_own_config(tiny_gemma: str, sentiment_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = _train_args(tiny_gemma, sentiment_files, out, "--set", "train.checkpoint_every=1", "--epochs", "2")
    assert main(args) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert main(["train", "--output", str(out), "--resume"]) == 0  # no other flags: the saved config
    again = json.loads((out / "metrics.json").read_text())
    assert again["accuracy"] == first["accuracy"] and again["n"] == first["n"]


def test_predict_rejects_a_damaged_run_json(tiny_gemma: str, sentiment_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train_args(tiny_gemma, sentiment_files, out)) == 0
    (out / "run.json").write_text("{not json")
    capsys.readouterr()  # drop the training run's output
    assert main(["predict", "--run", str(out), "good"]) == 2
    err = capsys.readouterr().err.strip()
    assert "run.json: not valid JSON" in err and len(err.splitlines()) == 1


def test_a_label_without_training_examples_is_warned_of(
    tiny_gemma: str, sentiment_files, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    argv = _train_args(tiny_gemma, sentiment_files, tmp_path / "run")
    argv[argv.index("negative,positive")] = "negative,positive,neutral"  # no file row is neutral
    with caplog.at_level(logging.WARNING, logger="emotune"):
        assert main(argv) == 0
    assert "no training example has the label(s) neutral: training cannot teach them" in caplog.text


def test_an_output_that_cannot_be_created_or_is_a_folder_is_one_line(
    tiny_gemma: str, sentiment_files, tmp_path: Path, capsys
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(_train_args(tiny_gemma, sentiment_files, blocker / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"emotune: error: {blocker / 'run'}: cannot create this folder (") and "\n" not in err
    run_dir = tmp_path / "run"
    assert main(_train_args(tiny_gemma, sentiment_files, run_dir)) == 0
    capsys.readouterr()
    rows = tmp_path / "rows.txt"
    rows.write_text("a wonderful film\n")
    for source, target, message in (
        (rows, blocker / "out.jsonl", "cannot create this folder"),
        (rows, tmp_path, "a folder; --output names the JSONL file to write"),
        (tmp_path, tmp_path / "out.jsonl", "a folder, not a file"),
    ):
        assert main(["predict", "--run", str(run_dir), "--input", str(source), "--output", str(target)]) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' loading bar, in-process
        assert last.startswith("emotune: error: ") and message in last, last


def test_a_run_and_the_frozen_backbone_together_are_refused(capsys) -> None:
    # Both name what scores the labels; the run won silently before.
    assert main(["predict", "--labels", "joy,anger", "--run", "no-such-run", "--frozen-backbone", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "emotune: error: choose one of --run (a run's adapter scores the labels) and --frozen-backbone (no adapter)"
    )


@pytest.mark.parametrize("size", [0, -3])
def test_a_batch_size_below_one_is_refused(size: int) -> None:
    from emotune.errors import EmotuneError
    from emotune.inference.predict import Predictor

    # -3 sliced the batches wrongly and changed the scores; the backend is never reached.
    with pytest.raises(EmotuneError, match=f"batch_size must be >= 1 .*got {size}"):
        Predictor(object(), batch_size=size)  # type: ignore[arg-type]


def test_predict_refuses_a_batch_size_below_one_before_loading_anything(capsys) -> None:
    # The run does not exist: the batch size is named first, as nothing has been loaded for it.
    assert main(["predict", "--run", "no-such-run", "--batch-size", "0", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emotune: error: ") and "batch" in err and "got 0" in err, err
    assert "\n" not in err


def test_a_text_that_is_not_a_string_says_so(tiny_run: Path) -> None:
    from emotune.errors import EmotuneError
    from emotune.inference.predict import Predictor

    predictor = Predictor.load(tiny_run)
    with pytest.raises(EmotuneError, match="text 1 is not a string but int"):
        predictor.predict(["fine", 123])  # type: ignore[list-item]
    with pytest.raises(EmotuneError, match="text 0 is empty"):
        predictor.predict(["  "])


def test_resume_of_a_folder_with_nothing_to_resume_says_it_starts_fresh(
    tiny_gemma: str, sentiment_files, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    out = tmp_path / "not-yet"
    with caplog.at_level(logging.INFO, logger="emotune"):
        assert main(_train_args(tiny_gemma, sentiment_files, out, "--resume")) == 0
    assert f"{out}: nothing to resume there; training starts fresh" in caplog.text


def test_python_dash_m_emotune_is_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "emotune", "models"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "gemma3-270m" in done.stdout
