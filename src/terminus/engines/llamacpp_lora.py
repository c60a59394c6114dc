"""LoRA adapters on llama.cpp: an adapter card loads its base with the adapter attached.

An adapter card lists the base model's GGUF first (the same blob as the base's
own card, so the cache stores it once) and the adapter GGUF after it, and names
the adapter file in ``defaults.lora_adapter``. The adapter records the sha256 of
the base it was trained on; a different base is refused before llama.cpp runs.
Requests set the adapter's strength with ``lora_scale`` (0 gives the base alone).
"""

from __future__ import annotations

from typing import Any

from terminus.engines.llamacpp_params import Native
from terminus.errors import AdapterMismatchError, InvalidModelFileError
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.models.gguf import validate_gguf

BASE_SHA256_KEY = "terminus.base.sha256"
BASE_ID_KEY = "terminus.base.id"


def check_adapter(card: ModelCard, files: ModelFiles) -> str:
    """The adapter's path, after checking it is a LoRA adapter for this card's base file."""
    name = str(card.defaults["lora_adapter"])
    if name not in files.paths or name == card.main_file.name:
        raise InvalidModelFileError(f"{card.id}: lora_adapter {name!r} is not one of its files")
    header = validate_gguf(files.paths[name])
    meta = header.metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise InvalidModelFileError(f"{name} is not a GGUF LoRA adapter")
    base = validate_gguf(files.main)
    if header.architecture != base.architecture:
        raise AdapterMismatchError(
            f"adapter {name} is for {header.architecture} models; "
            f"{card.main_file.name} is {base.architecture}"
        )
    trained_on = meta.get(BASE_SHA256_KEY)
    if trained_on is not None and trained_on != card.main_file.sha256:
        raise AdapterMismatchError(
            f"adapter {name} was trained on {meta.get(BASE_ID_KEY, trained_on)}, "
            f"not on {card.main_file.name}",
            hint="apply it to the base model it was trained on",
        )
    return str(files.paths[name])


def attach_adapter(params: Any, card: ModelCard, files: ModelFiles) -> None:
    """Add the checked adapter to load settings (a ``ParamsRecorder``)."""
    path = check_adapter(card, files)
    params.lora_adapters = [Native("CommonAdapterLoraInfo", (path, 1.0))]
