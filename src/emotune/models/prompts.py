"""The paper's instruction prompt, in English and Chinese, with optional dialogue context.

A prompt is kept as three token segments (head, text, tail) so the text alone is truncated to
the length budget and the instruction is never cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emotune.data.schema import Example, LabelSet

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_TEMPLATES = {
    "en": "Classify the {task} of the sentence to {choices}: {text}\n{Task}:",
    "zh": "将句子的{task}分类为{choices}：{text}\n{task}：",
}
_TASK_WORDS = {
    "en": {"sentiment": "sentiment", "emotion": "emotion"},
    "zh": {"sentiment": "情感", "emotion": "情绪"},
}
_CONTEXT_HEADERS = {"en": "Dialogue so far:\n", "zh": "对话上文：\n"}


def join_choices(words: list[str], language: str) -> str:
    """Joins label words as the paper does: "E1, E2, or Ek" (or "E1、E2或Ek" in Chinese)."""
    if language == "zh":
        return "、".join(words[:-1]) + "或" + words[-1]
    if len(words) == 2:
        return f"{words[0]} or {words[1]}"
    return ", ".join(words[:-1]) + f", or {words[-1]}"


@dataclass(frozen=True)
class PromptBuilder:
    """Turns examples into token ids: ``[bos] head text tail`` with the text truncated.

    Attributes:
        labels: The task's labels (their first verbaliser word is shown in the prompt).
        language: "en" or "zh"; selects the template and verbalisers.
        task: "sentiment" or "emotion" (or any word the user sets).
        template: Optional custom template with ``{text}`` (and optionally ``{choices}``).
    """

    labels: LabelSet
    language: str = "en"
    task: str = "sentiment"
    template: str | None = None
    _frames: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def answer_prefix(self) -> str:
        """Text put before a label word when it follows the prompt (a space in English)."""
        return "" if self.language == "zh" else " "

    def render(self) -> tuple[str, str]:
        """Returns the (head, tail) around the text."""
        template = self.template or _TEMPLATES.get(self.language, _TEMPLATES["en"])
        words = [w[0] for w in self.labels.words(self.language)]
        task = _TASK_WORDS.get(self.language, {}).get(self.task, self.task)
        filled = template.format(
            task=task,
            Task=task[:1].upper() + task[1:],
            choices=join_choices(words, self.language),
            text="\0",
        )
        head, _, tail = filled.partition("\0")
        return head, tail

    def context_text(self, example: Example) -> str:
        """Renders earlier dialogue turns ("speaker: text" per line), oldest first."""
        if not example.context:
            return ""
        lines = [t.line for t in example.context]
        return _CONTEXT_HEADERS.get(self.language, _CONTEXT_HEADERS["en"]) + "\n".join(lines) + "\n"

    def frame_ids(self, tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
        """Token ids of the template's head and tail, tokenised once per tokenizer (they never change)."""
        key = id(tokenizer)
        if key not in self._frames:
            head, tail = self.render()
            head_ids, tail_ids = (tokenizer(s, add_special_tokens=False).input_ids for s in (head, tail))
            self._frames[key] = (head_ids, tail_ids)
        return self._frames[key]

    def encode(self, tokenizer: PreTrainedTokenizerBase, example: Example, max_length: int) -> list[int]:
        """Tokenises one example's prompt, cutting the text (then context, oldest first) to fit."""
        ids = lambda s: tokenizer(s, add_special_tokens=False).input_ids  # noqa: E731
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        head_ids, tail_ids = self.frame_ids(tokenizer)
        text_ids = ids(example.text)
        budget = max(1, max_length - len(bos) - len(head_ids) - len(tail_ids))
        text_ids = text_ids[:budget]
        room = budget - len(text_ids)
        context_ids = ids(self.context_text(example)) if example.context and room > 0 else []
        context_ids = context_ids[max(0, len(context_ids) - room) :]  # drop the oldest tokens
        return bos + context_ids + head_ids + text_ids + tail_ids
