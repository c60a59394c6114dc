"""Models by name from the Hugging Face Hub: resolve, pin a card, fetch verified bytes.

The card is written before the download starts (it pins the commit and every sha256,
and lists as not cached until the bytes are verified), so an interrupted pull resumes
against the same files. A refusal that another try would not fix (gated, not found,
bytes that do not match the Hub's hash) removes the card again.
"""

from __future__ import annotations

from collections.abc import Callable

from terminus.errors import (
    ChecksumMismatchError,
    GatedModelError,
    InvalidParameterError,
    ModelNotFoundError,
    OfflineError,
    RemoteModelNotFoundError,
)
from terminus.models.cache import ModelCache, ModelFiles
from terminus.models.card import ModelCard
from terminus.models.catalog import Catalog
from terminus.models.hub import RemoteRepo, list_repo
from terminus.models.hub_catalog import (
    GGUF_KINDS,
    KINDS,
    HubEntry,
    files_card,
    find_entry,
    gguf_card,
)
from terminus.models.hub_ref import HubRef, is_hub_ref, parse_ref
from terminus.models.progress import Progress
from terminus.runtime.manager import ModelManager
from terminus.runtime.memory import system_memory

#: Files a model folder never needs.
_SKIP_SUFFIXES = (".md", ".gitattributes", ".png", ".jpg", ".jpeg", ".gif", ".txt.license")


def is_library_name(name: str) -> bool:
    """A name only the Hub can answer: an ``hf://`` reference or a catalog entry."""
    return is_hub_ref(name) or find_entry(name) is not None


class ModelLibrary:
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

    def resolve(self, name: str, *, kind: str | None = None) -> ModelCard:
        """List the repository and build the pinned card (nothing is saved or fetched)."""
        if kind is not None and kind not in KINDS:
            raise InvalidParameterError(
                f"unknown model kind {kind!r}", hint="one of " + ", ".join(KINDS)
            )
        entry = None if is_hub_ref(name) else find_entry(name)
        if entry is None and not is_hub_ref(name):
            raise ModelNotFoundError(
                f"unknown model {name!r}",
                hint="see `terminus models search`, or pull hf://OWNER/REPO",
            )
        ref = entry.ref() if entry else parse_ref(name)
        if not self._manager.allow_download:
            raise OfflineError(
                f"{name} is not in the cache and downloads are off",
                hint="run without --offline / TERMINUS_OFFLINE to pull it",
            )
        repo = list_repo(ref, model_name=name)
        aliases = tuple(dict.fromkeys(a for a in (name.strip(), str(ref)) if a))
        wanted_kind = kind or (entry.kind if entry else None)
        if wanted_kind is None or wanted_kind in GGUF_KINDS:
            card = gguf_card(
                repo,
                ref,
                name=name,
                fits=self._fits,
                entry=entry,
                kind=wanted_kind,
                aliases=aliases,
            )
            quant_alias = str(HubRef(ref.repo, ref.revision, _quant_of(card)))
            if ref.path is None and quant_alias not in card.aliases:
                card = card.model_copy(update={"aliases": (*card.aliases, quant_alias)})
        else:
            entry = entry or _adhoc_entry(ref, wanted_kind, repo)
            card = files_card(repo, entry, name=name, aliases=aliases)
        return self._free_id(card, ref)

    def pull(
        self, name: str, *, kind: str | None = None, progress: Progress | None = None
    ) -> tuple[ModelCard, ModelFiles]:
        card = self.resolve(name, kind=kind)
        self._catalog.save_user_card(card)
        try:
            files = self._manager.ensure_files(card, progress or self._progress_factory())
        except (GatedModelError, RemoteModelNotFoundError, ChecksumMismatchError):
            self._catalog.delete_user_card(card.id)
            raise
        return card, files

    # -- internals -------------------------------------------------------------

    def _fits(self, size: int) -> bool:
        """A GGUF of ``size`` bytes, with room for its context, fits this machine's budget."""
        limit = min(self._manager.budget_bytes, system_memory().total)
        return size * 1.2 + (256 << 20) <= limit

    def _free_id(self, card: ModelCard, ref: HubRef) -> ModelCard:
        """Keep the card's id unless another model (not this repository's) holds it."""
        try:
            existing = self._catalog.get(card.id)
        except ModelNotFoundError:
            return card
        same_repo = (
            any(getattr(s, "repo", None) == ref.repo for s in existing.sources)
            and existing.files == card.files
        )
        if same_repo:
            return card
        owner = ref.repo.split("/", 1)[0].lower()
        new_id = f"{card.id}-{owner}"[:128]
        return card.model_copy(update={"id": new_id})


def _quant_of(card: ModelCard) -> str | None:
    from terminus.models.hub_ref import quant_label

    return quant_label(card.main_file.name)


def _adhoc_entry(ref: HubRef, kind: str, repo: RemoteRepo) -> HubEntry:
    """An ``hf://`` pull of a non-GGUF kind takes the repository's model files (or the
    one file the reference names)."""
    if ref.path is not None:
        if ref.path not in repo.files:
            raise RemoteModelNotFoundError(f"{ref.repo} has no file {ref.path}")
        paths = [ref.path]
        if kind == "tts" and f"{ref.path}.json" in repo.files:
            paths.append(f"{ref.path}.json")  # a piper voice needs its config beside it
    else:
        paths = [
            p
            for p in repo.files
            if not p.lower().endswith(_SKIP_SUFFIXES) and not p.startswith(".")
        ]
    files = {p.rsplit("/", 1)[-1] if kind == "tts" else p: p for p in paths}
    stem = (ref.path or ref.repo.split("/", 1)[1]).rsplit("/", 1)[-1]
    return HubEntry(
        name=str(ref),
        id=_slug(stem),
        kind=kind,
        repo=ref.repo,
        revision=ref.revision,
        quant=ref.quant,
        files=files,
    )


def _slug(text: str) -> str:
    import re

    text = re.sub(r"\.(gguf|onnx|safetensors|bin)$", "", text, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:128] or "hub-model"
