"""Examples → token ids and labels, with the loss on assistant tokens only (or on all).

A conversation is rendered once with the model's chat template; the character
span of each assistant reply (its text and the end-of-turn marker, so the model
learns to stop) is located by rendering the prefix before and after it, and
tokens starting inside a span keep their label. Everything else gets -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from terminus.finetune.data import Example

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def with_system(messages: tuple[dict[str, str], ...], system: str | None) -> list[dict[str, str]]:
    """Add the system prompt inference uses, so training sees the same conversations."""
    out = list(messages)
    if system and (not out or out[0]["role"] != "system"):
        out.insert(0, {"role": "system", "content": system})
    return out


def _render(tokenizer: Any, messages: list[dict[str, str]], *, prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
    return str(text)


def encode(
    example: Example,
    tokenizer: Any,
    *,
    max_tokens: int,
    assistant_only: bool = True,
    system: str | None = None,
) -> Encoded:
    if not example.is_chat:
        ids = tokenizer(str(example.text), add_special_tokens=True)["input_ids"]
        if tokenizer.eos_token_id is not None:
            ids = [*ids, tokenizer.eos_token_id]
        ids = ids[:max_tokens]
        return Encoded(ids, list(ids))
    messages = with_system(example.messages, system)
    full = _render(tokenizer, messages, prompt=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            start = len(_render(tokenizer, messages[:i], prompt=True))
            end = len(_render(tokenizer, messages[: i + 1], prompt=False))
            spans.append((start, end))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_tokens]
    offsets = list(enc["offset_mapping"])[:max_tokens]
    if not assistant_only:
        return Encoded(ids, list(ids))
    labels = [
        token if any(s <= begin < e for s, e in spans) else IGNORE
        for token, (begin, _end) in zip(ids, offsets, strict=True)
    ]
    return Encoded(ids, labels)
