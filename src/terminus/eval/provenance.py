"""What a result depends on beyond the model's answers: software versions, the model's
file and where it came from, the prompts as sent.

Reports carry this so two runs can be told apart (or shown to be the same) without
rerunning them.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from terminus._version import __version__

#: Python distributions whose version changes what an engine computes.
_ENGINE_DISTRIBUTIONS = ("xllamacpp", "gguf")


def software() -> dict[str, Any]:
    """Terminus' version, the engine builds installed, and the interpreter."""
    builds: dict[str, str | None] = {}
    for name in _ENGINE_DISTRIBUTIONS:
        try:
            builds[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            builds[name] = None
    return {"terminus": __version__, "engine_builds": builds, "python": platform.python_version()}


def lineage_of(card: Any) -> dict[str, Any] | None:
    """Where a quantized model came from (source file, its sha256 and type), if recorded."""
    lineage = getattr(card, "lineage", None)
    if lineage:
        return dict(lineage)
    base = getattr(card, "base_model", None)
    return {"base_model": base} if base else None
