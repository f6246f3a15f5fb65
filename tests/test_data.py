"""Loaders: SST files, generic files, Hugging Face datasets, the built-in corpus; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED
from emotune.config import DataConfig
from emotune.data import Example, LabelSet, Turn, load_data, subsample
from emotune.errors import EmotuneError
from emotune.models.prompts import PromptBuilder, join_choices


def _sst_dir(tmp_path: Path, binary: str = "1 a good film\n0 a bad film\n") -> Path:
    for split in ("train", "dev", "test"):
        (tmp_path / f"stsa.binary.{split}").write_text(binary, encoding="latin-1")
    return tmp_path


def test_sst2_fixture(tmp_path: Path) -> None:
    data = load_data(DataConfig(dataset="sst2", data_dir=str(_sst_dir(tmp_path, "1 caf\xe9 good\n0 bad\n"))))
    assert data.labels.names == ("negative", "positive")
    assert [(e.text, e.label) for e in data.split("train")] == [("caf\xe9 good", 1), ("bad", 0)]


@pytest.mark.parametrize(
    ("content", "message"),
    [("7 too big\n", "expected '<label"), ("", "no examples"), ("1\n", "expected")],
)
def test_sst_bad_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(EmotuneError, match=message):
        load_data(DataConfig(dataset="sst2", data_dir=str(_sst_dir(tmp_path, content))))


def test_sst_missing_dir_and_file(tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match="needs data_dir"):
        load_data(DataConfig(dataset="sst2"))
    with pytest.raises(EmotuneError, match="file not found"):
        load_data(DataConfig(dataset="sst5", data_dir=str(tmp_path)))


@pytest.mark.skipif(not (SHARED / "sst").is_dir(), reason="../shared/datasets not present")
@pytest.mark.parametrize(("name", "sizes"), [("sst2", (6920, 872, 1821)), ("sst5", (8544, 1101, 2210))])
def test_real_sst_counts(name: str, sizes: tuple[int, int, int]) -> None:
    data = load_data(DataConfig(dataset=name, data_dir=str(SHARED / "sst")))
    assert tuple(len(data.split(s)) for s in ("train", "dev", "test")) == sizes


def _write(path: Path, rows: list[dict[str, str]]) -> str:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        sep = "\t" if path.suffix == ".tsv" else ","
        keys = list(rows[0])
        path.write_text(sep.join(keys) + "\n" + "".join(sep.join(r[k] for k in keys) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_files_with_column_mapping(tmp_path: Path, suffix: str) -> None:
    rows = [{"sentence": "so happy", "emo": "joy"}, {"sentence": "so sad", "emo": "sadness"}]
    path = _write(tmp_path / f"train{suffix}", rows)
    data = load_data(DataConfig(dataset="files", train_file=path, text_column="sentence", label_column="emo"))
    assert data.labels.names == ("joy", "sadness")
    assert [(e.text, e.label) for e in data.split("train")] == [("so happy", 0), ("so sad", 1)]


def test_files_prompt_in_the_language_of_their_texts(tmp_path: Path, caplog) -> None:
    """Chinese reviews with English label names get the Chinese prompt; --language overrides;
    a file that mixes languages is warned about, naming the setting."""
    chinese = [{"text": "这部电影太好看了", "label": "positive"}, {"text": "服务很差，不会再来", "label": "negative"}]
    english = [{"text": "a wonderful film", "label": "positive"}, {"text": "a dull mess", "label": "negative"}]
    zh_file, en_file = _write(tmp_path / "zh.jsonl", chinese), _write(tmp_path / "en.jsonl", english)
    data = load_data(DataConfig(dataset="files", train_file=zh_file))
    assert data.language == "zh" and data.labels.names == ("negative", "positive")
    assert PromptBuilder(data.labels, data.language, data.task).render()[0].startswith("将句子的情感分类为")
    assert load_data(DataConfig(dataset="files", train_file=en_file)).language == "en"
    assert load_data(DataConfig(dataset="files", train_file=zh_file, language="en")).language == "en"
    mixed = _write(tmp_path / "mixed.jsonl", english + chinese[:1])
    with caplog.at_level("WARNING"):
        assert load_data(DataConfig(dataset="files", train_file=mixed)).language == "en"
    assert "1 of 3 texts are in the other language" in caplog.text and "data.language" in caplog.text


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        (
            [{"text": "x", "label": "joy"}, {"text": "y", "label": "anger"}],
            {"labels": ["joy", "fear"]},
            "train.jsonl: line 2: unknown label 'anger'",
        ),
        ([{"txt": "x", "label": "a"}, {"txt": "y", "label": "b"}], {}, "no column 'text'"),
        ([{"text": " ", "label": "a"}, {"text": "y", "label": "b"}], {}, "empty 'text'"),
    ],
)
def test_files_errors(tmp_path: Path, rows: list[dict[str, str]], kwargs: dict[str, object], message: str) -> None:
    path = _write(tmp_path / "train.jsonl", rows)
    with pytest.raises(EmotuneError, match=message):
        load_data(DataConfig(dataset="files", train_file=path, **kwargs))  # type: ignore[arg-type]


def test_files_empty_missing_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "data.xlsx").write_text("x")
    for name, message in (
        ("empty.csv", "no rows"),
        ("missing.csv", "file not found"),
        ("data.xlsx", "unsupported"),
    ):
        with pytest.raises(EmotuneError, match=message):
            load_data(DataConfig(dataset="files", train_file=str(tmp_path / name)))
    with pytest.raises(EmotuneError, match="needs at least one"):
        load_data(DataConfig(dataset="files"))


def test_a_file_that_is_not_utf8_is_one_line_naming_the_byte(tmp_path: Path, capsys) -> None:
    from emotune.cli import main

    path = tmp_path / "latin1.csv"
    rows = "".join(f"good film {i},positive\n" for i in range(2000))  # past the reader's first chunk
    path.write_bytes(f"text,label\n{rows}caf\u00e9 au lait,positive\n".encode("latin-1"))
    code = main(["train", "--dataset", "files", "--train-file", str(path), "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    offset = len(f"text,label\n{rows}caf")
    assert f"latin1.csv: not utf-8 (byte {offset} is 0xe9)" in err and "set --encoding" in err, err
    assert not (tmp_path / "run").exists()
    # Named, the encoding reads: the accented row arrives intact.
    data = load_data(
        DataConfig(dataset="files", train_file=str(path), encoding="latin-1", labels=["negative", "positive"])
    )
    assert data.split("train")[-1].text == "caf\u00e9 au lait"
    with pytest.raises(EmotuneError, match="encoding 'latin-9000' is unknown"):
        DataConfig(encoding="latin-9000").validate()


@pytest.mark.parametrize("name", ["rows.txt", "rows.jsonl", "rows.csv"])
def test_files_to_label_in_another_encoding_are_one_line_or_read_when_named(name: str, tmp_path: Path) -> None:
    from emotune.inference.rows import iter_rows

    path = tmp_path / name
    text = {"rows.txt": "caf\u00e9 au lait\n", "rows.jsonl": '{"text": "caf\u00e9 au lait"}\n'}
    path.write_bytes(text.get(name, "text\ncaf\u00e9 au lait\n").encode("latin-1"))
    with pytest.raises(EmotuneError, match=f"{name}: not utf-8 \\(byte [0-9]+ is 0xe9\\).*set encoding") as caught:
        list(iter_rows(path, "text"))
    assert caught.value.settings == ("encoding",)
    assert [r.text for r in iter_rows(path, "text", encoding="latin-1")] == ["caf\u00e9 au lait"]
    with pytest.raises(EmotuneError, match="encoding 'latin-9000' is unknown"):
        list(iter_rows(path, "text", encoding="latin-9000"))


def test_predict_refuses_an_unknown_encoding_before_loading_a_model(tmp_path: Path, capsys) -> None:
    from emotune.cli import main

    (tmp_path / "rows.txt").write_text("hello\n")
    argv = ["predict", "--input", str(tmp_path / "rows.txt"), "--output", str(tmp_path / "o.jsonl")]
    assert main([*argv, "--encoding", "latin-9000", "--model", "no/such-model"]) == 2
    assert (
        capsys.readouterr().err.strip() == "emotune: error: --encoding 'latin-9000' is unknown (e.g. latin-1, cp1252)"
    )
    assert not list(tmp_path.glob("o.jsonl*"))


def test_hf_saved_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    data = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]}, features=features),
            "validation": datasets.Dataset.from_dict({"text": ["fine"], "label": [1]}, features=features),
        }
    )
    data.save_to_disk(str(tmp_path / "hf"))
    loaded = load_data(DataConfig(dataset="hf", hf_name=str(tmp_path / "hf")))
    assert loaded.labels.names == ("neg", "pos")
    assert [(e.text, e.label) for e in loaded.split("train")] == [("good", 1), ("bad", 0)]
    assert len(loaded.split("dev")) == 1


def test_unknown_dataset_and_split(tmp_path: Path) -> None:
    with pytest.raises(EmotuneError, match="unknown dataset 'nope'"):
        load_data(DataConfig(dataset="nope"))
    with pytest.raises(EmotuneError, match="has no split 'dev'"):
        load_data(DataConfig(dataset="quickstart")).split("dev")


def test_quickstart_corpus() -> None:
    data = load_data(DataConfig(dataset="quickstart"))
    assert data.labels.names == ("joy", "sadness", "anger", "fear")
    assert (len(data.split("train")), len(data.split("test"))) == (96, 64)
    for split in ("train", "test"):
        counts = [sum(e.label == k for e in data.split(split)) for k in range(4)]
        assert len(set(counts)) == 1
    texts = [e.text for s in data.splits.values() for e in s]
    assert len(set(texts)) == len(texts)


def test_verbaliser_override_and_subsample() -> None:
    data = load_data(DataConfig(dataset="quickstart", verbalisers=[["happy"], ["sad"], ["angry"], ["scared"]]))
    assert data.labels.words("en")[0] == ["happy"]
    examples = data.split("train")
    assert subsample(examples, 10, seed=1) == subsample(examples, 10, seed=1)
    assert len(subsample(examples, 10, seed=1)) == 10
    assert subsample(examples, None, seed=1) is examples


def test_label_set_validation() -> None:
    with pytest.raises(EmotuneError, match="at least two"):
        LabelSet(("only",))
    with pytest.raises(EmotuneError, match="duplicate"):
        LabelSet(("a", "a"))
    with pytest.raises(EmotuneError, match="verbalisers"):
        LabelSet(("a", "b"), {"en": [["x"]]})
    labels = LabelSet(("a", "b"), {"en": [["x", "y"], ["z"]]})
    assert LabelSet.from_dict(labels.to_dict()) == labels


def test_prompt_rendering_en_and_zh() -> None:
    assert join_choices(["a", "b"], "en") == "a or b"
    assert join_choices(["a", "b", "c"], "en") == "a, b, or c"
    assert join_choices(["高兴", "难过", "生气"], "zh") == "高兴、难过或生气"
    labels = LabelSet(("neg", "pos"), {"en": [["negative"], ["positive"]], "zh": [["消极"], ["积极"]]})
    head, tail = PromptBuilder(labels, "en", "sentiment").render()
    assert head == "Classify the sentiment of the sentence to negative or positive: "
    assert tail == "\nSentiment:"
    head, tail = PromptBuilder(labels, "zh", "sentiment").render()
    assert head == "将句子的情感分类为消极或积极：" and tail == "\n情感："


def test_truncation_keeps_instruction_and_drops_oldest_context(tiny_gemma: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gemma)
    labels = LabelSet(("negative", "positive"))
    prompt = PromptBuilder(labels)
    long = Example(" ".join(["good"] * 200))
    ids = prompt.encode(tok, long, max_length=40)
    assert len(ids) == 40
    assert tok.convert_ids_to_tokens(ids[-2:]) == ["Sentiment", ":"]
    ctx = Example("good", context=(Turn("bad bad bad bad", "A"), Turn("great", "B")))
    with_ctx = tok.convert_ids_to_tokens(prompt.encode(tok, ctx, max_length=24))
    assert "great" in with_ctx and len(with_ctx) <= 24
    assert with_ctx[0] == "<bos>"


def test_csv_quoted_field_may_hold_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"first line\nsecond line",joy\nplain,sadness\n')
    data = load_data(DataConfig(dataset="files", train_file=str(path)))
    assert [e.text for e in data.split("train")] == ["first line\nsecond line", "plain"]


def test_prediction_input_rows_and_errors(tmp_path: Path) -> None:
    from emotune.inference.rows import iter_rows

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "fine"}\n{broken\n{"text": ""}\n')
    assert [r[:4] for r in iter_rows(jsonl, "text")] == [
        (1, "fine", None, ()),
        (2, None, "line 2: not valid JSON", ()),
        (3, None, "line 3: no text in 'text'", ()),
    ]
    table = tmp_path / "in.csv"
    table.write_text("sentence\nhello\n")
    with pytest.raises(EmotuneError, match="no column 'text'"):
        list(iter_rows(table, "text"))
    with pytest.raises(EmotuneError, match="file not found"):
        list(iter_rows(tmp_path / "none.csv", "text"))
    lines = tmp_path / "in.txt"
    lines.write_text("one\n\ntwo\n")
    assert [r.text for r in iter_rows(lines, "text")] == ["one", "two"]
    assert [r.text for r in iter_rows(table, "sentence")] == ["hello"]


def test_prediction_rows_carry_dialogue_context_to_the_predictor(tmp_path: Path) -> None:
    from emotune.inference.labelling import predict_block
    from emotune.inference.predict import Prediction
    from emotune.inference.rows import iter_rows

    jsonl = tmp_path / "in.jsonl"
    rows = [{"text": "ok then", "context": ["you broke it", "I did"]}, {"text": "fine"}, {"text": "x", "context": "no"}]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = list(iter_rows(jsonl, "text"))
    assert read[0].context == ("you broke it", "I did") and read[1].context == ()
    assert read[2].error == "line 3: 'context' must be a list of earlier turns (strings)"

    class Recorder:  # stands in for a Predictor: records what it is asked
        def predict(self, texts: list[str], contexts: list[list[str]] | None = None) -> list[Prediction]:
            self.seen = (texts, contexts)
            return [Prediction("joy", {"joy": 1.0}) for _ in texts]

    recorder = Recorder()
    lines, errors = predict_block(recorder, read)  # type: ignore[arg-type]
    assert recorder.seen == (["ok then", "fine"], [["you broke it", "I did"], []])
    assert errors == 1 and len(lines.splitlines()) == 3


def test_a_dialogue_column_gives_each_row_its_earlier_turns(tmp_path: Path) -> None:
    from emotune.inference.rows import DialogueColumns, iter_rows

    table = tmp_path / "in.csv"
    rows = ["d,who,text", "1,A,hi", "1,B,", "1,B,hello", "1,A,how are you", "1,B,fine", "2,C,yo", "1,A,back"]
    table.write_text("\n".join([*rows, ",D,alone"]) + "\n")
    read = list(iter_rows(table, "text", DialogueColumns("d", "who", turns=2)))
    assert read[1].error == "line 3: no text in 'text'"  # an error row is no turn of its dialogue
    assert [r.context for r in read] == [
        (),
        (),
        ("A: hi",),
        ("A: hi", "B: hello"),
        ("B: hello", "A: how are you"),  # the last two turns only
        (),  # a new dialogue
        (),  # dialogue 1 again after another: consecutive rows make a dialogue
        (),  # no dialogue value: the row stands alone
    ]
    assert [r.context for r in iter_rows(table, "text", DialogueColumns("d", turns=1))][3] == ("hello",)
    with pytest.raises(EmotuneError, match=r"no column 'scene' .*set dialogue_column"):
        list(iter_rows(table, "text", DialogueColumns("scene")))
    with pytest.raises(EmotuneError, match=r"no column 'speaker' .*set speaker_column"):
        list(iter_rows(table, "text", DialogueColumns("d", "speaker")))
    lines = tmp_path / "in.txt"
    lines.write_text("hi\n")
    with pytest.raises(EmotuneError, match="a dialogue column needs a CSV, TSV or JSONL file"):
        list(iter_rows(lines, "text", DialogueColumns("d")))

    jsonl = tmp_path / "in.jsonl"
    records = [{"d": 7, "text": "hi"}, {"d": 7, "text": "so", "context": ["given"]}, {"d": 7, "text": "ok"}]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    read = list(iter_rows(jsonl, "text", DialogueColumns("d", turns=2)))
    assert [r.context for r in read] == [(), ("given",), ("hi", "so")]  # a row's own context wins


def _context_loaded(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The ``context_turns`` each data load of the pipeline asks for; the load then stops the run."""
    from emotune.pipeline import one_corpus, saved

    seen: list[int | None] = []

    def loaded(data: DataConfig, *_: object) -> None:
        seen.append(data.context_turns)
        raise EmotuneError("stop here")

    for module in (one_corpus, saved):  # a run's data load, and a saved run's
        monkeypatch.setattr(module, "load_data", loaded)
    return seen


