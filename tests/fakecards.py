"""Cards for the fake engine whose one file is a real local file, so it goes through the cache.

Shared by the unit, contract, RAG and server tests (importable from any test module:
pytest puts this folder on ``sys.path`` for the root conftest).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from terminus.models.card import LocalSource, ModelCard, ModelFile


def fake_card(
    directory: Path,
    card_id: str = "fake-chat",
    *,
    capability: str = "chat",
    payload: bytes | None = None,
    aliases: tuple[str, ...] = (),
    user_added: bool = False,
    **defaults: Any,
) -> ModelCard:
    """``defaults`` script the fake engine (replies, token_delay_s, dimensions, memory_bytes…)."""
    payload = payload if payload is not None else f"weights of {card_id}\n".encode() * 16
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{card_id}.bin"
    path.write_bytes(payload)
    return ModelCard(
        id=card_id,
        aliases=aliases,
        capability=capability,  # type: ignore[arg-type]
        engine="fake",
        format="fake",
        files=(
            ModelFile(
                name="weights.bin", sha256=hashlib.sha256(payload).hexdigest(), size=len(payload)
            ),
        ),
        sources=(LocalSource(paths={"weights.bin": str(path)}),),
        defaults=defaults,
        user_added=user_added,
    )
