"""The licence-clean corpora (XED, Poem Sentiment, GoEmotions' sentiment groups) and EmoBank, and
what a multi-corpus run does with them: reworded label sets and judged test texts left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED
from emotune.config import DataConfig
from emotune.data import load_data
from emotune.data.multi import load_corpora, mixed_train
from emotune.data.schema import LabelSet
from emotune.data.sources import REDISTRIBUTABLE
from emotune.data.wording import reworded, task_word
from emotune.errors import EmotuneError


def _xed(folder: Path) -> Path:
    lines = [f"line {i} of anger\t1" for i in range(10)] + [f"line {i} of joy and trust\t5, 8" for i in range(10)]
    lines += ["a broken line without ids", "the sadness line\t6"]
    (folder / "en-annotated.tsv").write_text("\n".join(lines) + "\n")
    (folder / "neu_en.txt").write_text("".join(f"9\tneutral line {i}\n" for i in range(10)))
    for name in ("zh", "cn", "tw"):
        (folder / f"{name}-projections.tsv").write_text("".join(f"{name}句子{i}\t4\n" for i in range(10)))
    return folder


def test_xed_splits_are_seeded_and_fixed(tmp_path: Path) -> None:
    data = load_data(DataConfig(dataset="xed", data_dir=str(_xed(tmp_path))), seed=1)
    again = load_data(DataConfig(dataset="xed", data_dir=str(tmp_path)), seed=99)
    assert [e.uid for e in data.split("test")] == [e.uid for e in again.split("test")]  # not the run seed
    assert sum(len(data.split(s)) for s in ("train", "dev", "test")) == 31  # the broken line is skipped
    assert data.multi_label and data.labels.names[-1] == "neutral"
    joy_trust = next(e for s in data.splits.values() for e in s if "joy and trust" in e.text)
    assert [data.labels.names[i] for i in joy_trust.labels] == ["joy", "trust"]


def test_xed_polarity_and_chinese(tmp_path: Path) -> None:
    polarity = load_data(DataConfig(dataset="xed-polarity", data_dir=str(_xed(tmp_path))))
    names = {polarity.labels.names[int(e.label)] for s in polarity.splits.values() for e in s if e.label is not None}
    assert names == {"negative", "neutral", "positive"}
    zh = load_data(DataConfig(dataset="xed-zh", data_dir=str(tmp_path)))
    assert zh.language == "zh" and zh.labels.words("zh")[3] == ["恐惧"]


def test_xed_with_mostly_broken_lines_is_one_error(tmp_path: Path) -> None:
    _xed(tmp_path)
    (tmp_path / "en-annotated.tsv").write_text("no tabs here\n" * 5 + "ok\t1\n")
    with pytest.raises(EmotuneError, match="5 of 6 lines are not 'text<TAB>ids'"):
        load_data(DataConfig(dataset="xed", data_dir=str(tmp_path)))


def test_poem_sentiment_and_emobank(tmp_path: Path) -> None:
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.tsv").write_text("0\ta verse\t-1\n1\tanother verse\t2\n")
    poems = load_data(DataConfig(dataset="poem-sentiment", data_dir=str(tmp_path)))
    assert [poems.labels.names[int(e.label)] for e in poems.split("test")] == ["negative", "mixed"]
    rows = ["id,split,V,A,D,text", "a,train,2.4,3,3,sad", "b,test,3.0,3,3,plain", "c,test,3.6,3,3,glad"]
    (tmp_path / "emobank.csv").write_text("\n".join(rows) + "\n")
    two = load_data(DataConfig(dataset="emobank", data_dir=str(tmp_path)))
    three = load_data(DataConfig(dataset="emobank3", data_dir=str(tmp_path)))
    assert [two.labels.names[int(e.label)] for e in two.split("test")] == ["non-negative", "non-negative"]
    assert [three.labels.names[int(e.label)] for e in three.split("test")] == ["neutral", "positive"]
    assert "emobank" not in REDISTRIBUTABLE and "xed" in REDISTRIBUTABLE and "poem-sentiment" in REDISTRIBUTABLE


def test_reworded_label_sets_keep_the_classes_and_distinct_words() -> None:
    import random

    labels = LabelSet(("anger", "fear", "joy", "neutral"))
    seen = set()
    for seed in range(20):
        other = reworded(labels, "en", random.Random(seed))
        words = [w[0] for w in other.words("en")]
        assert other.names == labels.names and len(set(words)) == len(words)
        seen.update(words)
    assert {"angry", "happy", "scared"} & seen
    assert task_word(["positive", "negative"]) == "sentiment" and task_word(["joy", "anger"]) == "emotion"


def test_a_mix_spreads_examples_over_reworded_views_and_leaves_judged_texts_out(tmp_path: Path) -> None:
    (tmp_path / "xed").mkdir()
    _xed(tmp_path / "xed")
    judged = tmp_path / "poem_sentiment"
    judged.mkdir()
    for split in ("train", "dev", "test"):  # the judged corpus's test split holds two XED lines
        (judged / f"{split}.tsv").write_text("0\tLine 3 of anger!\t-1\n1\tneutral line 4\t0\n")
    data = DataConfig(
        dataset="xed,xed-polarity", data_dir=str(tmp_path), label_variants=2, exclude_test_of=["poem-sentiment"]
    )
    corpora = load_corpora(data, 42)
    assert [d.name for d in corpora.datasets] == [
        "xed",
        "xed-polarity",
        "xed~1",
        "xed~2",
        "xed-polarity~1",
        "xed-polarity~2",
    ]
    assert corpora.removed["xed"] == 2
    texts = {e.text for d in corpora.corpora for s in ("train", "dev") for e in d.splits.get(s) or []}
    assert "line 3 of anger" not in texts and "neutral line 4" not in texts
    train = mixed_train(corpora, 2.0, None, 42)
    used = {corpora.names[corpora.corpus_of(int(e.label))] for e in train}
    assert {"xed", "xed~1", "xed~2"} <= used


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/datasets not present")
def test_real_licence_clean_corpora_load() -> None:
    sizes = {}
    for name, folder in (("xed", "xed"), ("poem-sentiment", "poem_sentiment"), ("emobank", "emobank")):
        data = load_data(DataConfig(dataset=name, data_dir=str(SHARED / folder)))
        sizes[name] = tuple(len(data.split(s)) for s in ("train", "dev", "test"))
    assert sizes["poem-sentiment"] == (892, 105, 104) and sizes["emobank"] == (8062, 1000, 1000)
    assert sum(sizes["xed"]) == 17528 + 9674  # every annotated and neutral line (trailing tabs are no break)
    sentiment = load_data(DataConfig(dataset="goemotions-sentiment", data_dir=str(SHARED / "goemotions")))
    assert sentiment.labels.names == ("negative", "neutral", "positive", "ambiguous") and not sentiment.multi_label
