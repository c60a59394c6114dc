"""Training checkpoints: LoRA weights, optimizer and scheduler state, step, run fingerprint.

Written to a temporary file and renamed, so a run killed while saving leaves the
previous checkpoint intact; resuming picks the newest complete one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from terminus.errors import CheckpointError

_NAME = re.compile(r"^checkpoint-(\d+)\.pt$")


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], *, keep: int = 2) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"checkpoint-{step:06d}.pt"
    temp = folder / f".{target.name}.{os.getpid()}.partial"
    torch.save({**state, "step": step}, temp)
    os.replace(temp, target)
    for old in sorted(_checkpoints(folder))[:-keep]:
        old[1].unlink(missing_ok=True)
    return target


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("checkpoint-*.pt"):
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def clear_checkpoints(folder: Path) -> None:
    for _, path in _checkpoints(folder) if folder.is_dir() else []:
        path.unlink(missing_ok=True)


def latest_checkpoint(folder: Path) -> Path | None:
    found = _checkpoints(folder) if folder.is_dir() else []
    return max(found)[1] if found else None


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any]:
    import torch

    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path.name} belongs to a run with other data or options",
            hint="resume with the same dataset and options, or start afresh without --resume",
        )
    return state
