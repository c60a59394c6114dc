"""The Python API's shape: model as a keyword (old positional calls warn), model handles,
``.text`` as an attribute everywhere, events importable from ``terminus``, readable prints."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import terminus
from terminus import AsyncTerminus, Terminus
from terminus.models.card import ModelCard
from terminus.rag.types import ChunkPosition, Citation, SearchResult
from terminus.types import Stats

FakeCardFactory = Callable[..., ModelCard]


@pytest.fixture
def two_models(fake_client: Terminus, make_fake_card: FakeCardFactory) -> Terminus:
    fake_client.catalog.register(make_fake_card("fake-other", replies=["from the other"]))
    fake_client.catalog.register(make_fake_card("fake-embed", capability="embed", dimensions=8))
    fake_client.default_model = "fake-chat"
    return fake_client


def test_model_is_a_keyword_and_defaults_to_the_configured_model(two_models: Terminus) -> None:
    assert two_models.completion("echo me").text == "echo me"  # fake-chat echoes
    assert two_models.completion("echo me", model="fake-other").text == "from the other"
    assert two_models.embed(["a", "b"], model="fake-embed").vectors.shape == (2, 8)


def test_the_old_positional_model_still_works_with_a_deprecation(two_models: Terminus) -> None:
    with pytest.warns(DeprecationWarning, match=r"completion\(model, \.\.\.\) is deprecated"):
        stream = two_models.completion("fake-other", "hi")
    assert stream.text == "from the other"
    with pytest.warns(DeprecationWarning, match="model="):
        assert two_models.completion(None, "echo me").text == "echo me"
    with pytest.warns(DeprecationWarning):
        assert two_models.embed("fake-embed", "a").vectors.shape == (1, 8)
    with pytest.raises(TypeError, match="both positionally and as model="):
        two_models.completion("fake-other", "hi", model="fake-chat")


def test_a_model_handle_names_the_model_once(two_models: Terminus) -> None:
    other = two_models.model("fake-other")
    assert other.completion("hi").text == "from the other"
    assert other.chat([{"role": "user", "content": "hi"}]).text == "from the other"
    assert two_models.model().completion("echo me").text == "echo me"  # the default
    assert two_models.model("fake-embed").embed("x").dimensions == 8
    assert "fake-other" in repr(other)


def test_text_is_an_attribute_and_the_old_call_warns(two_models: Terminus) -> None:
    stream = two_models.completion("echo me")
    assert stream.text == "echo me" and isinstance(stream.text, str)
    assert stream.text.upper() == "ECHO ME"
    with pytest.warns(DeprecationWarning, match=r"\.text\(\) is deprecated"):
        assert stream.text() == "echo me"
    assert stream.result().text == "echo me"  # Completion: an attribute, as before


async def test_async_text_is_awaited_as_an_attribute(two_models: Terminus) -> None:
    client = AsyncTerminus(two_models)
    assert await client.completion("echo me").text == "echo me"
    assert await client.model("fake-other").completion("hi").text == "from the other"
    with pytest.warns(DeprecationWarning, match=r"\.text\(\) is deprecated"):
        assert await client.completion("echo me").text() == "echo me"
    with pytest.warns(DeprecationWarning):
        stream = client.completion("fake-other", "hi")
    assert await stream.text == "from the other"
    assert (await client.embed("x", model="fake-embed")).dimensions == 8


def test_event_classes_and_evaluate_import_from_the_package() -> None:
    from terminus import ContentDelta, Done, Stats, ThinkingDelta, ToolCallEvent, evaluate
    from terminus.eval.api import evaluate as deep

    assert evaluate is deep
    assert {c.__name__ for c in (ContentDelta, ThinkingDelta, ToolCallEvent, Stats, Done)} == {
        "ContentDelta",
        "ThinkingDelta",
        "ToolCallEvent",
        "Stats",
        "Done",
    }
    assert set(terminus.__all__) <= set(dir(terminus))


def test_events_match_by_class(two_models: Terminus) -> None:
    from terminus import ContentDelta, Done, Stats

    kinds = []
    for event in two_models.completion("echo me"):
        match event:
            case ContentDelta(text=text):
                kinds.append(("content", text))
            case Stats():
                kinds.append(("stats", ""))
            case Done(stop_reason=reason):
                kinds.append(("done", reason))
    assert kinds[-2:] == [("stats", ""), ("done", "stop")]
    assert "".join(t for k, t in kinds if k == "content") == "echo me"


def test_stats_print_like_the_cli_line() -> None:
    stats = Stats(
        prompt_tokens=12,
        completion_tokens=30,
        time_to_first_token_s=0.045,
        tokens_per_second=98.24,
        total_s=0.351,
    )
    assert str(stats) == "12 prompt + 30 completion tokens, first token 45 ms, 98.2 tok/s, 0.35 s"
    assert str(Stats()) == "0 prompt + 0 completion tokens, 0.00 s"


def test_search_hits_print_compactly() -> None:
    hit = SearchResult(
        score=0.81234,
        chunk_id=7,
        document_id="3f2a",
        source="notes.md",
        text="The launch window opens at 09:30 UTC and closes forty minutes later, weather permitting.",
        position=ChunkPosition(index=3, start=120, end=480),
    )
    assert repr(hit) == (
        "SearchResult(0.812, 'notes.md#3 [120:480]', "
        "'The launch window opens at 09:30 UTC and closes forty minut…')"
    )
    assert str(hit).startswith("0.812  notes.md#3 [120:480]  The launch window")
    assert repr(Citation(number=2, result=hit)) == "Citation([2] 'notes.md#3 [120:480]')"
    assert "chunk_id" not in repr([hit, hit])
