"""MCP resources and prompts for the tool loop: a ``read_resource`` tool, prompts as messages.

A server's resources are offered to the model as one tool whose schema allows only the
listed URIs (so a constrained small model cannot invent one) and whose description
names them; reading one returns its text. A prompt becomes Terminus messages, ready to
start an agent run with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from terminus.types import Message

READ_RESOURCE = "read_resource"
#: At most this many URIs are listed in the tool (the rest can still be read by URI).
LISTED_RESOURCES = 50


def resource_tool_description(resources: Sequence[Any]) -> str:
    lines = [
        f"- {r.uri}" + (f": {r.description or r.name}" if (r.description or r.name) else "")
        for r in resources[:LISTED_RESOURCES]
    ]
    more = len(resources) - LISTED_RESOURCES
    if more > 0:
        lines.append(f"(and {more} more)")
    return "Read a document (resource) by its URI. Available:\n" + "\n".join(lines)


def resource_tool_schema(resources: Sequence[Any]) -> dict[str, Any]:
    uris = [str(r.uri) for r in resources]
    uri: dict[str, Any] = {"type": "string", "description": "the resource's URI"}
    if len(uris) <= LISTED_RESOURCES:
        uri["enum"] = uris
    return {"type": "object", "properties": {"uri": uri}, "required": ["uri"]}


def resource_text(result: Any) -> str:
    """The text of a ``ReadResourceResult``: text parts joined, binary ones named."""
    parts = []
    for content in result.contents:
        text = getattr(content, "text", None)
        if text is not None:
            parts.append(text)
        else:
            parts.append(f"[binary {getattr(content, 'mime_type', None) or 'content'}]")
    return "\n".join(parts)


def prompt_messages(result: Any) -> list[Message]:
    """A ``GetPromptResult`` as Terminus messages (embedded resources inlined as text)."""
    messages = []
    for message in result.messages:
        content = message.content
        kind = getattr(content, "type", "")
        if kind == "text":
            text = content.text
        elif kind == "resource":
            text = getattr(content.resource, "text", None) or f"[{content.resource.uri}]"
        else:
            text = f"[{kind} content]"
        messages.append(Message(role=message.role, content=text))
    return messages
