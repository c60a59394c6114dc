"""Terminus events → a Responses API ``response`` object and its streamed events.

One builder serves both modes: fed every event, it keeps the output items up to
date and returns the stream events each one causes (in the order the ``openai``
SDK's stream accumulator expects); ``snapshot()`` is the response at any point.
"""

from __future__ import annotations

import time
from typing import Any

from terminus.server.responses_convert import (
    ResponsesRequest,
    new_item_id,
    text_format,
    tool_call_item,
)
from terminus.types import ChatEvent, ContentDelta, Done, Stats, ToolCallEvent

#: Terminus stop reasons → (response status, incomplete reason).
_STATUS = {
    "stop": ("completed", None),
    "tool_calls": ("completed", None),
    "length": ("incomplete", "max_output_tokens"),
    "cancelled": ("cancelled", None),
    "error": ("failed", None),
}


def response_usage(stats: Stats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "input_tokens": stats.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": stats.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": stats.prompt_tokens + stats.completion_tokens,
    }


class ResponseBuilder:
    def __init__(self, body: ResponsesRequest, model: str) -> None:
        self.id = new_item_id("resp")
        self.created_at = int(time.time())
        self.body = body
        self.model = model
        self.status = "in_progress"
        self.output: list[dict[str, Any]] = []
        self.stats: Stats | None = None
        self.error: dict[str, Any] | None = None
        self.incomplete_reason: str | None = None
        self.completed_at: int | None = None
        self._message: dict[str, Any] | None = None  # the open message item
        self._text: list[str] = []

    # -- the response object ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        body = self.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "completed_at": self.completed_at,
            "background": False,
            "error": self.error,
            "incomplete_details": (
                {"reason": self.incomplete_reason} if self.incomplete_reason else None
            ),
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "metadata": body.metadata or {},
            "model": self.model,
            "output": [dict(item) for item in self.output],
            "parallel_tool_calls": (
                True if body.parallel_tool_calls is None else body.parallel_tool_calls
            ),
            "previous_response_id": body.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": body.store is not False,
            "temperature": 1.0 if body.temperature is None else body.temperature,
            "text": text_format(body.text),
            "tool_choice": body.tool_choice or "auto",
            "tools": list(body.tools or []),
            "top_p": 1.0 if body.top_p is None else body.top_p,
            "truncation": body.truncation or "disabled",
            "usage": response_usage(self.stats),
            "user": body.user,
        }

    # -- events ---------------------------------------------------------------------

    def start(self) -> list[dict[str, Any]]:
        snapshot = self.snapshot()
        return [
            {"type": "response.created", "response": snapshot},
            {"type": "response.in_progress", "response": snapshot},
        ]

    def event(self, event: ChatEvent) -> list[dict[str, Any]]:
        if isinstance(event, ContentDelta):
            if not event.text:
                return []
            events = self._open_message()
            self._text.append(event.text)
            events.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": self._item_id(),
                    "output_index": len(self.output) - 1,
                    "content_index": 0,
                    "delta": event.text,
                    "logprobs": [],
                }
            )
            return events
        if isinstance(event, ToolCallEvent):
            events = self._close_message("completed")
            item = tool_call_item(event.call)
            index = len(self.output)
            self.output.append(item)
            arguments = item["arguments"]
            added = {**item, "arguments": "", "status": "in_progress"}
            common = {"item_id": item["id"], "output_index": index}
            return [
                *events,
                {"type": "response.output_item.added", "output_index": index, "item": added},
                {"type": "response.function_call_arguments.delta", **common, "delta": arguments},
                {
                    "type": "response.function_call_arguments.done",
                    **common,
                    "arguments": arguments,
                },
                {"type": "response.output_item.done", "output_index": index, "item": dict(item)},
            ]
        if isinstance(event, Stats):
            self.stats = event
            return []
        if isinstance(event, Done):
            return self._finish(event)
        return []

    def _finish(self, done: Done) -> list[dict[str, Any]]:
        status, reason = _STATUS.get(done.stop_reason, ("failed", None))
        events: list[dict[str, Any]] = []
        if status in ("completed", "incomplete") and (self._message or not self.output):
            events += self._open_message()  # an empty answer is still a message
        events += self._close_message("incomplete" if status == "incomplete" else "completed")
        self.status = status
        self.incomplete_reason = reason
        if status == "completed":
            self.completed_at = int(time.time())
        if status == "failed":
            self.error = {"code": "server_error", "message": done.error or "the engine failed"}
        kind = {
            "completed": "response.completed",
            "incomplete": "response.incomplete",
            "failed": "response.failed",
        }.get(status)
        if kind is not None:
            events.append({"type": kind, "response": self.snapshot()})
        return events

    def fail(self, code: str, message: str) -> list[dict[str, Any]]:
        """The events that end a stream broken by an exception."""
        self.status = "failed"
        self.error = {"code": code, "message": message}
        return [
            {"type": "error", "code": code, "message": message, "param": None},
            {"type": "response.failed", "response": self.snapshot()},
        ]

    # -- the message item ----------------------------------------------------------------

    def _item_id(self) -> str:
        assert self._message is not None
        return str(self._message["id"])

    def _open_message(self) -> list[dict[str, Any]]:
        if self._message is not None:
            return []
        self._text = []
        self._message = {
            "id": new_item_id("msg"),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self.output.append(self._message)
        index = len(self.output) - 1
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        self._message["content"] = [part]
        item_added = {**self._message, "content": []}
        return [
            {"type": "response.output_item.added", "output_index": index, "item": item_added},
            {
                "type": "response.content_part.added",
                "item_id": self._message["id"],
                "output_index": index,
                "content_index": 0,
                "part": dict(part),
            },
        ]

    def _close_message(self, status: str) -> list[dict[str, Any]]:
        message = self._message
        if message is None:
            return []
        self._message = None
        text = "".join(self._text)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message["content"] = [part]
        message["status"] = status
        index = self.output.index(message)
        common = {"item_id": message["id"], "output_index": index, "content_index": 0}
        return [
            {"type": "response.output_text.done", **common, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **common, "part": dict(part)},
            {"type": "response.output_item.done", "output_index": index, "item": dict(message)},
        ]
