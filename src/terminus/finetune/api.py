"""Fine-tune a cached chat model; the adapter goes into the cache with a card naming its base."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from terminus.errors import InvalidParameterError
from terminus.finetune.data import Example, read_jsonl, split
from terminus.finetune.options import FinetuneOptions, FinetuneResult, StepReport
from terminus.finetune.trainer import train_lora
from terminus.models.cache import ModelCache, ModelFiles
from terminus.models.card import ModelCard
from terminus.models.catalog import Catalog
from terminus.models.gguf_io import staging_root
from terminus.models.progress import NullProgress


def finetune_to_cache(
    base: ModelCard,
    base_files: ModelFiles,
    dataset: Path | list[Example],
    options: FinetuneOptions,
    *,
    cache: ModelCache,
    catalog: Catalog,
    work_dir: Path,
    model_id: str | None = None,
    validation: Path | None = None,
    resume: bool = False,
    stop: threading.Event | None = None,
    on_step: Callable[[StepReport], None] | None = None,
) -> tuple[ModelCard | None, FinetuneResult]:
    """Train, then store the adapter and its card; the card is None if the run was stopped.

    Checkpoints go to ``work_dir/checkpoints`` (resume with ``resume=True``).
    """
    if base.defaults.get("lora_adapter"):
        raise InvalidParameterError(f"{base.id} is an adapter; fine-tune its base model instead")
    card_id = model_id or f"{base.id}-lora"
    catalog.check_new_id(card_id)
    examples = read_jsonl(dataset) if isinstance(dataset, Path) else list(dataset)
    if validation is not None:
        train, val = examples, read_jsonl(validation)
    else:
        train, val = split(examples, options.validation_fraction, options.seed)
    if options.system_prompt is None and base.defaults.get("system_prompt"):
        options = dataclasses.replace(options, system_prompt=str(base.defaults["system_prompt"]))
    staging = Path(tempfile.mkdtemp(prefix="adapter-", dir=staging_root(cache.root)))
    try:
        result = train_lora(
            base_files.main,
            train,
            val,
            options,
            output=staging / f"{card_id}.gguf",
            base_id=base.id,
            base_sha256=base.main_file.sha256,
            checkpoint_dir=work_dir / "checkpoints",
            resume=resume,
            stop=stop,
            on_step=on_step,
        )
        if result.stopped_early:
            return None, result
        entry = cache.import_path(result.adapter_path, NullProgress(), name=f"{card_id}.gguf")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    card = ModelCard(
        id=card_id,
        name=f"{base.name or base.id} + LoRA {card_id}",
        capability=base.capability,
        engine=base.engine,
        format="gguf",
        architecture=base.architecture,
        license=base.license,
        description=(
            f"LoRA adapter (rank {options.rank}, alpha {options.alpha}) on {base.id}, "
            f"{result.steps} steps, by terminus finetune"
        ),
        files=(base.main_file, entry),
        sources=base.sources,
        chat_template=base.chat_template,
        defaults={**base.defaults, "lora_adapter": entry.name, "lora_scale": 1.0},
        base_model=base.id,
        user_added=True,
    )
    catalog.save_user_card(card)
    cache.files(card)
    result.adapter_path = cache.blob_path(entry.sha256)
    return card, result
