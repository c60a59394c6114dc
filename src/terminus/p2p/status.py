"""What a provider tells an allowed consumer about itself: the models it shares and its load.

A pool of providers routes each request with this (least busy first, only to a provider
that shares the model), and ``terminus peers status`` prints it.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict


class StatusRequest(BaseModel):
    """Asks a provider for its :class:`ProviderStatus` (signed like any request)."""

    model_config = ConfigDict(frozen=True)


class ProviderStatus(BaseModel):
    model_config = ConfigDict(frozen=True)
    node_id: str
    models: list[str]
    #: Requests running now, from every consumer, and how many may run at once.
    active: int
    max_concurrent: int
    served: int
    #: The provider machine's 1-minute load average and core count (load per core ≈ busy).
    load_average: float
    cores: int


def machine_load() -> tuple[float, int]:
    try:
        load = os.getloadavg()[0]
    except OSError:  # not on every platform
        load = 0.0
    return round(load, 2), os.cpu_count() or 1
