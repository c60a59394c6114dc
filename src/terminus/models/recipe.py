"""Model recipes: Ollama's Modelfile as TOML, turned into a card.

```toml
from = "smollm2"                       # base: a model id, alias, catalog name or hf:// reference
system = "You are a terse pirate."     # default system prompt (a request's own one wins)
template = "..."                       # optional chat template (Jinja, as llama.cpp reads it)
adapter = "facts-lora.gguf"            # optional LoRA adapter GGUF, relative to the recipe
name = "Pirate SmolLM2"                # optional display name
description = "..."
license = "Apache-2.0"

[parameters]                           # request defaults; a request's own values win
temperature = 0.7
top_p = 0.9
stop = ["</s>"]
context_length = 2048
```

The card shares the base's files (the cache stores them once) and adds the adapter.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from terminus.errors import InvalidParameterError
from terminus.models.card import ModelCard, ModelFile, SourceSpec, _toml_value
from terminus.types.chat import GenerationParams

RECIPE_KEYS = ("from", "name", "description", "license", "system", "template", "adapter")
#: Card defaults a recipe may set besides the sampling parameters.
ENGINE_PARAMETERS = {"context_length": int, "tool_mode": str}
SAMPLING_PARAMETERS = tuple(
    k for k in GenerationParams.model_fields if k not in ("top_logprobs", "cache_prompt")
)


@dataclass(frozen=True)
class Recipe:
    base: str
    system: str | None = None
    template: str | None = None
    adapter: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    description: str = ""
    license: str | None = None
    text: str = ""


def parse_recipe(text: str, *, origin: str = "<recipe>", base_dir: Path | None = None) -> Recipe:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{origin} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {*RECIPE_KEYS, "parameters"})
    if unknown:
        raise InvalidParameterError(
            f"{origin}: unknown key(s) {', '.join(unknown)}",
            hint="keys: " + ", ".join((*RECIPE_KEYS, "[parameters]")),
        )
    base = data.get("from")
    if not isinstance(base, str) or not base.strip():
        raise InvalidParameterError(f'{origin}: `from = "MODEL"` (the base model) is required')
    for key in ("system", "template", "name", "description", "license", "adapter"):
        if key in data and not isinstance(data[key], str):
            raise InvalidParameterError(f"{origin}: {key} must be a string")
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidParameterError(f"{origin}: [parameters] must be a table")
    _check_parameters(parameters, origin)
    adapter = None
    if data.get("adapter"):
        adapter = Path(data["adapter"]).expanduser()
        if not adapter.is_absolute() and base_dir is not None:
            adapter = base_dir / adapter
        if not adapter.is_file():
            raise InvalidParameterError(f"{origin}: adapter {adapter} is not a file")
    return Recipe(
        base=base.strip(),
        system=data.get("system"),
        template=data.get("template"),
        adapter=adapter,
        parameters=dict(parameters),
        name=data.get("name", ""),
        description=data.get("description", ""),
        license=data.get("license"),
        text=text,
    )


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidParameterError(f"cannot read recipe {file}: {exc.strerror}") from exc
    return parse_recipe(text, origin=str(file), base_dir=file.resolve().parent)


def _check_parameters(parameters: dict[str, Any], origin: str) -> None:
    allowed = (*SAMPLING_PARAMETERS, *ENGINE_PARAMETERS)
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise InvalidParameterError(
            f"{origin}: unknown parameter(s) {', '.join(unknown)}",
            hint="one of " + ", ".join(allowed),
        )
    sampling = {k: v for k, v in parameters.items() if k in SAMPLING_PARAMETERS}
    if isinstance(sampling.get("stop"), str):
        sampling["stop"] = [sampling["stop"]]
    try:
        GenerationParams.model_validate(sampling)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidParameterError(f"{origin}: parameters.{where}: {err['msg']}") from exc
    for key, kind in ENGINE_PARAMETERS.items():
        value = parameters.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise InvalidParameterError(f"{origin}: parameters.{key} must be {kind.__name__}")
        if key == "context_length" and isinstance(value, int) and value < 16:
            raise InvalidParameterError(f"{origin}: parameters.context_length must be >= 16")


def recipe_card(
    recipe: Recipe,
    card_id: str,
    base: ModelCard,
    *,
    adapter: ModelFile | None = None,
    adapter_source: SourceSpec | None = None,
) -> ModelCard:
    """The created model's card: the base's files and sources, the recipe's defaults."""
    defaults = dict(base.defaults)
    parameters = dict(recipe.parameters)
    if isinstance(parameters.get("stop"), str):
        parameters["stop"] = [parameters["stop"]]
    defaults.update(parameters)
    if recipe.system is not None:
        defaults["system_prompt"] = recipe.system
    files = base.files
    sources = base.sources
    if adapter is not None:
        if base.defaults.get("lora_adapter"):
            raise InvalidParameterError(
                f"{base.id} already carries a LoRA adapter; a model takes one",
                hint=f"use {base.base_model or 'its base model'} as `from`",
            )
        files = (*base.files, adapter)
        sources = (*base.sources, *((adapter_source,) if adapter_source else ()))
        defaults["lora_adapter"] = adapter.name
    return ModelCard.model_validate(
        {
            **base.model_dump(exclude={"id", "aliases", "user_added"}),
            "id": card_id,
            "name": recipe.name or f"{card_id} (from {base.id})",
            "description": recipe.description or f"created from {base.id} by a recipe",
            "license": recipe.license or base.license,
            "files": files,
            "sources": sources,
            "chat_template": recipe.template if recipe.template is not None else base.chat_template,
            "defaults": defaults,
            "base_model": base.id,
            "user_added": True,
        }
    )


def recipe_for(card: ModelCard) -> str:
    """A recipe that recreates ``card`` from its base (for cards that came without one)."""
    lines = [f"from = {_toml_value(card.base_model or card.id)}"]
    if card.name:
        lines.append(f"name = {_toml_value(card.name)}")
    if card.defaults.get("system_prompt"):
        lines.append(f"system = {_toml_value(card.defaults['system_prompt'])}")
    if card.chat_template:
        lines.append(f"template = {_toml_value(card.chat_template)}")
    if card.defaults.get("lora_adapter"):
        lines.append(f"adapter = {_toml_value(card.defaults['lora_adapter'])}")
    parameters = {
        k: v
        for k, v in card.defaults.items()
        if k in (*SAMPLING_PARAMETERS, *ENGINE_PARAMETERS) and v is not None
    }
    if parameters:
        lines.append("\n[parameters]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in parameters.items())
    return "\n".join(lines) + "\n"
