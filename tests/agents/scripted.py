"""A scripted model for fast loop tests: each step replies with the next scripted turn.

A turn is a string (streamed as content) or a list of ``(name, arguments)`` calls.
The requests it saw are kept, so tests can check what the model was shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    ContentDelta,
    Done,
    Stats,
    ToolCall,
    ToolCallEvent,
)


class ScriptedModel:
    def __init__(self, *turns: str | list[tuple[str, dict[str, Any]]]) -> None:
        self.turns = list(turns)
        self.requests: list[ChatRequest] = []

    def __call__(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        self.requests.append(request)
        turn = self.turns.pop(0) if self.turns else "out of script"
        if cancel.cancelled:
            yield Done(stop_reason="cancelled")
            return
        if isinstance(turn, str):
            for word in turn.split(" "):
                yield ContentDelta(text=word + " ")
            yield Stats(prompt_tokens=10, completion_tokens=len(turn.split()))
            yield Done(stop_reason="stop")
            return
        for i, (name, arguments) in enumerate(turn):
            yield ToolCallEvent(
                call=ToolCall(id=f"call_{len(self.requests)}_{i}", name=name, arguments=arguments)
            )
        yield Stats(prompt_tokens=10, completion_tokens=5)
        yield Done(stop_reason="tool_calls")
