"""Local adaptation on the client: LoRA fine-tuning, quantization, and comparing models.

``Terminus`` inherits :class:`AdaptMixin`; ``AsyncTerminus`` inherits
:class:`AsyncAdaptMixin`, which runs the same methods in threads. The heavy
modules (torch, gguf, matplotlib) are imported only when a method runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminus.errors import InvalidParameterError, UnsupportedArchitectureError

if TYPE_CHECKING:
    from terminus.finetune.options import FinetuneOptions, FinetuneResult, StepReport
    from terminus.models.cache import ModelCache
    from terminus.models.card import ModelCard
    from terminus.models.catalog import Catalog
    from terminus.models.progress import Progress
    from terminus.quantize.compare import ModelScore
    from terminus.runtime.manager import ModelManager


class AdaptMixin:
    catalog: Catalog
    cache: ModelCache
    manager: ModelManager
    home: Path

    def finetune(
        self,
        base: str,
        dataset: str | Path,
        options: FinetuneOptions | None = None,
        *,
        model_id: str | None = None,
        validation: str | Path | None = None,
        resume: bool = False,
        stop: threading.Event | None = None,
        on_step: Callable[[StepReport], None] | None = None,
    ) -> tuple[ModelCard | None, FinetuneResult]:
        """Train a LoRA adapter on ``base`` from a JSONL dataset; store it as a new model.

        Returns the adapter's card (None if ``stop`` ended the run early: resume
        with ``resume=True``) and the run's report (losses, time per step, memory).
        """
        from terminus.finetune.api import finetune_to_cache
        from terminus.finetune.options import FinetuneOptions

        card = self.catalog.get(base)
        _check_architecture(card)  # before fetching anything
        files = self.manager.ensure_files(card)
        card_id = model_id or f"{card.id}-lora"
        return finetune_to_cache(
            card,
            files,
            Path(dataset).expanduser(),
            options or FinetuneOptions(),
            cache=self.cache,
            catalog=self.catalog,
            work_dir=self.home / "finetune" / card_id,
            model_id=card_id,
            validation=Path(validation).expanduser() if validation else None,
            resume=resume,
            stop=stop,
            on_step=on_step,
        )

    def quantize(
        self,
        model: str,
        type: str,
        *,
        imatrix: str | Path | None = None,
        calibration_text: str | None = None,
        save_imatrix: str | Path | None = None,
        model_id: str | None = None,
        threads: int | None = None,
        on_step: Callable[[str], None] | None = None,
        progress: Progress | None = None,
    ) -> ModelCard:
        """Quantize a cached model to ``type`` (Q8_0, Q4_K_M, …); returns the new model's card.

        ``progress`` follows the tensors being written, then the import into the cache."""
        from terminus.quantize.api import quantize_to_cache
        from terminus.quantize.rules import scheme

        scheme(type)  # an unknown type fails before any file is fetched
        card = self._plain_model(model)
        _check_quantizable(card)  # before fetching anything
        files = self.manager.ensure_files(card)
        return quantize_to_cache(
            card,
            files.main,
            type,
            cache=self.cache,
            catalog=self.catalog,
            imatrix=Path(imatrix).expanduser() if imatrix else None,
            calibration_text=calibration_text,
            save_imatrix_to=Path(save_imatrix).expanduser() if save_imatrix else None,
            model_id=model_id,
            threads=threads,
            on_step=on_step,
            progress=progress,
        )

    def compare(
        self,
        reference: str,
        others: Sequence[str],
        text: str,
        *,
        context: int = 256,
        max_windows: int | None = None,
        threads: int = 1,
        plot: str | Path | None = None,
        on_window: Callable[[str, int, int], None] | None = None,
    ) -> list[ModelScore]:
        """Perplexity, mean KL and top-1 agreement of ``others`` against ``reference`` on ``text``.

        Models are ids, aliases or GGUF paths; all run through llama.cpp. ``plot``
        writes a PNG of the table.
        """
        from terminus.quantize.compare import compare_models, plot_scores

        models = [(name, self._model_path(name)) for name in (reference, *others)]
        scores = compare_models(
            models,
            text,
            context=context,
            max_windows=max_windows,
            threads=threads,
            on_window=on_window,
        )
        if plot is not None:
            plot_scores(scores, Path(plot).expanduser())
        return scores

    def _plain_model(self, name: str) -> ModelCard:
        card = self.catalog.get(name)
        if card.defaults.get("lora_adapter"):
            raise InvalidParameterError(
                f"{card.id} is a base model with a LoRA adapter; "
                f"use its base {card.base_model} here"
            )
        return card

    def _model_path(self, name: str) -> Path:
        path = Path(name).expanduser()
        if path.suffix.lower() == ".gguf" and path.is_file():
            return path
        return self.manager.ensure_files(self._plain_model(name)).main


def _check_architecture(card: ModelCard) -> None:
    """Cards that name an architecture fail fast; the file's own header is checked again later."""
    from terminus.engines.torch_causal import TRAINABLE_ARCHITECTURES

    if card.architecture and card.architecture not in TRAINABLE_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"{card.id} is a {card.architecture} model; fine-tuning and quantization support "
            + ", ".join(TRAINABLE_ARCHITECTURES)
        )


def _check_quantizable(card: ModelCard) -> None:
    from terminus.quantize.writer import QUANTIZABLE_ARCHITECTURES

    if card.architecture and card.architecture not in QUANTIZABLE_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"{card.id} is a {card.architecture} model; quantization supports "
            + ", ".join(QUANTIZABLE_ARCHITECTURES)
        )


class AsyncAdaptMixin:
    """The asyncio face of :class:`AdaptMixin`: the same calls, run in threads."""

    sync: Any

    async def finetune(self, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.sync.finetune, *args, **kwargs)

    async def quantize(self, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.sync.quantize, *args, **kwargs)

    async def compare(self, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.sync.compare, *args, **kwargs)
