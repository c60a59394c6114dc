"""The node's one Ed25519 identity, persisted in the Terminus home with mode 0600."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

KEY_FILE = "identity/node.key"


@dataclass(frozen=True)
class Identity:
    """An Ed25519 key pair; ``node_id`` (hex public key) is how peers name this node."""

    seed: bytes  # the 32-byte private key

    # Derived once: each request token is signed with it (re-deriving cost ~1 ms a request).
    @cached_property
    def _private(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_bytes(self) -> bytes:
        from cryptography.hazmat.primitives import serialization as s

        return bytes(self._private.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw))

    @cached_property
    def node_id(self) -> str:
        return self.public_bytes.hex()

    def sign(self, message: bytes) -> bytes:
        return bytes(self._private.sign(message))

    @classmethod
    def generate(cls) -> Identity:
        return cls(os.urandom(32))


def verify_signature(node_id: str, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``node_id``'s Ed25519 signature of ``message``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(node_id)).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_identity(home: Path) -> Identity:
    """The node key under ``home``; created on first use, never readable by others."""
    path = home / KEY_FILE
    if path.exists():
        seed = path.read_bytes()
        if len(seed) == 32:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return Identity(seed)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = Identity.generate()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, identity.seed)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return identity


def is_node_id(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