def test_evaluating_a_run_keeps_the_context_it_was_trained_with(tmp_path: Path, monkeypatch) -> None:
    # Mastodon's default became two turns; a run trained before, with 0, must be scored with 0.
    from emotune import pipeline
    from emotune.config import RunConfig

    seen = _context_loaded(monkeypatch)
    (tmp_path / "dataset_card.json").write_text('{"context_turns": 0}')
    for given in (None, 1):  # unset: the run's own; given: the caller's
        cfg = RunConfig()
        cfg.data.dataset, cfg.data.context_turns = "mastodon", given
        with pytest.raises(EmotuneError, match="stop here"):
            pipeline.evaluate_saved(tmp_path, cfg)
    assert seen == [0, 1]


def test_resuming_a_run_keeps_the_context_it_started_with(tmp_path: Path, monkeypatch) -> None:
    # A Mastodon run started with 0 turns, before the default became two, goes on with 0.
    from emotune import pipeline
    from emotune.config import RunConfig

    seen = _context_loaded(monkeypatch)
    started, fresh = tmp_path / "started", tmp_path / "fresh"
    started.mkdir()
    (started / "dataset_card.json").write_text('{"context_turns": 0}')
    for folder, given in ((started, None), (started, 1), (fresh, None)):
        cfg = RunConfig(output=str(folder))
        cfg.data.dataset, cfg.data.context_turns = "mastodon", given
        with pytest.raises(EmotuneError, match="stop here"):
            pipeline.run(cfg, resume=True)
        assert cfg.data.context_turns == given  # the config (and its saved copy) stays as given
    assert seen == [0, 1, None]  # the run's own; the caller's; nothing started yet: the corpus default


