"""The tool loop: ask the model, run the tools it calls, hand back the results, repeat.

The loop owns every failure: a tool that raises, hangs, returns non-JSON or is
unknown becomes a :class:`ToolResultEvent` the model reads on the next step;
only the step limit, cancellation or an engine error end the run early.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from terminus.agents.deferred import TOOL_SEARCH, ToolCatalog
from terminus.agents.events import AgentDone, AgentStopReason, ToolResultEvent
from terminus.agents.tools import DEFAULT_TIMEOUT_S, AgentTool, ToolFailure, as_tool
from terminus.engines.tool_prompting import new_call_id
from terminus.errors import InvalidParameterError
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    ContentDelta,
    Done,
    GenerationParams,
    Message,
    Stats,
    Tool,
    ToolCall,
    ToolCallEvent,
)
from terminus.types.chat import MessagesLike, parse_messages

ChatFn = Callable[[ChatRequest, CancelToken], Iterator[ChatEvent]]
Approver = Callable[[ToolCall], bool]

FINAL_ANSWER = "final_answer"
DEFAULT_SYSTEM = (
    "You are a helpful assistant that can call functions. Call a function when it gives you "
    "facts or results you need. When you have what you need, answer the user in plain "
    "sentences that state the results."
)
#: Said after tool results, restating the question: small models otherwise answer a result
#: with more JSON, or keep calling tools on their own results.
ANSWER_NUDGE = (
    "The function results are above. My question was: {question}\n"
    "If the results answer it, reply with the answer in a plain sentence that states them. "
    "Only if a result is still missing, call the next function."
)
CONSTRAINED_NUDGE = (
    "The function results are above. My question was: {question}\n"
    f"If the results answer it, call {FINAL_ANSWER} with a plain sentence that states them. "
    "Only if a result is still missing, call the next function."
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_TAG = re.compile(r"^<tool_call>\s*(.*?)\s*(?:</tool_call>)?$", re.DOTALL)


def _final_answer_tool() -> Tool:
    return Tool(
        name=FINAL_ANSWER,
        description="Give the user your answer, in plain sentences.",
        parameters={
            "type": "object",
            "properties": {
                "answer": {
                    "type": "string",
                    "description": "a full sentence, e.g. 'The ... is ...'",
                }
            },
            "required": ["answer"],
        },
    )


def expand_tools(tools: Sequence[Any]) -> list[AgentTool]:
    """Functions, AgentTools and tool providers (anything with ``tools()``) as one list."""
    out: list[AgentTool] = []
    for item in tools:
        provider = getattr(item, "tools", None)
        if callable(provider) and not isinstance(item, AgentTool) and hasattr(item, "start"):
            out.extend(provider())
        else:
            out.append(as_tool(item))
    names = [t.name for t in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidParameterError(
            f"two tools share the name {duplicates[0]!r}",
            hint="give one MCP server a prefix= or rename the function",
        )
    reserved = {FINAL_ANSWER, TOOL_SEARCH} & set(names)
    if reserved:
        raise InvalidParameterError(f"the tool name {sorted(reserved)[0]!r} is reserved")
    return out


class Agent:
    """A model, its tools and the rules of the loop; :meth:`run` starts one conversation.

    ``constrained`` makes every step a JSON-schema-constrained call (the answer
    comes through a ``final_answer`` call), which small models need to call
    tools reliably. ``deferred`` hides the tools behind ``tool_search`` (default:
    when there are more than ``deferred_above`` tools).
    """

    def __init__(
        self,
        chat: ChatFn,
        model: str,
        tools: Sequence[Any] = (),
        *,
        system: str | None = None,
        max_steps: int = 6,
        constrained: bool = False,
        deferred: bool | None = None,
        deferred_above: int = 8,
        approve: Approver | None = None,
        tool_timeout_s: float = DEFAULT_TIMEOUT_S,
        params: GenerationParams | None = None,
    ) -> None:
        if max_steps < 1:
            raise InvalidParameterError("max_steps must be at least 1")
        if tool_timeout_s <= 0:
            raise InvalidParameterError("tool_timeout_s must be positive")
        self.chat = chat
        self.model = model
        self.tools = expand_tools(tools)
        self.system = DEFAULT_SYSTEM if system is None else system
        self.max_steps = max_steps
        self.constrained = constrained
        self.deferred = len(self.tools) > deferred_above if deferred is None else deferred
        self.approve = approve
        self.tool_timeout_s = tool_timeout_s
        self.params = params or GenerationParams(max_tokens=384)

    def events(self, messages: MessagesLike, cancel: CancelToken) -> Iterator[Any]:
        """The run's events; the loop itself (one generator, driven by the consumer)."""
        history = list(parse_messages(messages, self.system or None))
        catalog = ToolCatalog(self.tools, deferred=self.deferred)
        catalog.context = next((m.content or "" for m in history if m.role == "user"), "")
        seen_calls: set[str] = set()
        force_answer = False
        steps = 0
        while True:
            if cancel.cancelled:
                yield AgentDone(stop_reason="cancelled", steps=steps)
                return
            if steps >= self.max_steps:
                yield AgentDone(
                    stop_reason="step_limit",
                    steps=steps,
                    error=f"no final answer within {self.max_steps} steps",
                )
                return
            steps += 1
            visible = [] if force_answer else catalog.visible()
            request = self._request(history, visible, force_answer)
            text: list[str] = []
            calls: list[ToolCall] = []
            answer: str | None = None
            done: Done | None = None
            for event in self.chat(request, cancel):
                if isinstance(event, ContentDelta):
                    text.append(event.text)
                    if not self.constrained or not visible:
                        yield event
                elif isinstance(event, ToolCallEvent):
                    if event.call.name == FINAL_ANSWER and self.constrained:
                        answer = str(event.call.arguments.get("answer", ""))
                        yield ContentDelta(text=answer)
                    else:
                        calls.append(event.call)
                        yield event
                elif isinstance(event, Done):
                    done = event
                elif isinstance(event, Stats) or not isinstance(event, Done):
                    yield event
            if done is None or done.stop_reason in ("error", "cancelled"):
                reason: AgentStopReason = (
                    "cancelled"
                    if cancel.cancelled or (done and done.stop_reason == "cancelled")
                    else "error"
                )
                yield AgentDone(
                    stop_reason=reason,
                    steps=steps,
                    error=None
                    if reason == "cancelled"
                    else (done.error if done else "no done event"),
                )
                return
            if answer is not None:
                yield AgentDone(stop_reason="answer", steps=steps)
                return
            if not calls:
                content = "".join(text)
                stray = None if force_answer else _call_in_text(content)
                if stray is None:
                    yield AgentDone(stop_reason="answer", steps=steps)
                    return
                calls = [stray]
                yield ToolCallEvent(call=stray)
            fresh = [c for c in calls if _call_key(c) not in seen_calls]
            if not fresh:
                if all(c.name == TOOL_SEARCH for c in calls) and catalog.active:
                    catalog.close_search()  # searched again: leave it only the tools it found
                else:
                    force_answer = True  # the same call again: it is looping; make it answer
                continue
            history.append(Message(role="assistant", content=None, tool_calls=tuple(fresh)))
            for call in fresh:
                result = self._run_call(call, catalog, cancel)
                yield result
                history.append(
                    Message(
                        role="tool", content=result.content, tool_call_id=call.id, name=call.name
                    )
                )
                seen_calls.add(_call_key(call))

    def _request(
        self, history: list[Message], visible: list[AgentTool], force_answer: bool
    ) -> ChatRequest:
        if force_answer:
            return ChatRequest(
                model=self.model, messages=_synthesis_messages(history), params=self.params
            )
        messages = list(history)
        if any(m.role == "tool" for m in history):
            nudge = CONSTRAINED_NUDGE if self.constrained and visible else ANSWER_NUDGE
            question = next((m.content for m in reversed(history) if m.role == "user"), "")
            messages.append(Message(role="user", content=nudge.format(question=question or "")))
        specs = tuple(t.spec() for t in visible)
        if not specs:
            return ChatRequest(model=self.model, messages=tuple(messages), params=self.params)
        if self.constrained:
            return ChatRequest(
                model=self.model,
                messages=tuple(messages),
                params=self.params,
                tools=(*specs, _final_answer_tool()),
                tool_choice="required",
            )
        return ChatRequest(
            model=self.model, messages=tuple(messages), params=self.params, tools=specs
        )

    def _run_call(
        self, call: ToolCall, catalog: ToolCatalog, cancel: CancelToken
    ) -> ToolResultEvent:
        started = time.monotonic()

        def failed(kind: str, message: str) -> ToolResultEvent:
            return ToolResultEvent(
                call=call,
                content=f"Error: {message}",
                error=kind,  # type: ignore[arg-type]
                elapsed_s=time.monotonic() - started,
            )

        found = catalog.get(call.name)
        if found is None:
            if catalog.hidden(call.name):
                found = catalog.tools[call.name]  # named without searching first: allow it
                catalog.active.append(call.name)
            else:
                names = ", ".join(t.name for t in catalog.visible()) or "none"
                return failed(
                    "unknown_tool", f"there is no function {call.name!r}; use one of: {names}"
                )
        if found.dangerous:
            allowed = False
            if self.approve is not None:
                try:
                    allowed = bool(self.approve(call))
                except Exception as exc:  # a failing hook must not approve anything
                    return failed("denied", f"approval failed ({type(exc).__name__}: {exc})")
            if not allowed:
                return failed("denied", f"the user did not approve calling {call.name}")
        try:
            content = found.invoke(
                dict(call.arguments), found.timeout_s or self.tool_timeout_s, cancel
            )
        except ToolFailure as exc:
            return failed(exc.kind, exc.message)
        return ToolResultEvent(call=call, content=content, elapsed_s=time.monotonic() - started)


