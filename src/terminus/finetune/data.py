"""Training data: chat-format or plain-text JSONL, checked line by line.

One JSON object per line, either ``{"messages": [{"role": ..., "content": ...}, ...]}``
(roles system, user, assistant) or ``{"text": "..."}``. Blank lines are skipped.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import DatasetError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Example:
    messages: tuple[dict[str, str], ...] = ()
    text: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.text is None

    def has_assistant_turn(self) -> bool:
        return any(m["role"] == "assistant" for m in self.messages)


def parse_example(obj: Any, where: str) -> Example:
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            raise DatasetError(f"{where}: 'messages' must be a non-empty list")
        parsed = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise DatasetError(f"{where}: message {i} is not an object")
            role, content = message.get("role"), message.get("content")
            if role not in ROLES:
                raise DatasetError(
                    f"{where}: message {i} has role {role!r}; expected one of {', '.join(ROLES)}"
                )
            if not isinstance(content, str):
                raise DatasetError(f"{where}: message {i} has no text 'content'")
            parsed.append({"role": role, "content": content})
        return Example(messages=tuple(parsed))
    if isinstance(obj.get("text"), str) and obj["text"].strip():
        return Example(text=obj["text"])
    raise DatasetError(f"{where}: expected a 'messages' list or a non-empty 'text' string")


def read_jsonl(path: Path) -> list[Example]:
    """Every example of a JSONL file; a bad line raises DatasetError naming its number."""
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    examples = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{where}: not valid JSON ({exc.msg})") from exc
            examples.append(parse_example(obj, where))
    if not examples:
        raise DatasetError(f"dataset {path} holds no examples")
    return examples


def check_trainable(examples: list[Example], *, assistant_only: bool, name: str) -> None:
    """With the assistant-only loss, chat data must contain assistant turns to learn from."""
    if assistant_only and not any(e.has_assistant_turn() or not e.is_chat for e in examples):
        raise DatasetError(
            f"{name} has no assistant turns: nothing to learn with the assistant-only loss",
            hint="add assistant messages, or train on every token (--train-on all)",
        )


def split(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """A seeded train/validation split; at least one example stays in training."""
    if not 0 <= fraction < 1:
        raise DatasetError(f"validation fraction must be in [0, 1), got {fraction}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = min(int(round(len(examples) * fraction)), len(examples) - 1)
    val = [examples[i] for i in order[:n_val]]
    train = [examples[i] for i in order[n_val:]]
    return train, val
