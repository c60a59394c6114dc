"""Model cards: data that says what a model is, which files it needs and where to get them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from terminus.errors import CapabilityError, InvalidParameterError
from terminus.types.common import Capability

_FROZEN = ConfigDict(frozen=True, extra="forbid")
SHA256_RE = r"^[0-9a-f]{64}$"
MODEL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


class ModelFile(BaseModel):
    model_config = _FROZEN
    name: str = Field(pattern=r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$")
    sha256: str = Field(pattern=SHA256_RE)
    size: int | None = Field(default=None, ge=0)

    @field_validator("name")
    @classmethod
    def _stays_inside_the_model_folder(cls, value: str) -> str:
        if any(part in ("", ".", "..") for part in value.split("/")):
            raise ValueError("file names are relative paths without '.', '..' or empty parts")
        return value


class PackageSource(BaseModel):
    """Files inside installed (or downloadable) PyPI packages; several paths are concatenated."""

    model_config = _FROZEN
    type: Literal["package"] = "package"
    packages: tuple[str, ...]
    files: dict[str, tuple[str, ...]]


class LocalSource(BaseModel):
    """Files on this machine: a directory holding them by name, or one path per file."""

    model_config = _FROZEN
    type: Literal["local"] = "local"
    paths: dict[str, str]


class HttpSource(BaseModel):
    """HTTP(S) URLs, one per file; downloads resume with Range requests."""

    model_config = _FROZEN
    type: Literal["http"] = "http"
    urls: dict[str, str]


class HubSource(BaseModel):
    """Files in a Hugging Face Hub repository at a pinned commit; ``files`` maps each card
    file name to its path in the repository. The endpoint (``HF_ENDPOINT``) and token
    (``HF_TOKEN``) are read when fetching, so mirrors work without editing the card."""

    model_config = _FROZEN
    type: Literal["hf"] = "hf"
    repo: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
    revision: str = "main"
    files: dict[str, str]


class PeerSource(BaseModel):
    """Peers sharing the model (``terminus share`` references); needs the p2p extra."""

    model_config = _FROZEN
    type: Literal["peer"] = "peer"
    refs: tuple[str, ...]


SourceSpec = Annotated[
    PackageSource | LocalSource | HttpSource | HubSource | PeerSource,
    Field(discriminator="type"),
]


class ModelCard(BaseModel):
    model_config = _FROZEN
    id: str
    name: str = ""
    aliases: tuple[str, ...] = ()
    capability: Capability
    engine: str
    format: str = "gguf"
    architecture: str | None = None
    license: str | None = None
    description: str = ""
    files: tuple[ModelFile, ...]
    sources: tuple[SourceSpec, ...] = ()
    chat_template: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    base_model: str | None = None
    #: For a quantized model: source model, file, sha256, type, lowest precision upstream.
    lineage: dict[str, Any] | None = None
    user_added: bool = False

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """What the model does: its capability, plus ``vision`` when it has a projector."""
        sees = self.defaults.get("mmproj") and self.capability == Capability.CHAT
        return (self.capability, Capability.VISION) if sees else (self.capability,)

    @property
    def main_file(self) -> ModelFile:
        return self.files[0]

    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


def check_can_see(card: ModelCard) -> None:
    """A text-only model given an image is an error that names it, never a silent drop."""
    if Capability.VISION not in card.capabilities:
        raise CapabilityError(
            f"{card.id} cannot read images: it has no vision projector (mmproj)",
            hint="use a vision model (see `terminus models list`), or add one with "
            "`terminus models add MODEL.gguf --mmproj MMPROJ.gguf`",
        )


def card_from_mapping(data: dict[str, Any], origin: str = "<card>") -> ModelCard:
    try:
        card = ModelCard.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidParameterError(f"invalid model card {origin}: {where}: {err['msg']}") from exc
    if not MODEL_ID_RE.match(card.id):
        raise InvalidParameterError(f"invalid model id {card.id!r} in {origin}")
    file_names = {f.name for f in card.files}
    for source in card.sources:
        if isinstance(source, PeerSource):
            continue  # a reference pins its files by sha256; checked when it is used
        mapping: dict[str, object]
        if isinstance(source, PackageSource | HubSource):
            mapping = dict(source.files)
        elif isinstance(source, LocalSource):
            mapping = dict(source.paths)
        else:
            mapping = dict(source.urls)
        unknown = set(mapping) - file_names
        if unknown:
            raise InvalidParameterError(
                f"card {card.id}: source names unknown files {sorted(unknown)}"
            )
    return card


def load_card(path: Path) -> ModelCard:
    with path.open("rb") as fh:
        return card_from_mapping(tomllib.load(fh), origin=str(path))


def dump_card_toml(card: ModelCard) -> str:
    """A minimal TOML writer for the card shape (stdlib has no TOML writer)."""
    data = {
        k: v
        for k, v in card.model_dump(mode="json", exclude_none=True).items()
        if v not in ((), [], {}, "", False)
    }
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if key in ("files", "sources"):
            for item in value:
                tables.append(f"\n[[{key}]]")
                for k, v in item.items():
                    tables.append(f"{k} = {_toml_value(v)}")
        elif key == "defaults":
            tables.append("\n[defaults]")
            tables.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


def _toml_key(key: str) -> str:
    import json

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
