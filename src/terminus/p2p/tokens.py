"""Short-lived signed request tokens: Ed25519 over (issuer, audience, op, body, expiry, nonce).

The connection already authenticates both keys; the token binds each request to
its issuer, its provider and its exact body, and its nonce makes it single-use.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from terminus.errors import PeerRefusedError
from terminus.p2p.identity import Identity, verify_signature

DEFAULT_TTL_S = 30.0
MAX_TTL_S = 300.0
CLOCK_SKEW_S = 5.0


@dataclass(frozen=True)
class Token:
    issuer: str
    audience: str
    op: str
    body_sha256: str
    expires: float
    nonce: str
    signature: str

    def signed_bytes(self) -> bytes:
        return _canonical(
            {
                "iss": self.issuer,
                "aud": self.audience,
                "op": self.op,
                "body": self.body_sha256,
                "exp": self.expires,
                "nonce": self.nonce,
            }
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "op": self.op,
            "body": self.body_sha256,
            "exp": self.expires,
            "nonce": self.nonce,
            "sig": self.signature,
        }

    @classmethod
    def from_wire(cls, data: Any) -> Token:
        try:
            return cls(
                issuer=str(data["iss"]),
                audience=str(data["aud"]),
                op=str(data["op"]),
                body_sha256=str(data["body"]),
                expires=float(data["exp"]),
                nonce=str(data["nonce"]),
                signature=str(data["sig"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PeerRefusedError("malformed request token") from exc


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def issue_token(
    identity: Identity, audience: str, op: str, body: bytes, ttl: float = DEFAULT_TTL_S
) -> Token:
    unsigned = Token(
        issuer=identity.node_id,
        audience=audience,
        op=op,
        body_sha256=body_digest(body),
        expires=round(time.time() + ttl, 3),
        nonce=os.urandom(16).hex(),
        signature="",
    )
    signature = identity.sign(unsigned.signed_bytes()).hex()
    return Token(**{**unsigned.__dict__, "signature": signature})


class NonceStore(Protocol):
    def claim(self, nonce: str, expires: float) -> bool:
        """True the first time ``nonce`` is seen, False for a replay."""
        ...


class NonceCache:
    """Nonces seen and not yet expired, in memory; a second use of one is a replay.

    Forgotten when the process ends: a provider that restarts uses
    ``terminus.p2p.nonces.PersistentNonceStore`` instead.
    """

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, nonce: str, expires: float) -> bool:
        now = time.time()
        with self._lock:
            if len(self._seen) > 1024:
                self._seen = {n: e for n, e in self._seen.items() if e + CLOCK_SKEW_S > now}
            if nonce in self._seen:
                return False
            self._seen[nonce] = expires
            return True


def check_token(
    token: Token,
    *,
    peer: str,
    provider: str,
    op: str,
    body: bytes,
    nonces: NonceStore,
) -> None:
    """Raise ``PeerRefusedError`` unless ``token`` is ``peer``'s fresh, unused token for this body."""
    now = time.time()
    if token.issuer != peer:
        raise PeerRefusedError("the token was issued by another key than the connection's")
    if token.audience != provider:
        raise PeerRefusedError("the token is for another provider")
    if token.op != op or token.body_sha256 != body_digest(body):
        raise PeerRefusedError("the token does not match this request")
    if not verify_signature(peer, token.signed_bytes(), bytes.fromhex(token.signature or "00")):
        raise PeerRefusedError("the token's signature is invalid")
    if token.expires < now - CLOCK_SKEW_S:
        raise PeerRefusedError("the token has expired", hint="check both clocks")
    if token.expires > now + MAX_TTL_S + CLOCK_SKEW_S:
        raise PeerRefusedError("the token lives longer than providers accept")
    if not nonces.claim(token.nonce, token.expires):
        raise PeerRefusedError("the token was already used (replay refused)")


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
