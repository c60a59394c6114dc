"""Deferred tool loading: the model first sees one ``tool_search`` tool, not fifty schemas.

A small model's context (and attention) is spent on every schema it is shown.
With deferred loading, the agent shows ``tool_search``; a search returns the
few best-matching tools, which become callable from the next step on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from terminus.agents.tools import AgentTool, ToolFailure
from terminus.types import CancelToken

TOOL_SEARCH = "tool_search"
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    ["a", "an", "the", "of", "to", "for", "in", "on", "and", "or", "is", "are", "what", "how"]
)


def _words(text: str) -> set[str]:
    words = set(_WORD.findall(text.lower().replace("_", " ")))
    return {w for w in words if w not in _STOP}


class ToolCatalog:
    """The tools of one run, and which of them the model can see right now."""

    def __init__(self, tools: Sequence[AgentTool], *, deferred: bool, top_k: int = 3) -> None:
        self.tools = {t.name: t for t in tools}
        self.deferred = deferred and bool(tools)
        self.top_k = top_k
        self.active: list[str] = [] if self.deferred else list(self.tools)
        self.search_open = self.deferred
        #: The user's question: searched too when the model's own query matches nothing.
        self.context = ""

    def visible(self) -> list[AgentTool]:
        shown = [self.tools[name] for name in self.active]
        if self.search_open and len(self.active) < len(self.tools):
            shown.append(self._search_tool())
        return shown

    def close_search(self) -> None:
        """Stop offering ``tool_search`` (a model that repeats a search is stuck on it)."""
        self.search_open = False

    def get(self, name: str) -> AgentTool | None:
        if name == TOOL_SEARCH and self.deferred:
            return self._search_tool()
        return self.tools.get(name) if name in self.active else None

    def hidden(self, name: str) -> bool:
        return name in self.tools and name not in self.active

    def search(self, query: str) -> list[AgentTool]:
        wanted = _words(query)
        scored = []
        for index, item in enumerate(self.tools.values()):
            name_words = _words(item.name)
            score = 2 * len(wanted & name_words) + len(wanted & _words(item.description))
            if score:
                scored.append((-score, index, item))
        found = [item for _, _, item in sorted(scored, key=lambda s: (s[0], s[1]))[: self.top_k]]
        for item in found:
            if item.name not in self.active:
                self.active.append(item.name)
        return found

    def _search_tool(self) -> AgentTool:
        def invoke(arguments: dict[str, Any], timeout: float, cancel: CancelToken) -> str:
            query = arguments.get("query")
            if not isinstance(query, str) or not query.strip():
                raise ToolFailure("bad_arguments", "invalid arguments: query: a non-empty string")
            found = self.search(query) or (self.search(self.context) if self.context else [])
            if not found:  # list the names; a tool named without a search still runs
                names = [t.name for t in self.tools.values()]
                return f"No function matches {query!r}. Functions: {', '.join(names)}."
            listing = [{"name": t.name, "description": t.description} for t in found]
            return "You can now call: " + json.dumps(listing, ensure_ascii=False)

        return AgentTool(
            name=TOOL_SEARCH,
            description=(
                "Find the functions you need. Describe the task in a few words; "
                "the matching functions become available to call."
            ),
            parameters={
                "type": "object",
                "properties": {"query": {"type": "string", "description": "what you need to do"}},
                "required": ["query"],
            },
            invoke=invoke,
            source="terminus",
        )
