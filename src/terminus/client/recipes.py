"""``create``: a new model from a recipe (base + system prompt + parameters + template +
LoRA adapter), saved as a card every part of Terminus sees (run, chat, serve, peers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from terminus.errors import InvalidModelFileError, InvalidParameterError
from terminus.models.cache import ModelCache
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.models.catalog import Catalog
from terminus.models.gguf import validate_gguf
from terminus.models.progress import NullProgress, Progress
from terminus.models.recipe import Recipe, load_recipe, parse_recipe, recipe_card, recipe_for


def recipes_dir(cache: ModelCache) -> Path:
    return cache.root / "recipes"


def read_recipe(recipe: str | os.PathLike[str] | Recipe | dict[str, Any]) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, dict):
        from terminus.models.card import _toml_value

        lines = [f"{k} = {_toml_value(v)}" for k, v in recipe.items() if k != "parameters"]
        params = recipe.get("parameters") or {}
        if params:
            lines.append("[parameters]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in params.items())
        return parse_recipe("\n".join(lines) + "\n", base_dir=Path.cwd())
    return load_recipe(recipe)


def create_model(
    catalog: Catalog,
    cache: ModelCache,
    name: str,
    recipe: Recipe,
    base: ModelCard,
    progress: Progress | None = None,
) -> ModelCard:
    """Validate and import the adapter, write the card and keep the recipe beside it."""
    card_id = name.strip().lower()
    catalog.check_new_id(card_id)
    if card_id == base.id:
        raise InvalidParameterError(f"{card_id!r} cannot be created from itself")
    adapter: ModelFile | None = None
    adapter_source = None
    if recipe.adapter is not None:
        header = validate_gguf(recipe.adapter)  # NotGGUFError / TruncatedModelError first
        meta = header.metadata
        if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
            raise InvalidModelFileError(f"{recipe.adapter} is not a GGUF LoRA adapter")
        adapter = cache.import_path(recipe.adapter, progress or NullProgress())
        adapter_source = LocalSource(paths={adapter.name: str(recipe.adapter.resolve())})
    card = recipe_card(recipe, card_id, base, adapter=adapter, adapter_source=adapter_source)
    catalog.save_user_card(card)
    folder = recipes_dir(cache)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{card.id}.toml"
    tmp = target.with_suffix(f".toml.{os.getpid()}.tmp")
    tmp.write_text(recipe.text, encoding="utf-8")
    os.replace(tmp, target)
    return card


def recipe_text(cache: ModelCache, card: ModelCard) -> str:
    """The recipe a model was created from, or one that recreates it from its base."""
    saved = recipes_dir(cache) / f"{card.id}.toml"
    if saved.is_file():
        return saved.read_text(encoding="utf-8")
    return recipe_for(card)


def forget_recipe(cache: ModelCache, card_id: str) -> None:
    (recipes_dir(cache) / f"{card_id}.toml").unlink(missing_ok=True)
