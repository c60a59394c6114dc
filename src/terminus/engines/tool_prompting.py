"""Tool calling for models whose chat template has no tool support.

Small local models rarely emit a template's native tool-call syntax. In
"prompted" mode the tools are described in the system message, the history's
tool calls and results are rewritten as plain turns, and the model's reply is
either constrained to a call by a JSON schema (``tool_choice`` required or
named) or parsed for the JSON call dialect these models write unprompted.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from terminus.types import Message, Tool, ToolCall

_FENCE_RE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_TAG_RE = re.compile(r"^<tool_call>\s*(.*?)\s*(?:</tool_call>)?$", re.DOTALL)
_TAGS_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def tool_system_prompt(tools: tuple[Tool, ...], required: bool) -> str:
    specs = json.dumps(
        [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools],
        indent=1,
    )
    how = (
        "Reply with only a JSON object that calls one of them"
        if required
        else "To call one, reply with only a JSON object"
    )
    return (
        f"You can call these functions:\n{specs}\n{how}: "
        '{"name": <function name>, "arguments": {<argument name>: <value>}}.'
        + ("" if required else " Otherwise, answer normally.")
    )


def tool_call_schema(tools: tuple[Tool, ...], only: str | None = None) -> dict[str, Any]:
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters},
            "required": ["name", "arguments"],
        }
        for t in tools
        if only is None or t.name == only
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


# After a tool result, small models copy the JSON of their own call turn instead of
# answering (Qwen2.5-Coder-0.5B and SmolLM2 both did). So the history shows the call as a
# sentence, the results as one user turn, and a last result ends with this nudge.
ANSWER_NUDGE = "Now answer my question in a plain sentence, using this result."


def rewrite_history(messages: tuple[Message, ...]) -> list[Message]:
    """Tool calls and results as plain assistant/user turns any template can render."""
    out: list[Message] = []
    results_turn = False  # whether out[-1] is a user turn made of tool results
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            calls = " and ".join(_call_phrase(c) for c in m.tool_calls)
            said = f"{m.content.strip()} " if m.content and m.content.strip() else ""
            out.append(
                Message(role="assistant", content=f"{said}Let me look this up with {calls}.")
            )
            results_turn = False
        elif m.role == "tool":
            line = f"The result of {m.name or 'the function'} is: {m.content or ''}"
            if results_turn:
                out[-1] = Message(role="user", content=f"{out[-1].content}\n{line}")
            else:
                out.append(Message(role="user", content=line))
            results_turn = True
        else:
            out.append(m)
            results_turn = False
    if results_turn:
        out[-1] = Message(role="user", content=f"{out[-1].content}\n\n{ANSWER_NUDGE}")
    return out


def _call_phrase(call: ToolCall) -> str:
    arguments = ", ".join(
        f"{name}: {value if isinstance(value, str) else json.dumps(value)}"
        for name, value in call.arguments.items()
    )
    return f"{call.name} ({arguments})" if arguments else call.name


def looks_like_call(text: str) -> bool:
    """Whether a reply's start could be a call, so streaming should hold it back."""
    head = text.lstrip()
    return head.startswith(("{", "[", "```", "<tool_call>"))


def parse_calls(text: str, tools: tuple[Tool, ...]) -> list[ToolCall]:
    """Calls in the JSON dialect small models write; [] when the text is an ordinary answer."""
    body = text.strip()
    match = _FENCE_RE.match(body)
    if match:
        body = match.group(1).strip()
    if body.startswith("<tool_call>") and body.count("<tool_call>") > 1:
        blocks = _TAGS_RE.findall(body)
        if _TAGS_RE.sub("", body).strip():
            return []  # prose between the blocks: an answer, not calls
    else:
        match = _TAG_RE.match(body)
        blocks = [match.group(1).strip() if match else body]
    items: list[Any] = []
    for block in blocks:
        try:
            data = json.loads(block)
        except ValueError:
            return []
        items.extend(data if isinstance(data, list) else [data])
    names = {t.name for t in tools}
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            return []
        arguments = item.get("arguments", item.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                return []
        if not isinstance(arguments, dict):
            return []
        calls.append(ToolCall(id=new_call_id(), name=item["name"], arguments=arguments))
    return calls


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]
