"""The consumer's side of peer tools: a trusted peer's offered tools, used like local ones.

``PeerTools("terminus:node/…?addr=…")`` lists what the provider offers (``terminus
provide --tool … --mcp …``) and turns each into an :class:`AgentTool` whose calls go
over the authenticated peer channel, each with a fresh single-use token. What goes
wrong on the provider (the tool raises, times out, the peer is gone or refuses)
becomes a :class:`ToolFailure`, so the agent loop reports it to the model as it does
for local tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from terminus.agents.tools import DEFAULT_TIMEOUT_S, AgentTool, ToolFailure
from terminus.errors import TerminusError
from terminus.p2p.consumer import PeerClient
from terminus.p2p.identity import Identity, load_or_create_identity
from terminus.p2p.node import NodeRef, parse_node_ref
from terminus.p2p.peers import PeerBook
from terminus.p2p.tool_ops import ToolCallOutcome, ToolCallRequest, ToolListing, ToolListRequest
from terminus.paths import terminus_home
from terminus.types import CancelToken


class PeerTools:
    """The tools a provider peer offers to this node's key.

    ``only`` keeps the named tools; ``prefix`` renames them ``prefix.name`` (two peers
    offering the same names). Tools the provider marks dangerous need the agent's
    approval here too. Use as a context manager, or ``start()`` / ``close()``.
    """

    def __init__(
        self,
        peer: str | NodeRef,
        *,
        home: str | Path | None = None,
        identity: Identity | None = None,
        only: Sequence[str] | None = None,
        prefix: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float = 5.0,
    ) -> None:
        root = terminus_home(home)
        book = PeerBook(root)
        self.peer = peer if isinstance(peer, NodeRef) else book.resolve(parse_node_ref(peer))
        self.only = set(only) if only is not None else None
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._client = PeerClient(
            self.peer,
            identity or load_or_create_identity(root),
            connect_timeout=connect_timeout,
        )
        self._listing: ToolListing | None = None

    def __repr__(self) -> str:
        return f"PeerTools({self.peer.node_id[:12]}…)"

    @property
    def label(self) -> str:
        return f"peer:{self.peer.node_id[:12]}"

    def start(self) -> PeerTools:
        """Ask the provider for its tools (once); refusals raise ``PeerRefusedError``."""
        if self._listing is None:
            self._listing = self._client.call("list_tools", ToolListRequest())
        return self

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PeerTools:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tools(self) -> list[AgentTool]:
        self.start()
        assert self._listing is not None
        return [
            AgentTool(
                name=f"{self.prefix}.{spec.name}" if self.prefix else spec.name,
                description=spec.description,
                parameters=dict(spec.parameters or {"type": "object", "properties": {}}),
                invoke=self._invoker(spec.name),
                dangerous=spec.dangerous,
                timeout_s=self.timeout_s,
                source=self.label,
            )
            for spec in self._listing.tools
            if self.only is None or spec.name in self.only
        ]

    def call(self, name: str, arguments: dict[str, Any], timeout: float | None = None) -> str:
        """Call one offered tool and return its text; failures raise :class:`ToolFailure`."""
        request = ToolCallRequest(
            name=name, arguments=arguments, timeout_s=min(timeout or self.timeout_s, 600.0)
        )
        try:
            outcome: ToolCallOutcome = self._client.call("call_tool", request)
        except TerminusError as exc:
            raise ToolFailure("server_error", exc.one_line()) from None
        if outcome.error is not None:
            message = outcome.content.removeprefix("Error: ")
            raise ToolFailure(outcome.error, f"on peer {self.peer.node_id[:12]}…: {message}")
        return outcome.content

    def _invoker(self, remote_name: str) -> Any:
        def invoke(arguments: dict[str, Any], timeout: float, cancel: CancelToken) -> str:
            if cancel.cancelled:
                raise ToolFailure("raised", "cancelled")
            return self.call(remote_name, arguments, timeout)

        return invoke


def peer_tools(peer: str | NodeRef, **options: Any) -> PeerTools:
    """The tools ``peer`` offers, for ``Terminus.agent(..., tools=[peer_tools(ref)])``."""
    return PeerTools(peer, **options)