def test_predictor_knows_the_context_its_run_was_trained_with(tmp_path: Path, caplog) -> None:
    from emotune.inference.predict import Predictor, trained_context_turns
    from emotune.inference.rows import DialogueColumns, dialogue_columns

    assert trained_context_turns(tmp_path) == 0  # no dataset card: an export without one
    (tmp_path / "dataset_card.json").write_text('{"context_turns": 2}')
    assert trained_context_turns(tmp_path) == 2
    (tmp_path / "dataset_card.json").write_text("{oops")
    with pytest.raises(EmotuneError, match=r"dataset_card\.json: not valid JSON"):
        trained_context_turns(tmp_path)

    with_context = Predictor(recogniser=None, context_turns=2)  # type: ignore[arg-type]
    assert dialogue_columns(with_context, "scene", "who") == DialogueColumns("scene", "who", 2)
    assert dialogue_columns(with_context, None, None) is None
    with pytest.raises(EmotuneError, match="speaker_column needs dialogue_column"):
        dialogue_columns(with_context, None, "who")
    with caplog.at_level("WARNING"):
        assert dialogue_columns(Predictor(None), "scene", None).turns == 0  # type: ignore[arg-type]
    assert "trained without dialogue context" in caplog.text


def test_prediction_rows_count_data_rows_and_flag_extra_fields(tmp_path: Path) -> None:
    from emotune.inference.rows import iter_rows

    table = tmp_path / "in.csv"
    table.write_text("text,id\nhello,1\nwell, that is odd,2\n\nbye,3\n")  # line 3: an unquoted comma
    assert [r[:4] for r in iter_rows(table, "text")] == [
        (1, "hello", None, ()),
        (2, None, "line 3: more fields than the header (an unquoted comma?)", ()),
        (3, "bye", None, ()),
    ]
    lines = tmp_path / "in.txt"
    lines.write_text("one\n\ntwo\n")
    assert [r.row for r in iter_rows(lines, "text")] == [1, 2]


