"""Quantize a cached model into a new cached model with its own card."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from terminus.errors import InvalidParameterError
from terminus.models.cache import ModelCache
from terminus.models.card import ModelCard
from terminus.models.catalog import Catalog
from terminus.models.gguf_io import staging_root
from terminus.models.progress import NullProgress, Progress
from terminus.quantize.imatrix import compute_imatrix, load_imatrix, save_imatrix
from terminus.quantize.lineage import lineage, precision_warning
from terminus.quantize.rules import scheme
from terminus.quantize.writer import quantize_file

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_quant_id(base: ModelCard, type_name: str, *, imatrix: bool) -> str:
    return f"{base.id}-{type_name.lower().replace('_', '-')}" + ("-imatrix" if imatrix else "")


def quantize_to_cache(
    base: ModelCard,
    source: Path,
    type_name: str,
    *,
    cache: ModelCache,
    catalog: Catalog,
    imatrix: Path | None = None,
    calibration_text: str | None = None,
    save_imatrix_to: Path | None = None,
    model_id: str | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ModelCard:
    """Write ``source`` (the GGUF of ``base``) as ``type_name`` into the cache; returns its card.

    ``imatrix`` reads a saved importance matrix; ``calibration_text`` computes one
    (and ``save_imatrix_to`` keeps it for reuse). Nothing enters the cache unless
    the whole file was written.
    """
    plan = scheme(type_name)  # unknown types fail before any work
    if imatrix is not None and calibration_text is not None:
        raise InvalidParameterError("pass an importance matrix file or calibration text, not both")
    card_id = model_id or default_quant_id(
        base, plan.name, imatrix=bool(imatrix or calibration_text)
    )
    catalog.check_new_id(card_id)
    say = on_step or (lambda _: None)
    matrix = None
    if imatrix is not None:
        matrix = load_imatrix(imatrix)
    elif calibration_text is not None:
        say("measuring the importance matrix on the calibration text")
        matrix = compute_imatrix(source, calibration_text, threads=threads)
        if save_imatrix_to is not None:
            save_imatrix(matrix, save_imatrix_to, dataset="calibration text")
    record = lineage(source, base.files[0].sha256 or file_sha256(source), base.id, base.lineage)
    warning = precision_warning(record, plan.default)
    if warning:
        record["warning"] = warning
        log.warning("%s: %s", card_id, warning)
        say(f"warning: {warning}")
    staging = Path(tempfile.mkdtemp(prefix="quantize-", dir=staging_root(cache.root)))
    try:
        target = staging / f"{card_id}.gguf"
        say(f"writing {plan.name}")
        quantize_file(source, target, plan, imatrix=matrix, progress=progress)
        entry = cache.import_path(target, progress or NullProgress(), name=target.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    how = f"{plan.name}" + (" with an importance matrix" if matrix is not None else "")
    card = ModelCard(
        id=card_id,
        name=f"{base.id} as {how}",
        capability=base.capability,
        engine=base.engine,
        format="gguf",
        architecture=base.architecture,
        license=base.license,
        description=f"{base.id} quantized to {how} by terminus quantize",
        files=(entry,),
        chat_template=base.chat_template,
        defaults=dict(base.defaults),
        base_model=base.id,
        lineage={**record, "type": plan.name, "imatrix": matrix is not None},
        user_added=True,
    )
    catalog.save_user_card(card)
    cache.files(card)  # link models/<id>/
    return card
