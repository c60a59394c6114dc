"""Known peers: node ids with the addresses they were last reached at (``terminus peers``)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from terminus.p2p.node import NodeRef

PEERS_FILE = "p2p/peers.json"
# Read-modify-write of the file, from any thread of this process (a pool refreshes in threads).
_WRITING = threading.Lock()


class PeerBook:
    def __init__(self, home: Path) -> None:
        self.path = home / PEERS_FILE

    def all(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def resolve(self, ref: NodeRef) -> NodeRef:
        """Fill in the addresses of a bare node id from what was seen before."""
        if ref.addresses:
            return ref
        known = self.all().get(ref.node_id, {})
        return NodeRef(ref.node_id, tuple(known.get("addresses", ())))

    def add(self, ref: NodeRef, *, name: str | None = None) -> None:
        with _WRITING:
            self._add(ref, name)

    def _add(self, ref: NodeRef, name: str | None) -> None:
        data = self.all()
        entry = data.get(ref.node_id, {})
        entry["addresses"] = list(ref.addresses) or entry.get("addresses", [])
        if name:
            entry["name"] = name
        entry.setdefault("added", time.time())
        data[ref.node_id] = entry
        self._write(data)

    def seen(self, ref: NodeRef) -> None:
        with _WRITING:
            self._seen(ref)

    def _seen(self, ref: NodeRef) -> None:
        data = self.all()
        entry = data.get(ref.node_id, {})
        if (
            entry.get("addresses") == list(ref.addresses)
            and time.time() - entry.get("last_seen", 0) < 60
        ):
            return
        entry["addresses"] = list(ref.addresses)
        entry["last_seen"] = time.time()
        data[ref.node_id] = entry
        self._write(data)

    def remove(self, node_id: str) -> bool:
        with _WRITING:
            data = self.all()
            existed = data.pop(node_id, None) is not None
            self._write(data)
        return existed

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one temporary name per process and thread: two writers never share one
        tmp = self.path.with_name(f".peers.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)
