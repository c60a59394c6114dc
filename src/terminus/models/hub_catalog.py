"""The curated list of well-known Hub models (``online/hub.toml``) and how an entry,
once its repository is listed, becomes a pinned card."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from terminus.errors import InvalidParameterError, ModelNotFoundError, RemoteModelNotFoundError
from terminus.models.card import HubSource, ModelCard, ModelFile
from terminus.models.hub import RemoteRepo, check_access, pinned_sha256
from terminus.models.hub_ref import GgufChoice, HubRef, choose_gguf, is_projector, quant_label

#: kind -> (capability, engine, format)
KINDS: dict[str, tuple[str, str, str]] = {
    "chat": ("chat", "llamacpp", "gguf"),
    "vision": ("chat", "llamacpp", "gguf"),
    "embed": ("embed", "llamacpp", "gguf"),
    "embed-st": ("embed", "minilm", "safetensors"),
    "image": ("image", "stable-diffusion", "safetensors"),
    "stt": ("stt", "faster-whisper", "ctranslate2"),
    "tts": ("tts", "piper", "onnx"),
}
GGUF_KINDS = ("chat", "vision", "embed")
#: Sampling defaults for pulled chat models: Ollama's (llama.cpp's own have no repeat
#: penalty, and small models then loop until the context is full).
_CHAT_SAMPLING = {"top_k": 40, "top_p": 0.9, "repeat_penalty": 1.1}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "chat": {"context_length": 4096, **_CHAT_SAMPLING},
    "vision": {"context_length": 4096, **_CHAT_SAMPLING},
    "embed": {"pooling": "mean", "context_length": 2048},
}


@dataclass(frozen=True)
class HubEntry:
    name: str
    id: str
    kind: str
    repo: str
    revision: str | None = None
    quant: str | None = None
    #: card file name -> path in the repository (non-GGUF kinds)
    files: dict[str, str] = field(default_factory=dict)
    license: str | None = None
    size: str = ""
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)

    def ref(self) -> HubRef:
        return HubRef(self.repo, self.revision, self.quant)


def _entry(data: dict[str, Any]) -> HubEntry:
    files = data.get("files", {})
    if isinstance(files, list):
        files = {path: path for path in files}
    kind = data.get("kind", "chat")
    if kind not in KINDS:
        raise InvalidParameterError(f"catalog entry {data.get('name')}: unknown kind {kind!r}")
    return HubEntry(
        name=data["name"],
        id=data["id"],
        kind=kind,
        repo=data["repo"],
        revision=data.get("revision"),
        quant=data.get("quant"),
        files=dict(files),
        license=data.get("license"),
        size=data.get("size", ""),
        description=data.get("description", ""),
        defaults=dict(data.get("defaults", {})),
    )


@cache
def hub_entries() -> tuple[HubEntry, ...]:
    entry = resources.files("terminus.models") / "online" / "hub.toml"
    data = tomllib.loads(entry.read_text(encoding="utf-8"))
    return tuple(_entry(m) for m in data.get("models", []))


def find_entry(name: str) -> HubEntry | None:
    wanted = name.strip().lower()
    return next((e for e in hub_entries() if wanted in (e.name.lower(), e.id)), None)


def search_entries(word: str = "", kind: str | None = None) -> list[HubEntry]:
    """Entries whose name, id, repository, kind or description contain every word."""
    words = word.lower().split()
    found = []
    for e in hub_entries():
        text = " ".join((e.name, e.id, e.repo, e.kind, e.description)).lower()
        if all(w in text for w in words) and (kind is None or e.kind == kind):
            found.append(e)
    return found


def require_entry(name: str, kind: str | None = None) -> HubEntry:
    entry = find_entry(name)
    if entry is None or (kind is not None and entry.kind != kind):
        names = [e.name for e in hub_entries() if kind is None or e.kind == kind]
        raise ModelNotFoundError(
            f"no catalog model {name!r}", hint="one of " + ", ".join(names[:12])
        )
    return entry


def card_id_for(ref: HubRef, choice: GgufChoice) -> str:
    """``hf://bartowski/Qwen_Qwen3-0.6B-GGUF:Q8_0`` -> ``qwen_qwen3-0.6b-q8_0``."""
    if ref.path is not None:
        stem = ref.path.rsplit("/", 1)[-1]
        stem = re.sub(r"-\d{5}-of-\d{5}", "", stem[:-5] if stem.lower().endswith(".gguf") else stem)
    else:
        stem = re.sub(r"[-_.]gguf$", "", ref.repo.split("/", 1)[1], flags=re.IGNORECASE)
        if choice.quant:
            stem += f"-{choice.quant}"
    slug = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return slug[:128] or "hub-model"


