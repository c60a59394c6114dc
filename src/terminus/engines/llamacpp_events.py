"""llama.cpp's streamed chunks → Terminus events, and llama.cpp's errors → typed ones.

The worker forwards ``xllamacpp.Server``'s OpenAI-shaped chunks; here they become
``ContentDelta`` / ``ThinkingDelta`` / ``TokenLogprobs`` / ``ToolCallEvent`` events, then
``Stats`` and ``Done``. Content that may be a prompted tool call is held back until it is
clearly prose (or parsed as calls at the end).
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from typing import Any

from terminus.engines.llamacpp_proxy import END
from terminus.engines.tool_prompting import looks_like_call, new_call_id, parse_calls
from terminus.errors import (
    ContextLengthExceededError,
    EngineError,
    InvalidParameterError,
    InvalidSchemaError,
    TerminusError,
)
from terminus.types import (
    CancelToken,
    ChatEvent,
    ContentDelta,
    Done,
    Stats,
    StopReason,
    ThinkingDelta,
    TokenLogprob,
    TokenLogprobs,
    Tool,
    ToolCall,
    ToolCallEvent,
)

_FINISH: dict[str, StopReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def translate_chunks(
    chunks: queue.SimpleQueue[Any],
    tools: tuple[Tool, ...],
    tool_plan: str,
    cancel: CancelToken,
    started: float,
    slots: tuple[int, int] | None = None,
) -> Iterator[ChatEvent]:
    held: list[str] = []  # content held back while it may be a prompted tool call
    holding = tool_plan in ("auto", "required")
    native_calls: dict[int, dict[str, str]] = {}
    finish: str | None = None
    first_token_at: float | None = None
    usage: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    while True:
        item = chunks.get()
        if item is END:
            break
        if isinstance(item, TerminusError):
            raise item  # the worker crashed
        if isinstance(item, Exception):
            raise map_engine_exception(item)
        if "error" in item:
            raise map_error_chunk(item["error"], slots)
        usage = item.get("usage") or usage
        timings = item.get("timings") or timings
        for choice in item.get("choices") or ():
            finish = choice.get("finish_reason") or finish
            delta = choice.get("delta") or {"content": choice.get("text")}
            if first_token_at is None and (
                delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls")
            ):
                first_token_at = time.perf_counter()
            yield from _logprob_events(choice.get("logprobs"))
            if delta.get("reasoning_content"):
                yield ThinkingDelta(text=delta["reasoning_content"])
            for call in delta.get("tool_calls") or ():
                slot = native_calls.setdefault(
                    call.get("index", 0), {"id": "", "name": "", "args": ""}
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["args"] += function.get("arguments") or ""
            text = delta.get("content")
            if not text:
                continue
            if holding:
                held.append(text)
                joined = "".join(held)
                if tool_plan == "auto" and joined.strip() and not looks_like_call(joined):
                    holding = False
                    held.clear()
                    yield ContentDelta(text=joined)
            else:
                yield ContentDelta(text=text)
    calls: list[ToolCall] = [_native_call(c) for _, c in sorted(native_calls.items())]
    if held:
        joined = "".join(held)
        parsed = parse_calls(joined, tools)
        if parsed:
            calls.extend(parsed)
        else:
            yield ContentDelta(text=joined)
    for call in calls:
        yield ToolCallEvent(call=call)
    ended = time.perf_counter()
    yield Stats(
        prompt_tokens=int(
            usage.get("prompt_tokens") or timings.get("prompt_n", 0) + timings.get("cache_n", 0)
        ),
        completion_tokens=int(usage.get("completion_tokens") or timings.get("predicted_n", 0)),
        time_to_first_token_s=None if first_token_at is None else first_token_at - started,
        tokens_per_second=timings.get("predicted_per_second"),
        total_s=ended - started,
        draft_tokens=timings.get("draft_n"),
        draft_accepted=timings.get("draft_n_accepted"),
    )
    if cancel.cancelled:
        reason: StopReason = "cancelled"
    elif calls:
        reason = "tool_calls"
    else:
        reason = _FINISH.get(finish or "stop", "stop")
    yield Done(stop_reason=reason)


def _logprob_events(logprobs: dict[str, Any] | None) -> Iterator[TokenLogprobs]:
    for entry in (logprobs or {}).get("content") or ():
        yield TokenLogprobs(
            token=str(entry.get("token", "")),
            logprob=float(entry.get("logprob", 0.0)),
            top=tuple(
                TokenLogprob(token=str(t.get("token", "")), logprob=float(t["logprob"]))
                for t in entry.get("top_logprobs") or ()
            ),
        )


def _native_call(slot: dict[str, str]) -> ToolCall:
    try:
        arguments = json.loads(slot["args"]) if slot["args"].strip() else {}
    except ValueError:
        arguments = {"_raw": slot["args"]}
    return ToolCall(id=slot["id"] or new_call_id(), name=slot["name"], arguments=arguments)


def map_error_chunk(error: dict[str, Any], slots: tuple[int, int] | None = None) -> Exception:
    """A typed error for an error chunk. ``slots`` is (context per request, slots) as the
    model was loaded: llama.cpp reports only its total over every slot, a number no user
    asked for."""
    message = str(error.get("message", "llama.cpp error"))
    if error.get("type") == "exceed_context_size_error":
        holds = f"the context holds {error.get('n_ctx')}"
        if slots is not None:
            context, parallel = slots
            holds = (
                f"the context is {context} tokens per request "
                f"({error.get('n_ctx')} shared by {parallel} slots)"
            )
        return ContextLengthExceededError(
            f"prompt is {error.get('n_prompt_tokens')} tokens; {holds}",
            hint="shorten the prompt or load the model with a larger context_length "
            "(--context-length)",
        )
    if error.get("code") == 400:
        return InvalidParameterError(message)
    return EngineError(message)


def map_engine_exception(exc: Exception) -> Exception:
    text = str(exc)
    if "JSON schema" in text or "json_schema" in text or "grammar" in text:
        return InvalidSchemaError(f"llama.cpp rejected the schema: {text}")
    if isinstance(exc, ValueError):
        return InvalidParameterError(text)
    return EngineError(text)
