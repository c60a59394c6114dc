"""Model administration: list, pull, remove, verify, inspect and add models."""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import InvalidParameterError, ModelNotFoundError
from terminus.models.cache import ModelCache, ModelFiles, VerifyResult
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.models.catalog import Catalog
from terminus.models.gguf import validate_gguf
from terminus.models.gguf_sanity import check_tensor_data
from terminus.models.hub_catalog import HubEntry, search_entries
from terminus.models.progress import Progress
from terminus.runtime.manager import ModelManager
from terminus.types.common import Capability


@dataclass(frozen=True)
class ModelStatus:
    card: ModelCard
    cached: bool
    partial_bytes: int
    loaded: bool


class ModelsAPI:
    def __init__(
        self,
        catalog: Catalog,
        cache: ModelCache,
        manager: ModelManager,
        progress_factory: Callable[[], Progress],
    ) -> None:
        self._catalog = catalog
        self._cache = cache
        self._manager = manager
        self._progress_factory = progress_factory

    def get(self, name: str) -> ModelCard:
        return self._catalog.get(name)

    def list(self) -> list[ModelStatus]:
        loaded = {m.id for m in self._manager.loaded()}
        return [
            ModelStatus(
                card,
                self._cache.is_cached(card),
                self._cache.partial_bytes(card),
                card.id in loaded,
            )
            for card in sorted(self._catalog.all(), key=lambda c: c.id)
        ]

    def pull(
        self, name: str, progress: Progress | None = None, *, kind: str | None = None
    ) -> ModelFiles:
        """Fetch and verify every file of a model into the cache (no-op when cached).

        ``name`` may also be ``hf://OWNER/REPO[:QUANT|/FILE.gguf]`` or a Hub catalog name
        (``qwen3:1.7b``): the first pull pins the Hub's sha256 into a new card
        (docs/models.md). ``kind`` says what a non-GGUF repository holds (``stt``,
        ``tts``, ``image``, ``embed-st``).
        """
        from terminus.client.model_library import ModelLibrary, is_library_name

        try:
            card = self._catalog.get(name)
        except ModelNotFoundError:
            if not is_library_name(name):
                raise
            library = ModelLibrary(
                self._catalog, self._cache, self._manager, self._progress_factory
            )
            return library.pull(name, kind=kind, progress=progress)[1]
        return self._manager.ensure_files(card, progress or self._progress_factory())

    def search(self, word: str = "", *, kind: str | None = None) -> builtins.list[HubEntry]:
        """Well-known Hub models whose name, repository or description match ``word``."""
        return search_entries(word, kind)

    def create(
        self,
        name: str,
        recipe: str | Path | dict[str, Any],
        progress: Progress | None = None,
    ) -> ModelCard:
        """A new model from a recipe file (or mapping): base, system prompt, parameters,
        chat template and LoRA adapter (docs/models.md). A Hub base is pulled first."""
        from terminus.client.recipes import create_model, read_recipe

        parsed = read_recipe(recipe)
        try:
            base = self._catalog.get(parsed.base)
        except ModelNotFoundError:
            from terminus.client.model_library import ModelLibrary, is_library_name

            if not is_library_name(parsed.base):
                raise
            library = ModelLibrary(
                self._catalog, self._cache, self._manager, self._progress_factory
            )
            base = library.pull(parsed.base, progress=progress)[0]
        return create_model(self._catalog, self._cache, name, parsed, base, progress)

    def recipe(self, name: str) -> str:
        """The recipe a model was created from (or one that recreates it), as TOML."""
        from terminus.client.recipes import recipe_text

        return recipe_text(self._cache, self._catalog.get(name))

    def remove(self, name: str, *, forget: bool = False) -> int:
        """Delete a model's files from the cache (unloading it first); returns bytes freed.

        ``forget=True`` also deletes the card of a model the user added.
        """
        card = self._catalog.get(name)
        self._manager.unload(card.id)
        freed = self._cache.remove(card, keep_shared_with=self._catalog.all())
        if forget and card.user_added:
            from terminus.client.recipes import forget_recipe

            self._catalog.delete_user_card(card.id)
            forget_recipe(self._cache, card.id)
        return freed

    def verify(self, name: str | None = None) -> dict[str, builtins.list[VerifyResult]]:
        """Re-hash cached files; corrupt ones are deleted so they are never loaded."""
        cards = [self._catalog.get(name)] if name else self._catalog.all()
        return {
            card.id: self._cache.verify(card)
            for card in cards
            if name or any(self._cache.blob_path(f.sha256).exists() for f in card.files)
        }

    def info(self, name: str) -> dict[str, Any]:
        card = self._catalog.get(name)
        info: dict[str, Any] = card.model_dump(mode="json", exclude_none=True)
        info["cached"] = self._cache.is_cached(card)
        if info["cached"] and card.format == "gguf":
            header = validate_gguf(self._cache.files(card).main)
            info["gguf"] = {
                "architecture": header.architecture,
                "name": header.name,
                "context_length": header.context_length,
                "layers": header.block_count,
                "embedding_length": header.embedding_length,
                "has_chat_template": header.chat_template is not None,
            }
        return info

    def add(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        capability: Capability = Capability.CHAT,
        mmproj: str | Path | None = None,
        progress: Progress | None = None,
    ) -> ModelCard:
        """Add your own GGUF: validate it, hash it into the cache and write a card for it.

        ``mmproj`` is a vision projector GGUF (llama.cpp's ``--mmproj``) for a chat model:
        it is checked, hashed and cached the same way, and the model then reads images.

        Nothing is written if the file is not a complete GGUF, or if sampled tensor
        data cannot be a model's (NaN or infinite scales, blank data): GGUF has no
        checksum for its tensor data, so this sampled look is the only check there is.
        """
        source = Path(path).expanduser().resolve()
        if not source.is_file():
            raise InvalidParameterError(f"{source} is not a file")
        header = validate_gguf(source)  # NotGGUFError / TruncatedModelError before any write
        check_tensor_data(source, header)  # GGUF has no tensor checksum: a sampled look
        card_id = model_id or _id_from_filename(source.name)
        self._catalog.check_new_id(card_id)
        projector = _checked_projector(mmproj, capability) if mmproj is not None else None
        entry = self._cache.import_path(source, progress or self._progress_factory())
        entries: tuple[ModelFile, ...] = (entry,)
        defaults: dict[str, object] = {"context_length": min(header.context_length or 2048, 4096)}
        if projector is not None:
            name = "mmproj-" + projector.name if projector.name == entry.name else projector.name
            entries += (
                self._cache.import_path(projector, progress or self._progress_factory(), name=name),
            )
            defaults["mmproj"] = entries[1].name
        card = ModelCard(
            id=card_id,
            name=header.name or source.stem,
            capability=capability,
            engine="llamacpp",
            format="gguf",
            architecture=header.architecture,
            description=f"Added from {source}",
            files=entries,
            sources=(
                LocalSource(
                    paths={entry.name: str(source)}
                    | ({entries[1].name: str(projector)} if projector else {})
                ),
            ),
            defaults=defaults,
            user_added=True,
        )
        self._catalog.save_user_card(card)
        self._cache.files(card)  # link models/<id>/
        return card


def _id_from_filename(name: str) -> str:
    stem = name[:-5] if name.lower().endswith(".gguf") else name
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._") or "model"


def _checked_projector(path: str | Path, capability: Capability) -> Path:
    """A vision projector: a complete GGUF of llama.cpp's ``clip`` architecture."""
    if capability != Capability.CHAT:
        raise InvalidParameterError("a vision projector (--mmproj) goes with a chat model")
    projector = Path(path).expanduser().resolve()
    if not projector.is_file():
        raise InvalidParameterError(f"{projector} is not a file")
    header = validate_gguf(projector)
    if header.architecture != "clip":
        raise InvalidParameterError(
            f"{projector.name} is not a vision projector (its architecture is "
            f"{header.architecture!r}, not 'clip')"
        )
    check_tensor_data(projector, header)
    return projector