def test_files_without_the_label_column_name_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("sentence,emotion\nhello,joy\nbye,sadness\n")
    with pytest.raises(EmotuneError, match=r"train.csv: no column 'text' \(columns: sentence, emotion\)"):
        load_data(DataConfig(dataset="files", train_file=str(path)))
    with pytest.raises(EmotuneError, match=r"no column 'label' \(columns: sentence, emotion\)"):
        load_data(DataConfig(dataset="files", train_file=str(path), text_column="sentence"))


def test_a_registered_corpus_without_data_dir_says_where_to_get_it() -> None:
    with pytest.raises(EmotuneError, match=r"dataset 'friends' needs data_dir .* get it from https://"):
        load_data(DataConfig(dataset="friends"))


def test_evaluating_one_split_reads_only_its_file(tmp_path: Path) -> None:
    (tmp_path / "stsa.binary.test").write_text("1 a fine film\n0 a dull film\n", encoding="latin-1")
    data = load_data(DataConfig(dataset="sst2", data_dir=str(tmp_path)), splits={"test"})
    assert list(data.splits) == ["test"] and len(data.split("test")) == 2
    with pytest.raises(EmotuneError, match=r"stsa\.binary\.train: file not found"):
        load_data(DataConfig(dataset="sst2", data_dir=str(tmp_path)))


def test_training_without_a_test_file_says_how_to_evaluate_before_it_trains(tmp_path: Path, capsys) -> None:
    from emotune.cli import main

    train = tmp_path / "train.csv"
    train.write_text("text,label\ngreat film,positive\nawful film,negative\n")
    argv = ["train", "--dataset", "files", "--train-file", str(train), "--output", str(tmp_path / "run")]
    assert main([*argv, "--model", "no/such-model"]) == 2  # refused before the backbone is looked up
    err = capsys.readouterr().err.strip()
    assert err.endswith("has only ['train']: give --test-file, or evaluate on another split (--split)"), err
    assert not (tmp_path / "run").exists()
