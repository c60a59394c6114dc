"""Built-in model cards, the TOML writer, user cards and card validation."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from terminus import Terminus
from terminus.errors import InvalidParameterError, ModelNotFoundError, NotGGUFError
from terminus.models.card import (
    HttpSource,
    LocalSource,
    ModelCard,
    ModelFile,
    PackageSource,
    card_from_mapping,
    dump_card_toml,
    load_card,
)
from terminus.models.catalog import Catalog, builtin_cards
from terminus.types.common import Capability

BUILTIN = builtin_cards()
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _round_trip(card: ModelCard) -> ModelCard:
    return card_from_mapping(tomllib.loads(dump_card_toml(card)))


# --- built-in cards ----------------------------------------------------------------------


def test_builtin_cards_load() -> None:
    assert len(BUILTIN) >= 9
    ids = {c.id for c in BUILTIN}
    assert {"smollm2-135m-instruct", "whisper-base", "all-minilm-l6-v2"} <= ids


def test_ids_and_aliases_are_unique_across_the_catalog() -> None:
    names = [n.lower() for card in BUILTIN for n in card.names()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []


@pytest.mark.parametrize("card", BUILTIN, ids=lambda c: c.id)
def test_builtin_card_pins_every_file(card: ModelCard) -> None:
    assert card.files, card.id
    assert len({f.name for f in card.files}) == len(card.files)
    for file in card.files:
        assert HEX64.match(file.sha256), file
        assert file.size is not None and file.size > 0, file
    assert card.size == sum(f.size or 0 for f in card.files)


@pytest.mark.parametrize("card", BUILTIN, ids=lambda c: c.id)
def test_every_builtin_file_has_a_source(card: ModelCard) -> None:
    for file in card.files:
        providers = [
            s
            for s in card.sources
            if file.name
            in (
                s.files
                if isinstance(s, PackageSource)
                else s.urls
                if isinstance(s, HttpSource)
                else s.paths
            )
        ]
        assert providers, f"{card.id}: nothing provides {file.name}"
    for source in card.sources:
        if isinstance(source, PackageSource):
            # pinned, so the bytes match the card's sha256
            assert all("==" in p for p in source.packages), source.packages
        if isinstance(source, HttpSource):
            assert all(u.startswith("https://") for u in source.urls.values())


@pytest.mark.parametrize("card", BUILTIN, ids=lambda c: c.id)
def test_builtin_card_is_well_formed(card: ModelCard) -> None:
    assert re.match(r"^[a-z0-9][a-z0-9._-]*$", card.id)
    assert card.name and card.license and card.description
    assert isinstance(card.capability, Capability)
    assert not card.user_added


def test_default_alias() -> None:
    catalog = Catalog()
    assert catalog.get("default").id == "smollm2-135m-instruct"
    assert catalog.get("DEFAULT").id == "smollm2-135m-instruct"
    with Terminus() as client:
        assert client.catalog.get(client.default_model).id == "smollm2-135m-instruct"


def test_chat_cards_use_a_chat_engine() -> None:
    for card in BUILTIN:
        if card.capability in (Capability.CHAT, Capability.COMPLETION):
            assert card.engine == "llamacpp" and card.format == "gguf", card.id


# --- the TOML writer -------------------------------------------------------------------------


@pytest.mark.parametrize("card", BUILTIN, ids=lambda c: c.id)
def test_dump_round_trips_builtin_cards(card: ModelCard) -> None:
    assert _round_trip(card) == card


def test_dump_round_trips_a_user_card() -> None:
    card = ModelCard(
        id="my-model",
        name='A "quoted" name\nwith a newline',
        aliases=("mine", "m2"),
        capability=Capability.CHAT,
        engine="llamacpp",
        files=(
            ModelFile(name="m.gguf", sha256="a" * 64, size=0),
            ModelFile(name="sub/extra.bin", sha256="b" * 64),
        ),
        sources=(
            LocalSource(paths={"m.gguf": "/tmp/some dir/m.gguf"}),
            HttpSource(urls={"sub/extra.bin": "https://example.com/x?y=1&z=2"}),
            PackageSource(packages=("p==1",), files={"m.gguf": ("p/a", "p/b")}),
        ),
        chat_template="{% for m in messages %}{{ m.content }}\\n{% endfor %}",
        defaults={
            "context_length": 4096,
            "temperature": 0.25,
            "epsilon": 1e-5,
            "stop": ["</s>", "\u00e9t\u00e9"],
            "native": False,
            "tool_arguments": {"city": "Paris", "days": 3},
        },
        user_added=True,
    )
    assert _round_trip(card) == card


@pytest.mark.parametrize("key", ["llama.rope_scale", "stop word", "é"])
def test_dump_quotes_keys_that_need_it(key: str) -> None:
    card = ModelCard(
        id="k",
        capability=Capability.CHAT,
        engine="fake",
        files=(ModelFile(name="m", sha256="c" * 64),),
        defaults={key: 1},
    )
    assert _round_trip(card) == card


# --- validation ---------------------------------------------------------------------------------


def _mapping(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "ok-card",
        "capability": "chat",
        "engine": "fake",
        "files": [{"name": "m.gguf", "sha256": "d" * 64, "size": 3}],
        "sources": [{"type": "local", "paths": {"m.gguf": "/x/m.gguf"}}],
    }
    data.update(overrides)
    return data


def test_a_valid_mapping() -> None:
    card = card_from_mapping(_mapping())
    assert isinstance(card.sources[0], LocalSource)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"sources": [{"type": "local", "paths": {"other.gguf": "/x"}}]}, "unknown files"),
        (
            {"sources": [{"type": "package", "packages": ["p==1"], "files": {"nope": ["p/x"]}}]},
            "unknown files",
        ),
        ({"sources": [{"type": "http", "urls": {"m.gguf": "u", "x": "u"}}]}, "unknown files"),
        ({"sources": [{"type": "ftp", "urls": {}}]}, "sources"),
        ({"files": [{"name": "m.gguf", "sha256": "D" * 64}]}, "sha256"),
        ({"files": [{"name": "m.gguf", "sha256": "d" * 63}]}, "sha256"),
        ({"files": [{"name": "m.gguf", "sha256": "d" * 64, "size": -1}]}, "size"),
        (
            {
                "files": [{"name": "/abs.gguf", "sha256": "d" * 64}],
                "sources": [{"type": "local", "paths": {"/abs.gguf": "/x"}}],
            },
            "name",
        ),
        ({"capability": "telepathy"}, "capability"),
        ({"id": "Has Spaces"}, "invalid model id"),
        ({"id": "-leading-dash"}, "invalid model id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_cards_are_rejected(overrides: dict[str, Any], match: str | None) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        card_from_mapping(_mapping(**overrides))


def test_load_card_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('id = "bad"\ncapability = "chat"\nengine = "fake"\n')
    with pytest.raises(InvalidParameterError, match="bad.toml"):
        load_card(path)


# --- user cards ------------------------------------------------------------------------------------


def _user_card(card_id: str = "my-card") -> ModelCard:
    return ModelCard(
        id=card_id,
        aliases=("mine",),
        capability=Capability.CHAT,
        engine="fake",
        files=(ModelFile(name="m.gguf", sha256="e" * 64, size=10),),
        defaults={"context_length": 128},
        user_added=True,
    )


def test_user_card_save_and_delete(tmp_path: Path) -> None:
    folder = tmp_path / "cards"
    catalog = Catalog(folder)
    path = catalog.save_user_card(_user_card())
    assert path == folder / "my-card.toml" and path.is_file()
    assert [p.name for p in folder.iterdir()] == ["my-card.toml"]  # no temp file left
    # A fresh catalog (another process) sees it, by id and alias.
    again = Catalog(folder)
    assert again.get("mine") == _user_card()
    assert "my-card" in {c.id for c in again.all()}
    assert again.delete_user_card("my-card") is True
    assert again.delete_user_card("my-card") is False
    with pytest.raises(ModelNotFoundError):
        Catalog(folder).get("my-card")


def test_user_card_cannot_shadow_a_builtin(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "cards")
    with pytest.raises(InvalidParameterError, match="built-in"):
        catalog.save_user_card(_user_card("smollm2-135m-instruct"))
    assert not (tmp_path / "cards").exists()


def test_catalog_without_a_user_folder() -> None:
    catalog = Catalog(None)
    with pytest.raises(InvalidParameterError):
        catalog.save_user_card(_user_card())
    assert catalog.delete_user_card("my-card") is False


def test_registered_cards_win_and_are_process_local(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "cards", include_builtin=False)
    assert catalog.all() == []
    catalog.register(_user_card("reg"))
    assert catalog.get("reg").id == "reg"
    assert Catalog(tmp_path / "cards", include_builtin=False).all() == []


# --- adding your own GGUF ------------------------------------------------------------------------------


def test_models_add_writes_a_card_and_a_blob(tmp_path: Path) -> None:
    from test_gguf import TINY_KVS, TINY_TENSORS, make_gguf

    data, _ = make_gguf(TINY_KVS, TINY_TENSORS)
    gguf = tmp_path / "Tiny-Model.Q4.gguf"
    gguf.write_bytes(data)
    with Terminus() as client:
        card = client.models.add(gguf)
        assert card.id == "tiny-model.q4"
        assert card.user_added and card.architecture == "llama" and card.name == "Tiny Test"
        assert card.defaults["context_length"] == 128
        assert client.cache.is_cached(card)
        link = client.home / "models" / card.id / gguf.name
        assert link.is_symlink() and link.read_bytes() == data
        # Saved to the user's folder, so another client sees the same card.
        assert Terminus().catalog.get(card.id) == card
        with pytest.raises(InvalidParameterError, match="built-in"):
            client.models.add(gguf, model_id="smollm2")
        freed = client.models.remove(card.id, forget=True)
        assert freed == len(data)
        with pytest.raises(ModelNotFoundError):
            client.catalog.get(card.id)


def test_models_add_accepts_any_file_name(tmp_path: Path) -> None:
    from test_gguf import TINY_KVS, TINY_TENSORS, make_gguf

    data, _ = make_gguf(TINY_KVS, TINY_TENSORS)
    gguf = tmp_path / "My Tiny Model (v2).gguf"
    gguf.write_bytes(data)
    with Terminus() as client:
        try:
            card = client.models.add(gguf)
        finally:
            leftovers = [p.name for p in (client.home / "blobs").iterdir() if "." in p.name]
            assert leftovers == []
        assert card.id == "my-tiny-model-v2"
        assert client.cache.files(card).main.read_bytes() == data


@pytest.mark.parametrize("name", ["../escape.gguf", "a/../../b.gguf", ".."])
def test_file_names_cannot_escape_the_model_folder(name: str) -> None:
    with pytest.raises(InvalidParameterError):
        card_from_mapping(
            _mapping(
                files=[{"name": name, "sha256": "d" * 64}],
                sources=[{"type": "local", "paths": {name: "/x"}}],
            )
        )


def test_models_add_refuses_a_non_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("not a model")
    with Terminus() as client:
        with pytest.raises(NotGGUFError):
            client.models.add(path)
        assert not (client.home / "cards").exists()
        assert not (client.home / "blobs").exists()


@pytest.mark.parametrize("taken", ["smollm2-135m-instruct", "smollm2", "QWEN"])
def test_new_ids_may_not_shadow_a_builtin_id_or_alias(tmp_path: Path, taken: str) -> None:
    with pytest.raises(InvalidParameterError, match="built-in"):
        Catalog(tmp_path).check_new_id(taken.lower())


@pytest.mark.parametrize("bad", ["", "Upper", "-leading", "has space", "a/b"])
def test_new_ids_must_be_well_formed(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidParameterError, match="invalid model id"):
        Catalog(tmp_path).check_new_id(bad)


def test_a_fresh_id_is_accepted(tmp_path: Path) -> None:
    Catalog(tmp_path).check_new_id("my-tuned-model")
