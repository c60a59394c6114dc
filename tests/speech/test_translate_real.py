"""LLM translation on the real Qwen2.5-Coder-0.5B, and Whisper base (multilingual) speech."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from speechkit import SENTENCES, word_error_rate

from terminus import Terminus
from terminus.errors import UnsupportedLanguageError
from terminus.types import ContentDelta, Done

pytestmark = pytest.mark.real

QWEN = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="module")
def qwen_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminus]:
    home = tmp_path_factory.mktemp("terminus-translate")
    with Terminus(home=home, allow_download=False, memory_budget="4G") as client:
        client.load_model(QWEN, context_length=1024, parallel=1, threads=2)
        yield client


def test_llm_translates_english_to_french(qwen_client: Terminus) -> None:
    stream = qwen_client.translate_stream(
        "Good morning! How are you today?", "fr", "en", model=QWEN
    )
    events = list(stream)
    deltas = [e for e in events if isinstance(e, ContentDelta)]
    text = "".join(d.text for d in deltas).lower()
    assert len(deltas) > 1  # streamed, not one block
    assert "bonjour" in text and "aujourd" in text, text
    assert isinstance(events[-1], Done) and events[-1].stop_reason == "stop"


def test_llm_translates_french_to_english_with_detection(qwen_client: Terminus) -> None:
    """A 0.5B model has limits: "Le chat dort sur le canapé rouge." came back as "The chat
    is resting on the red canapé." (docs/speech.md lists such cases)."""
    result = qwen_client.translate("Je m'appelle Marie et j'habite à Paris.", "en", model=QWEN)
    assert result.source == "fr" and result.source_detected
    text = result.text.lower()
    assert "marie" in text and "live in paris" in text, result.text


def test_llm_refuses_unknown_or_identical_languages(qwen_client: Terminus) -> None:
    with pytest.raises(UnsupportedLanguageError):
        qwen_client.translate("hello there", "xx", "en", model=QWEN)
    with pytest.raises(UnsupportedLanguageError):
        qwen_client.translate("hello there", "en", "en", model=QWEN)


def test_whisper_base_from_two_part_package(
    speech_home: Path, spoken_sentences: list[bytes]
) -> None:
    """The multilingual model (model.bin joined from two packages) detects English and
    its translate task keeps English speech English."""
    with Terminus(home=speech_home, allow_download=False, memory_budget="4G") as client:
        heard = client.transcribe(spoken_sentences[8], model="whisper-base")
        assert heard.language == "en" and heard.language_probability > 0.9
        assert word_error_rate([SENTENCES[8]], [heard.text]) <= 0.2, heard.text
        translated = client.transcribe(spoken_sentences[8], model="whisper-base", task="translate")
        assert word_error_rate([SENTENCES[8]], [translated.text]) <= 0.2, translated.text


async def test_async_translate_stream(qwen_client: Terminus) -> None:
    from terminus import AsyncTerminus

    client = AsyncTerminus(qwen_client)
    # "Thank you very much!" → Spanish came back as "¡De nada!": an answer, not a translation.
    text = await client.translate_stream(
        "Good morning! How are you today?", "es", "en", model=QWEN
    ).text
    assert "buen" in text.lower() and "cómo" in text.lower(), text
    result = await client.translate("Thank you very much!", "fr", "en", model=QWEN)
    assert "merci" in result.text.lower(), result.text
