from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LoadedModelInfo(BaseModel):
    """A model resident in a runtime (local or on a peer)."""

    model_config = ConfigDict(frozen=True)
    id: str
    engine: str
    memory_bytes: int
    context_length: int | None = None
    parallel: int | None = None
    active_requests: int = 0
    #: Idle seconds before it unloads (``None``: kept until unloaded or evicted).
    keep_alive_s: float | None = None
    #: Seconds left before it unloads if it stays idle (``None``: busy or kept).
    expires_in_s: float | None = None
