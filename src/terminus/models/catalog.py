"""The catalog: cards shipped with Terminus, plus cards users add to their home."""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

from terminus.errors import InvalidParameterError, ModelNotFoundError
from terminus.models.card import MODEL_ID_RE, ModelCard, dump_card_toml, load_card


def builtin_cards() -> list[ModelCard]:
    folder = resources.files("terminus.models") / "cards"
    cards = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            with resources.as_file(entry) as path:
                cards.append(load_card(Path(path)))
    return cards


class Catalog:
    def __init__(self, user_dir: Path | None = None, *, include_builtin: bool = True) -> None:
        self.user_dir = user_dir
        self._builtin = builtin_cards() if include_builtin else []
        self._registered: dict[str, ModelCard] = {}
        self._user_key: tuple[tuple[str, int, int], ...] = ()
        self._user_cache: list[ModelCard] = []

    def all(self) -> list[ModelCard]:
        cards: dict[str, ModelCard] = {c.id: c for c in self._builtin}
        cards.update({c.id: c for c in self._user_cards()})
        cards.update(self._registered)
        return list(cards.values())

    def get(self, name: str) -> ModelCard:
        wanted = name.strip().lower()
        cards = self.all()
        for card in cards:
            if card.id == wanted:
                return card
        for card in cards:
            if wanted in (a.lower() for a in card.aliases):
                return card
        names = [n for c in cards for n in c.names()]
        close = difflib.get_close_matches(wanted, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `terminus models list`"
        from terminus.models.hub_catalog import find_entry
        from terminus.models.hub_ref import is_hub_ref

        if is_hub_ref(name) or find_entry(name) is not None:
            hint = f"pull it first: terminus models pull {name.strip()}"
        raise ModelNotFoundError(f"unknown model {name!r}", hint=hint)

    def register(self, card: ModelCard) -> None:
        """Add a card for this process only (tests, programmatic use)."""
        self._registered[card.id] = card

    def check_new_id(self, card_id: str) -> None:
        """Refuse an id a new user card cannot take: malformed, or naming a built-in model."""
        if not MODEL_ID_RE.match(card_id):
            raise InvalidParameterError(
                f"invalid model id {card_id!r}", hint="lowercase letters, digits, '.', '_' and '-'"
            )
        try:
            existing = self.get(card_id)
        except ModelNotFoundError:
            return
        if not existing.user_added:
            raise InvalidParameterError(f"{card_id!r} is a built-in model id; choose another id")

    def save_user_card(self, card: ModelCard) -> Path:
        if self.user_dir is None:
            raise InvalidParameterError("this catalog has no user card folder")
        if any(c.id == card.id for c in self._builtin):
            raise InvalidParameterError(f"{card.id!r} is a built-in model id; choose another")
        self.user_dir.mkdir(parents=True, exist_ok=True)
        path = self.user_dir / f"{card.id}.toml"
        tmp = path.with_suffix(f".toml.{os.getpid()}.tmp")
        tmp.write_text(dump_card_toml(card), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def delete_user_card(self, card_id: str) -> bool:
        if self.user_dir is None:
            return False
        path = self.user_dir / f"{card_id}.toml"
        existed = path.exists()
        path.unlink(missing_ok=True)
        self._registered.pop(card_id, None)
        return existed

    def _user_cards(self) -> list[ModelCard]:
        """User cards, re-parsed only when a file changed (lookups happen per request)."""
        if self.user_dir is None or not self.user_dir.is_dir():
            return []
        paths = sorted(self.user_dir.glob("*.toml"))
        key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
        if key != self._user_key:
            self._user_cache = [load_card(p) for p in paths]
            self._user_key = key
        return self._user_cache
