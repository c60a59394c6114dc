"""What this machine has, and which engines can run here."""

from __future__ import annotations

import os
import platform
import sys
from typing import TYPE_CHECKING, Any

from terminus.engines.registry import TEST_ONLY_ENGINES, probe_all
from terminus.runtime.memory import system_memory

if TYPE_CHECKING:
    from terminus.client.sync import Terminus


def doctor_report(client: Terminus) -> dict[str, Any]:
    import shutil

    mem = system_memory()
    disk = shutil.disk_usage(client.home if client.home.exists() else client.home.parent)
    engines = {
        name: {"available": a.ok, "detail": a.detail, "version": a.version}
        for name, a in probe_all().items()
        if name not in TEST_ONLY_ENGINES
    }
    cache_bytes = (
        sum(p.stat().st_size for p in client.cache.blobs.glob("*") if p.is_file())
        if client.cache.blobs.exists()
        else 0
    )
    try:
        default = client.catalog.get(client.default_model)
        default_status = {"id": default.id, "cached": client.cache.is_cached(default)}
    except Exception as exc:  # a broken card must not stop the report
        default_status = {"id": client.default_model, "error": str(exc)}
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_total": mem.total,
        "memory_available": mem.available,
        "memory_budget": client.manager.budget_bytes,
        "memory_policy": client.manager.memory_policy,
        "home": str(client.home),
        "cache_bytes": cache_bytes,
        "disk_free": disk.free,
        "offline": not client.manager.allow_download,
        "default_model": default_status,
        "engines": engines,
        "vision": vision_report(client),
    }


def vision_report(client: Terminus) -> dict[str, Any]:
    """Whether images in chat work here: Pillow to read them, and which models see."""
    import importlib.metadata

    from terminus.types.common import Capability

    try:
        pillow: str | None = importlib.metadata.version("pillow")
    except importlib.metadata.PackageNotFoundError:
        pillow = None
    models = [c.id for c in client.catalog.all() if Capability.VISION in c.capabilities]
    return {"available": pillow is not None, "pillow": pillow, "models": models}
