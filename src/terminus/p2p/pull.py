"""Fetch a model from peers by reference and make it a card in the catalog."""

from __future__ import annotations

from terminus.errors import InvalidParameterError
from terminus.models.cache import ModelCache, ModelFiles
from terminus.models.card import ModelCard, card_from_mapping
from terminus.models.catalog import Catalog
from terminus.models.progress import Progress
from terminus.p2p.reference import ModelRef, parse_reference
from terminus.p2p.source import PeerFileSource


def card_for_reference(catalog: Catalog, model: str | None, ref: ModelRef) -> ModelCard:
    """The catalog's card for ``model`` (checked against ``ref``), or a new user card."""
    wanted = model or ref.model_id
    try:
        card = catalog.get(wanted)
    except KeyError:
        card = None
    if card is not None:
        pinned = {(f.name, f.sha256) for f in card.files}
        offered = {(f.name, f.sha256) for f in ref.files}
        if pinned != offered:
            raise InvalidParameterError(
                f"the reference does not carry the files the {card.id} card pins",
                hint="check the reference, or pull it under another name",
            )
        return card
    if not ref.capability or not ref.engine:
        raise InvalidParameterError(
            f"{wanted!r} is not in the catalog and the reference does not say what it is",
            hint="add cap= and engine= to the reference, or add the card first",
        )
    return card_from_mapping(
        {
            "id": wanted,
            "capability": ref.capability,
            "engine": ref.engine,
            "files": [f.model_dump() for f in ref.files],
            "sources": [{"type": "peer", "refs": [ref.format()]}],
            "user_added": True,
            "description": "fetched from peers",
        },
        origin="peer reference",
    )


def pull_from_peers(
    catalog: Catalog,
    cache: ModelCache,
    reference: str,
    *,
    model: str | None = None,
    progress: Progress | None = None,
    public: bool | None = None,
) -> tuple[ModelCard, ModelFiles, PeerFileSource]:
    """Fetch every file of ``reference`` into the cache; each lands only once its sha256 matched."""
    ref = parse_reference(reference)
    card = card_for_reference(catalog, model, ref)
    known = any(c.id == card.id for c in catalog.all())
    source = PeerFileSource([ref], home=cache.root, public=public)
    try:
        files = cache.ensure(card, [source], progress)
    finally:
        source.close()
    if not known and catalog.user_dir is not None:
        catalog.save_user_card(card)  # only once its files are verified in the cache
    return card, files, source
