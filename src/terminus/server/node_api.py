"""Terminus extension: this node's peer-to-peer identity and the peers it knows."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from terminus.server.state import ServerState, server_state


def _node(state: ServerState) -> dict[str, Any]:
    home = state.client.home
    try:
        from terminus.p2p.identity import load_or_create_identity
        from terminus.p2p.peers import PeerBook
    except ImportError:  # pragma: no cover - the p2p modules import lazily
        return {"available": False}
    try:
        node_id = load_or_create_identity(home).node_id
    except ImportError:
        return {"available": False, "hint": "pip install 'terminus-sdk[p2p]'"}
    peers = [{"node_id": key, **value} for key, value in PeerBook(home).all().items()]
    delegate = getattr(state.client.transport, "describe", None)
    return {
        "available": True,
        "node_id": node_id,
        "peers": peers,
        "transport": type(state.client.transport).__name__,
        "delegate": delegate() if callable(delegate) else None,
    }


def add_node_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/node")
    async def node(request: Request) -> dict[str, Any]:
        return await asyncio.to_thread(_node, server_state(request))
