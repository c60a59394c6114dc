"""The CTranslate2 NMT engine end to end on a tiny model built by the test (see nmt_builder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nmt_builder import build_nmt_model

from terminus import Terminus
from terminus.errors import CapabilityError, ModelNotFoundError, UnsupportedLanguageError
from terminus.types import ContentDelta, Done


@pytest.fixture
def nmt_client(tmp_path: Path) -> Terminus:
    card = build_nmt_model(tmp_path / "tiny-nmt")
    client = Terminus(home=tmp_path / "home", allow_download=False, memory_budget="1G")
    client.catalog.register(card)
    return client


def test_translates_word_for_word_through_the_real_engine(nmt_client: Terminus) -> None:
    with nmt_client as client:
        result = client.translate("the small cat sleeps", "fr", "en", model="tiny-nmt-en-fr")
        assert result.text == "le petit chat dort"
        assert (result.source, result.target, result.source_detected) == ("en", "fr", False)
        # Word order follows the input: the decoder really attends to the source.
        assert client.translate("cat the", "fr", "en", model="tiny-nmt-en-fr").text == "chat le"
        info = next(i for i in client.loaded_models() if i.id == "tiny-nmt-en-fr")
        assert info.engine == "nmt-ct2" and info.memory_bytes > 0


def test_streams_a_sentence_at_a_time(nmt_client: Terminus) -> None:
    with nmt_client as client:
        stream = client.translate_stream(
            "hello world. the dog eats.\n\ngood morning", "fr", "en", model="tiny-nmt-en-fr"
        )
        events = list(stream)
    deltas = [e.text for e in events if isinstance(e, ContentDelta)]
    assert deltas == [
        "bonjour monde.",
        " le chien ⁇",
        " bon matin",
    ]  # "eats." is not a word it knows
    assert isinstance(events[-1], Done) and events[-1].stop_reason == "stop"


def test_source_is_detected_when_not_given(nmt_client: Terminus) -> None:
    with nmt_client as client:
        result = client.translate("hello world", "fr", model="tiny-nmt-en-fr")
    assert result.source == "en" and result.source_detected


def test_unsupported_pair_and_wrong_model(nmt_client: Terminus) -> None:
    with nmt_client as client:
        with pytest.raises(UnsupportedLanguageError, match="en→de"):
            client.translate("hello world", "de", "en", model="tiny-nmt-en-fr")
        with pytest.raises(UnsupportedLanguageError, match="fr→en"):
            client.translate("bonjour le monde", "en", "fr", model="tiny-nmt-en-fr")
        assert client.translate("hello", "fr", "en", model="tiny-nmt-en-fr").text == "bonjour"
        with pytest.raises(CapabilityError):
            client.transcribe(b"RIFF", model="tiny-nmt-en-fr")


def test_add_a_converted_folder(tmp_path: Path) -> None:
    from terminus.client.nmt_models import add_nmt_model, online_nmt_models
    from terminus.errors import InvalidModelFileError

    assert {"opus-mt-en-fr", "opus-mt-fr-en", "opus-mt-en-de"} <= {
        m.id for m in online_nmt_models()
    }
    folder = tmp_path / "converted"
    build_nmt_model(folder)
    with Terminus(home=tmp_path / "home", allow_download=False, memory_budget="1G") as client:
        card = add_nmt_model(client.catalog, client.cache, folder, model_id="opus-mt-en-fr")
        assert card.defaults == {"source": "en", "targets": ["fr"]}  # from the online list
        assert (
            client.translate("hello world", "fr", "en", model="opus-mt-en-fr").text
            == "bonjour monde"
        )
        (folder / "target.spm").unlink()
        with pytest.raises(InvalidModelFileError, match="target.spm"):
            add_nmt_model(
                client.catalog, client.cache, folder, model_id="other", source="en", targets=("fr",)
            )
        with pytest.raises(ModelNotFoundError):
            client.catalog.get("other")  # nothing half-added
