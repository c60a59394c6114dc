"""Shareable model references: what to fetch (files pinned by sha256) and from whom.

A reference looks like::

    terminus:model/smollm2-135m-instruct?ih=<v2 info-hash>&f=<name>*<sha256>*<size>
        &peer=192.168.1.7:6881&ws=https://mirror.example/terminus/&cap=chat&engine=llamacpp

``ih`` is the BitTorrent v2 info-hash of the torrent whose files are ``blobs/<sha256>``
(so any Terminus home served over HTTP is a web seed for it); ``peer`` entries are
direct addresses (no tracker or DHT needed on a LAN); ``ws`` entries are HTTP mirrors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, quote, urlencode

from terminus.errors import InvalidParameterError
from terminus.models.card import MODEL_ID_RE, ModelFile

PREFIX = "terminus:model/"


@dataclass(frozen=True)
class ModelRef:
    model_id: str
    info_hash: str  # hex sha256 v2 info-hash
    files: tuple[ModelFile, ...]
    peers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()
    capability: str | None = None
    engine: str | None = None

    def with_peers(self, peers: tuple[str, ...]) -> ModelRef:
        return replace(self, peers=tuple(dict.fromkeys((*self.peers, *peers))))

    def format(self) -> str:
        query: list[tuple[str, str]] = [("ih", self.info_hash)]
        query += [("f", f"{f.name}*{f.sha256}*{f.size or 0}") for f in self.files]
        query += [("peer", p) for p in self.peers]
        query += [("ws", w) for w in self.web_seeds]
        if self.capability:
            query.append(("cap", self.capability))
        if self.engine:
            query.append(("engine", self.engine))
        return PREFIX + quote(self.model_id) + "?" + urlencode(query, safe=":/*[]")

    def magnet(self) -> str:
        """The same content as a plain BitTorrent v2 magnet link, for other clients."""
        query = [("xt", f"urn:btmh:1220{self.info_hash}"), ("dn", "blobs")]
        query += [("x.pe", p) for p in self.peers]
        query += [("ws", w) for w in self.web_seeds]
        return "magnet:?" + urlencode(query, safe=":/[]")


def parse_reference(text: str) -> ModelRef:
    """Parse a ``terminus:model/…`` reference; raises ``InvalidParameterError``."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise InvalidParameterError(
            f"not a Terminus model reference: {text[:60]!r}",
            hint="`terminus share MODEL` prints one (it starts with terminus:model/)",
        )
    model_id, _, query_text = text[len(PREFIX) :].partition("?")
    query = parse_qs(query_text, keep_blank_values=False)
    info_hash = (query.get("ih") or [""])[0].lower()
    if not MODEL_ID_RE.match(model_id):
        raise InvalidParameterError(f"reference names an invalid model id {model_id!r}")
    if len(info_hash) != 64 or any(c not in "0123456789abcdef" for c in info_hash):
        raise InvalidParameterError("reference has no valid v2 info-hash (ih=)")
    files = []
    for item in query.get("f", []):
        parts = item.split("*")
        if len(parts) != 3 or not parts[2].isdigit():
            raise InvalidParameterError(f"reference has a malformed file entry {item!r}")
        try:
            files.append(ModelFile(name=parts[0], sha256=parts[1], size=int(parts[2])))
        except ValueError as exc:
            raise InvalidParameterError(f"reference has an invalid file entry {item!r}") from exc
    if not files:
        raise InvalidParameterError("reference lists no files (f=)")
    for peer in query.get("peer", []):
        parse_address(peer)
    return ModelRef(
        model_id=model_id,
        info_hash=info_hash,
        files=tuple(files),
        peers=tuple(query.get("peer", [])),
        web_seeds=tuple(query.get("ws", [])),
        capability=_first(query, "cap"),
        engine=_first(query, "engine"),
    )


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ``InvalidParameterError``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidParameterError(f"not a host:port address: {text!r}")
    return host, int(port)
