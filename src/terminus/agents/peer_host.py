"""The provider's side of peer tools: the tools its operator named, and a log of every call.

``OfferedTools`` is the ``ToolHost`` that ``terminus provide --tool/--mcp`` hands to the
provider. Only the tools given here exist for peers; a call to any other name is
refused. Every call (peer, tool, arguments, outcome, time) goes to the
``terminus.agents.peer_host`` logger and, when ``log_path`` is set, as one JSON line to
that file, written before the result leaves.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from terminus.agents.loop import expand_tools
from terminus.agents.tools import DEFAULT_TIMEOUT_S, AgentTool, ToolFailure
from terminus.p2p.tool_ops import (
    PeerToolSpec,
    ToolCallOutcome,
    ToolCallRequest,
    ToolListing,
    ToolListRequest,
)
from terminus.types import CancelToken

log = logging.getLogger(__name__)

#: Logged arguments are cut to this many characters (a log, not an archive).
LOGGED_ARGUMENTS = 500


class OfferedTools:
    """Tools (functions, ``AgentTool``s, MCP servers) offered to allowed peers."""

    def __init__(
        self,
        tools: Sequence[Any],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        log_path: str | Path | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self._tools: dict[str, AgentTool] = {t.name: t for t in expand_tools(tools)}
        self._log_path = Path(log_path) if log_path is not None else None
        self._lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def list_tools(self, request: ToolListRequest, peer: str) -> ToolListing:
        log.info("peer %s listed the tools", peer[:16])
        return ToolListing(
            tools=tuple(
                PeerToolSpec(
                    name=t.name,
                    description=t.description,
                    parameters=t.parameters,
                    dangerous=t.dangerous,
                )
                for t in self._tools.values()
            )
        )

    def call_tool(self, request: ToolCallRequest, peer: str) -> ToolCallOutcome:
        started = time.monotonic()
        found = self._tools.get(request.name)
        if found is None:
            outcome = ToolCallOutcome(
                content=f"Error: this peer offers no tool {request.name!r}; "
                f"it offers: {', '.join(self.names) or 'none'}",
                error="unknown_tool",
            )
        else:
            limit = min(
                found.timeout_s or self.timeout_s, request.timeout_s or self.timeout_s, 600.0
            )
            try:
                content = found.invoke(dict(request.arguments), limit, CancelToken())
                outcome = ToolCallOutcome(content=content)
            except ToolFailure as exc:
                outcome = ToolCallOutcome(content=f"Error: {exc.message}", error=exc.kind)  # type: ignore[arg-type]
            except Exception as exc:  # a broken tool must not take the provider down
                outcome = ToolCallOutcome(
                    content=f"Error: {type(exc).__name__}: {exc}", error="raised"
                )
        outcome = outcome.model_copy(update={"elapsed_s": round(time.monotonic() - started, 3)})
        self._record(peer, request, outcome)
        return outcome

    def _record(self, peer: str, request: ToolCallRequest, outcome: ToolCallOutcome) -> None:
        arguments = json.dumps(request.arguments, ensure_ascii=False, default=str)
        entry = {
            "time": round(time.time(), 3),
            "peer": peer,
            "tool": request.name,
            "arguments": arguments[:LOGGED_ARGUMENTS],
            "error": outcome.error,
            "elapsed_s": outcome.elapsed_s,
        }
        log.warning(
            "peer %s called %s(%s): %s in %.2f s",
            peer[:16],
            request.name,
            entry["arguments"],
            outcome.error or "ok",
            outcome.elapsed_s,
        )
        with self._lock:
            self.calls.append(entry)
            if self._log_path is not None:
                self._log_path.parent.mkdir(parents=True, exist_ok=True)
                with self._log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
