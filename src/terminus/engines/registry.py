"""Engine discovery: built-ins and third-party engines through entry points, imported lazily."""

from __future__ import annotations

import importlib
import importlib.metadata as md
from typing import Any

from terminus.engines.base import Availability, Engine
from terminus.errors import EngineUnavailableError

ENTRY_POINT_GROUP = "terminus.engines"

# Used when the package metadata is missing (running from a source tree).
BUILTIN_ENGINES = {
    "llamacpp": "terminus.engines.llamacpp:LlamaCppEngine",
    "fake": "terminus.engines.fake:FakeEngine",
    "minilm": "terminus.engines.minilm:MiniLMEngine",
    "stable-diffusion": "terminus.engines.stable_diffusion:StableDiffusionEngine",
    "faster-whisper": "terminus.engines.faster_whisper:FasterWhisperEngine",
    "piper": "terminus.engines.piper:PiperEngine",
    "rapidocr": "terminus.engines.rapidocr:RapidOcrEngine",
    "nmt-ct2": "terminus.engines.nmt_ct2:CTranslate2NmtEngine",
    "tesseract": "terminus.engines.tesseract:TesseractEngine",
}

#: Engines that exist for the test suite; nothing a user installs runs on them.
TEST_ONLY_ENGINES = frozenset({"fake"})


def engine_targets() -> dict[str, str]:
    targets = dict(BUILTIN_ENGINES)
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        targets[ep.name] = ep.value
    return targets


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def engine_class(name: str) -> type[Engine]:
    target = engine_targets().get(name)
    if target is None:
        raise EngineUnavailableError(
            f"no engine named {name!r}",
            hint=f"installed engines: {', '.join(sorted(engine_targets()))}",
        )
    try:
        engine: type[Engine] = _import_target(target)
        return engine
    except ImportError as exc:
        raise EngineUnavailableError(f"engine {name!r} cannot be imported: {exc}") from exc


def probe_all() -> dict[str, Availability]:
    """Every known engine and whether it can run here; never raises."""
    report: dict[str, Availability] = {}
    for name, target in sorted(engine_targets().items()):
        try:
            report[name] = _import_target(target).probe()
        except Exception as exc:  # a broken plugin must not hide the others
            report[name] = Availability(False, f"failed to import {target}: {exc}")
    return report
