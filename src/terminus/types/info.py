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
