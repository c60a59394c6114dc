"""Memory accounting: the budget, what the system has free, and the fit policy."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Literal

from terminus.errors import InsufficientMemoryError, InvalidParameterError

log = logging.getLogger("terminus.runtime")

MemoryPolicy = Literal["refuse", "warn", "off"]
POLICY_ENV = "TERMINUS_MEMORY_POLICY"
BUDGET_ENV = "TERMINUS_MEMORY_BUDGET"
DEFAULT_BUDGET_FRACTION = 0.75
#: Keep this much of the currently free memory for everything else on the machine.
HEADROOM_FRACTION = 0.10

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"512M"``, ``"8GiB"``, ``"1.5g"`` or plain bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise InvalidParameterError(f"not a size: {text!r} (try 512M or 8G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@dataclass(frozen=True)
class SystemMemory:
    total: int
    available: int


def system_memory() -> SystemMemory:
    import psutil

    vm = psutil.virtual_memory()
    return SystemMemory(total=int(vm.total), available=int(vm.available))


def resolve_policy(policy: str | None) -> MemoryPolicy:
    value = (policy or os.environ.get(POLICY_ENV) or "refuse").lower()
    if value not in ("refuse", "warn", "off"):
        raise InvalidParameterError(f"memory policy must be refuse, warn or off, not {value!r}")
    return value  # type: ignore[return-value]


def resolve_budget(budget: int | str | None) -> int:
    if isinstance(budget, int):
        return budget
    text = budget or os.environ.get(BUDGET_ENV)
    if text:
        return parse_size(text)
    return int(system_memory().total * DEFAULT_BUDGET_FRACTION)


def check_fit(
    model_id: str, needed: int, policy: MemoryPolicy, available: int | None = None
) -> None:
    """Refuse (or warn about) a load the free system memory cannot hold."""
    if policy == "off":
        return
    free = system_memory().available if available is None else available
    usable = int(free * (1 - HEADROOM_FRACTION))
    if needed <= usable:
        return
    message = (
        f"{model_id} needs about {format_size(needed)}, "
        f"but only {format_size(usable)} of memory is free"
    )
    if policy == "refuse":
        raise InsufficientMemoryError(
            message, hint="free memory, use a smaller context_length, or set memory policy to warn"
        )
    log.warning("%s; loading anyway (memory policy: warn)", message)