def _call_key(call: ToolCall) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True, default=str)


def _synthesis_messages(history: list[Message]) -> tuple[Message, ...]:
    """A fresh, tool-free prompt: the question and the results, to be answered in prose.

    Used when the model keeps calling tools it already called: with no tool
    schema and no JSON in sight, even a 0.5B model writes a sentence.
    """
    question = next((m.content for m in history if m.role == "user" and m.content), "")
    calls = {c.id: c for m in history for c in m.tool_calls}
    facts = []
    for m in history:
        if m.role == "tool":
            call = calls.get(m.tool_call_id or "")
            arguments = json.dumps(call.arguments, ensure_ascii=False) if call else ""
            facts.append(f"- {m.name}({arguments}) returned: {m.content}")
    return (
        Message(role="system", content="You are a helpful assistant. Answer in plain sentences."),
        Message(
            role="user",
            content=f"Question: {question}\nFacts:\n"
            + "\n".join(facts)
            + "\nAnswer the question in one or two sentences, using the facts.",
        ),
    )


def _call_in_text(text: str) -> ToolCall | None:
    """A call the model wrote as text that the engine did not take (e.g. an unknown name)."""
    body = text.strip()
    for pattern in (_FENCE, _TAG):
        match = pattern.match(body)
        if match:
            body = match.group(1).strip()
    if not body.startswith("{"):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if not isinstance(arguments, dict):
        arguments = {"value": arguments}
    return ToolCall(id=new_call_id(), name=data["name"][:64], arguments=arguments)
