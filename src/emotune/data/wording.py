"""Other words for the usual label names, so an adapter trained on one wording reads another.

A multi-corpus run with ``data.label_variants: N`` prompts each corpus under N reworded label
sets besides its own (`reworded`): "happy" or "happiness" for joy, "angry" or "mad" for anger,
and so on, so that a user who names the labels their own way at call time gets what the
canonical names get.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence

from emotune.data.schema import LabelSet

log = logging.getLogger(__name__)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_EN = {
    "joy": ("happy", "happiness", "joyful", "delight"),
    "happy": ("joy", "happiness", "joyful"),
    "anger": ("angry", "mad", "furious", "rage"),
    "angry": ("anger", "mad", "furious"),
    "fear": ("afraid", "scared", "fearful", "fright"),
    "sadness": ("sad", "sorrow", "unhappy"),
    "sad": ("sadness", "sorrow", "unhappy"),
    "surprise": ("surprised", "astonished", "shocked"),
    "disgust": ("disgusted", "revulsion", "gross"),
    "neutral": ("none", "no emotion", "neither"),
    "trust": ("trusting", "confidence"),
    "anticipation": ("expectation", "expectant"),
    "positive": ("good", "favorable", "pleased"),
    "negative": ("bad", "unfavorable", "displeased"),
    "love": ("affection", "loving"),
    "gratitude": ("thankful", "grateful", "thanks"),
    "admiration": ("admire", "respect"),
    "amusement": ("amused", "funny", "humor"),
    "annoyance": ("annoyed", "irritation"),
    "approval": ("approve", "agreement"),
    "caring": ("care", "kindness"),
    "confusion": ("confused", "puzzled"),
    "curiosity": ("curious", "interest"),
    "desire": ("want", "longing"),
    "disappointment": ("disappointed", "letdown"),
    "disapproval": ("disapprove", "objection"),
    "embarrassment": ("embarrassed", "ashamed", "awkward"),
    "excitement": ("excited", "thrill"),
    "grief": ("mourning", "heartbreak"),
    "nervousness": ("nervous", "anxious", "anxiety"),
    "optimism": ("optimistic", "hope", "hopeful"),
    "pride": ("proud",),
    "realization": ("realisation", "insight"),
    "relief": ("relieved",),
    "remorse": ("guilt", "regret", "sorry"),
    "mixed": ("ambivalent", "both"),
    "ambiguous": ("unclear", "uncertain"),
}
_ZH = {
    "喜悦": ("高兴", "快乐", "开心"),
    "高兴": ("喜悦", "快乐", "开心"),
    "愤怒": ("生气", "气愤"),
    "悲伤": ("难过", "伤心"),
    "恐惧": ("害怕", "担心"),
    "惊讶": ("吃惊", "惊奇"),
    "厌恶": ("讨厌", "恶心"),
    "信任": ("相信", "信赖"),
    "期待": ("期望", "盼望"),
    "积极": ("正面", "好评"),
    "消极": ("负面", "差评"),
    "中性": ("平静", "无情绪"),
}
SYNONYMS = {"en": _EN, "zh": _ZH}


def variants_of(word: str, language: str) -> tuple[str, ...]:
    """Other words for ``word`` (none known: empty)."""
    return SYNONYMS.get(language, SYNONYMS["en"]).get(word.lower(), ())


def reworded(labels: LabelSet, language: str, rng: random.Random) -> LabelSet:
    """``labels`` with each shown word replaced, at random, by itself or one of its variants.

    Returns the same names (the labels are the same classes) with one word per label; the words
    stay distinct, so no two labels are scored by the same word.
    """
    words: list[str] = []
    for own in (w[0] for w in labels.words(language)):
        choices = [own, *(v for v in variants_of(own, language) if v not in words)]
        words.append(rng.choice(choices))
    if len(set(words)) != len(words):  # a variant equal to another label's own word
        return LabelSet(labels.names, {language: [w[:1] for w in labels.words(language)]})
    return LabelSet(labels.names, {language: [[w] for w in words]})


# Label sets made only of these read as sentiment, anything else as emotion (the prompt's task word).
_SENTIMENT = {
    "positive",
    "negative",
    "neutral",
    "mixed",
    "very positive",
    "very negative",
    "somewhat positive",
    "somewhat negative",
    "pos",
    "neg",
    "积极",
    "消极",
    "中性",
    "正面",
    "负面",
    "正向",
    "负向",
}


def task_word(names: Sequence[str]) -> str:
    """``sentiment`` for a polarity label set (positive, negative, neutral...), else ``emotion``."""
    return "sentiment" if all(n.casefold() in _SENTIMENT for n in names) else "emotion"


def label_language(names: Sequence[str]) -> str:
    """``zh`` when a label is written in Chinese characters, else ``en``."""
    return "zh" if any(_CJK.search(n) for n in names) else "en"


def text_language(text: str) -> str:
    """The prompt language a text asks for: ``zh`` when at least a third of its letters are
    Chinese characters, else ``en`` (label names stay as given either way)."""
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum(1 for ch in letters if _CJK.match(ch))
    return "zh" if letters and 3 * cjk >= len(letters) else "en"


def texts_language(texts: Sequence[str], where: str) -> str:
    """The prompt language of a corpus the user brings: that of most of its texts (`text_language`).

    A run prompts every text in one language, since its label head reads one language's label
    tokens; a corpus whose texts disagree gets a warning naming ``data.language``.
    """
    chinese = sum(text_language(t) == "zh" for t in texts)
    language = "zh" if 2 * chinese > len(texts) else "en"
    other = chinese if language == "en" else len(texts) - chinese
    if other and other * 10 >= len(texts):
        log.warning(
            "%s: %d of %d texts are in the other language; every text is prompted in '%s' "
            "(set data.language / --language to choose)",
            where,
            other,
            len(texts),
            language,
        )
    return language
