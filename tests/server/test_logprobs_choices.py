"""OpenAI ``logprobs`` / ``top_logprobs`` and ``n > 1`` on fake models, via the ``openai`` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from serverkit import assert_error, chat_body, running

SCRIPTED = {"hello": -0.1, "hi": -2.5, "hey": -3.0}


@pytest.fixture
async def client(make_app: Any, fake_client: Any, tmp_path: Any) -> AsyncIterator[Any]:
    from fakecards import fake_card

    fake_client.catalog.register(
        fake_card(tmp_path / "w", "fake-lp", replies=["hello hello"], next_token_logprobs=SCRIPTED)
    )
    app = make_app()
    async with running(app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
        async with openai.AsyncOpenAI(
            base_url="http://localhost/v1", api_key="x", http_client=http, max_retries=0
        ) as sdk:
            yield sdk


async def test_chat_logprobs(client: Any) -> None:
    hi = [{"role": "user", "content": "x"}]
    response = await client.chat.completions.create(
        model="fake-lp", messages=hi, logprobs=True, top_logprobs=2
    )
    content = response.choices[0].logprobs.content
    assert [t.token for t in content] == ["hello", " hello"]
    first = content[0]
    assert first.bytes == list(b"hello")
    assert [t.token for t in first.top_logprobs] == ["hello", "hi"]
    assert first.top_logprobs[1].logprob == pytest.approx(-2.5)
    plain = await client.chat.completions.create(model="fake-lp", messages=hi, logprobs=True)
    assert plain.choices[0].logprobs.content[0].top_logprobs == []
    off = await client.chat.completions.create(model="fake-lp", messages=hi)
    assert off.choices[0].logprobs is None


async def test_chat_logprobs_streamed(client: Any) -> None:
    stream = await client.chat.completions.create(
        model="fake-lp",
        messages=[{"role": "user", "content": "x"}],
        logprobs=True,
        top_logprobs=1,
        stream=True,
    )
    tokens = [
        entry.token
        async for chunk in stream
        if chunk.choices and chunk.choices[0].logprobs
        for entry in chunk.choices[0].logprobs.content
    ]
    assert tokens == ["hello", " hello"]


async def test_text_completion_logprobs(client: Any, text_capable: None) -> None:
    response = await client.completions.create(
        model="fake-base", prompt="once", max_tokens=3, logprobs=2
    )
    logprobs = response.choices[0].logprobs
    assert logprobs.tokens == [" and", " so", " on"]
    assert logprobs.text_offset == [0, 4, 7]
    assert len(logprobs.token_logprobs) == 3 and len(logprobs.top_logprobs) == 3


async def test_n_choices(client: Any) -> None:
    response = await client.chat.completions.create(
        model="fake-chat", messages=[{"role": "user", "content": "a b c"}], n=3
    )
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert all(c.message.content == "a b c" for c in response.choices)
    assert response.usage.prompt_tokens == 3  # the prompt counts once
    assert response.usage.completion_tokens == 9


async def test_n_choices_streamed(client: Any) -> None:
    stream = await client.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "a b c"}],
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert len({chunk.id for chunk in chunks}) == 1
    texts = {0: "", 1: ""}
    finishes = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {0: "a b c", 1: "a b c"} and finishes == {0: "stop", 1: "stop"}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens == 3
    assert sum(1 for c in chunks if c.usage is not None) == 1


async def test_n_logprobs_streamed_stay_with_their_choice(client: Any) -> None:
    stream = await client.chat.completions.create(
        model="fake-lp",
        messages=[{"role": "user", "content": "x"}],
        n=2,
        stream=True,
        logprobs=True,
    )
    tokens: dict[int, list[str]] = {0: [], 1: []}
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.logprobs:
                tokens[choice.index] += [t.token for t in choice.logprobs.content]
    assert tokens == {0: ["hello", " hello"], 1: ["hello", " hello"]}


async def test_n_seeds_differ(client: Any) -> None:
    from terminus.engines.fake import FakeEngine

    await client.chat.completions.create(
        model="fake-chat", messages=[{"role": "user", "content": "x"}], n=2, seed=7
    )
    assert sorted(call.params.seed for call in FakeEngine.calls[-2:]) == [7, 8]


async def test_n_text_completions(client: Any, text_capable: None) -> None:
    response = await client.completions.create(model="fake-base", prompt="x", n=2)
    assert [c.text for c in response.choices] == [" and so on"] * 2
    stream = await client.completions.create(model="fake-base", prompt="x", n=2, stream=True)
    texts = {0: "", 1: ""}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
    assert texts == {0: " and so on", 1: " and so on"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 9}, "n"),
        ({"n": 0}, "n"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ],
)
async def test_bad_values_are_400(make_app: Any, extra: dict[str, Any], param: str) -> None:
    async with running(make_app()) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(**extra))
        assert assert_error(response, 400, "invalid_parameter")["param"] == param


async def test_n_beyond_the_concurrency_bound_is_429(make_app: Any) -> None:
    async with running(make_app(max_concurrent=2)) as http:
        for stream in (False, True):
            response = await http.post("/v1/chat/completions", json=chat_body(n=3, stream=stream))
            assert_error(response, 429)
            ok = await http.post("/v1/chat/completions", json=chat_body(n=2, stream=stream))
            assert ok.status_code == 200
        # every slot was given back
        assert (await http.post("/v1/chat/completions", json=chat_body(n=2))).status_code == 200
