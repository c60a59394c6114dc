"""CTranslate2 translation models the user converts: the online list, and adding a folder.

Nothing here downloads. ``online_nmt_models()`` lists the published OPUS-MT models
(``models/online/opus-mt.toml``); ``add_nmt_model`` checks a converted folder, copies
its files into the cache (hashing them) and writes a card that pins those hashes.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from terminus.errors import InvalidModelFileError, InvalidParameterError
from terminus.models.cache import ModelCache
from terminus.models.card import LocalSource, ModelCard
from terminus.models.catalog import Catalog
from terminus.runtime.language import normalize_code

REQUIRED_FILES = ("model.bin", "config.json", "source.spm", "target.spm")
VOCABULARIES = ("shared_vocabulary.json", "source_vocabulary.json", "target_vocabulary.json")


@dataclass(frozen=True)
class OnlineNmtModel:
    id: str
    source: str
    targets: tuple[str, ...]
    license: str
    page: str
    files: dict[str, str]


def online_nmt_models() -> list[OnlineNmtModel]:
    text = resources.files("terminus.models").joinpath("online/opus-mt.toml").read_text("utf-8")
    return [
        OnlineNmtModel(
            id=m["id"],
            source=m["source"],
            targets=tuple(m["targets"]),
            license=m["license"],
            page=m["page"],
            files=dict(m["files"]),
        )
        for m in tomllib.loads(text)["models"]
    ]


def add_nmt_model(
    catalog: Catalog,
    cache: ModelCache,
    folder: str | Path,
    *,
    model_id: str,
    source: str | None = None,
    targets: tuple[str, ...] = (),
) -> ModelCard:
    """Hash a converted CTranslate2 folder into the cache and save its card.

    The language pair comes from the online entry of the same id unless given.
    Nothing is written unless the folder has every file the engine needs.
    """
    root = Path(folder).expanduser().resolve()
    known = {m.id: m for m in online_nmt_models()}.get(model_id)
    source = source or (known.source if known else None)
    targets = targets or (known.targets if known else ())
    if not source or not targets:
        raise InvalidParameterError(
            f"{model_id} is not in the online list: give its source and target languages"
        )
    if not root.is_dir():
        raise InvalidParameterError(f"{root} is not a folder")
    missing = [n for n in REQUIRED_FILES if not (root / n).is_file()]
    vocabularies = [n for n in VOCABULARIES if (root / n).is_file()]
    if missing or not vocabularies:
        what = missing + ([] if vocabularies else ["a *_vocabulary.json"])
        raise InvalidModelFileError(
            f"{root} is not a converted CTranslate2 model: missing {', '.join(what)}",
            hint="ct2-transformers-converter --model … --copy_files source.spm target.spm",
        )
    catalog.check_new_id(model_id)
    names = [*REQUIRED_FILES, *vocabularies]
    entries = tuple(cache.import_path(root / n, name=n) for n in names)
    defaults: dict[str, Any] = {
        "source": normalize_code(source),
        "targets": [normalize_code(t) for t in targets],
    }
    card = ModelCard(
        id=model_id,
        name=f"{model_id} (CTranslate2)",
        capability="translate",  # type: ignore[arg-type]
        engine="nmt-ct2",
        format="ctranslate2",
        architecture="marian",
        license=known.license if known else None,
        description=f"Added from {root}" + (f"; original: {known.page}" if known else ""),
        files=entries,
        sources=(LocalSource(paths={n: str(root / n) for n in names}),),
        defaults=defaults,
        user_added=True,
    )
    catalog.save_user_card(card)
    cache.files(card)  # link models/<id>/
    return card