def gguf_card(
    repo: RemoteRepo,
    ref: HubRef,
    *,
    name: str,
    fits: Callable[[int], bool],
    entry: HubEntry | None = None,
    kind: str | None = None,
    aliases: tuple[str, ...] = (),
) -> ModelCard:
    """A card for a GGUF model (all parts, plus the vision projector when there is one)."""
    check_access(repo, name)
    choice = choose_gguf(ref, repo.sizes(), fits)
    if entry is not None:
        kind = entry.kind
    elif kind is None or (kind == "chat" and choice.projector):
        kind = "vision" if choice.projector else "chat"
    card_id = entry.id if entry else card_id_for(ref, choice)
    files = tuple(
        ModelFile(name=_card_name(path), sha256=pinned_sha256(repo, path, name), size=size)
        for path in choice.paths
        for size in (repo.files[path].size,)
    )
    defaults = {**_DEFAULTS[kind], **(entry.defaults if entry else {})}
    if choice.projector:
        defaults["mmproj"] = _card_name(choice.projector)
    pinned = HubRef(repo.repo, repo.commit, choice.quant)
    return _card(
        repo,
        card_id=card_id,
        kind=kind,
        files=files,
        paths=dict(zip((f.name for f in files), choice.paths, strict=True)),
        defaults=defaults,
        display=f"{repo.repo.split('/', 1)[1]} ({choice.quant or 'GGUF'})",
        aliases=aliases,
        entry=entry,
        note=f"{pinned}",
    )


def files_card(
    repo: RemoteRepo, entry: HubEntry, *, name: str, aliases: tuple[str, ...] = ()
) -> ModelCard:
    """A card for a model made of named files (whisper, piper, image, sentence-transformers)."""
    check_access(repo, name)
    missing = [p for p in entry.files.values() if p not in repo.files]
    if missing:
        raise RemoteModelNotFoundError(
            f"{name}: {repo.repo}@{repo.commit[:12]} lacks {', '.join(missing)}"
        )
    files = tuple(
        ModelFile(
            name=card_name, sha256=pinned_sha256(repo, path, name), size=repo.files[path].size
        )
        for card_name, path in entry.files.items()
    )
    fmt = KINDS[entry.kind][2]
    if entry.kind == "image":
        fmt = "diffusers" if len(files) > 1 else files[0].name.rsplit(".", 1)[-1].lower()
    return _card(
        repo,
        card_id=entry.id,
        kind=entry.kind,
        files=files,
        paths=dict(entry.files),
        defaults=dict(entry.defaults),
        display=entry.description.split(",")[0] or entry.name,
        aliases=aliases,
        entry=entry,
        note=f"hf://{repo.repo}@{repo.commit}",
        fmt=fmt,
    )


def _card(
    repo: RemoteRepo,
    *,
    card_id: str,
    kind: str,
    files: tuple[ModelFile, ...],
    paths: dict[str, str],
    defaults: dict[str, Any],
    display: str,
    aliases: tuple[str, ...],
    entry: HubEntry | None,
    note: str,
    fmt: str | None = None,
) -> ModelCard:
    capability, engine, default_format = KINDS[kind]
    names = tuple(dict.fromkeys(a for a in (entry.name if entry else "", *aliases) if a))
    description = (entry.description + "; " if entry and entry.description else "") + (
        f"pulled from {note}; sha256 pinned from the Hub's LFS metadata"
    )
    return ModelCard.model_validate(
        {
            "id": card_id,
            "name": display,
            "aliases": tuple(a for a in names if a != card_id),
            "capability": capability,
            "engine": engine,
            "format": fmt or default_format,
            "license": (entry.license if entry else None) or repo.license,
            "description": description,
            "files": files,
            "sources": (HubSource(repo=repo.repo, revision=repo.commit, files=paths),),
            "defaults": defaults,
            "user_added": True,
        }
    )


def _card_name(path: str) -> str:
    """Model files keep their base names: llama.cpp finds split parts by name, side by side."""
    return path.rsplit("/", 1)[-1]


__all__ = [
    "HubEntry",
    "card_id_for",
    "files_card",
    "find_entry",
    "gguf_card",
    "hub_entries",
    "is_projector",
    "quant_label",
    "require_entry",
    "search_entries",
]
