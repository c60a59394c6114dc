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
            base_url="http://testserver/v1", api_key="x", http_client=http, max_retries=0
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


async def test_n_seeds_differ(client: Any) -> None:
    from terminus.engines.fake import FakeEngine

    await client.chat.completions.create(
        model="fake-chat", messages=[{"role": "user", "content": "x"}], n=2, seed=7
    )
    assert sorted(call.params.seed for call in FakeEngine.calls[-2:]) == [7, 8]


async def test_n_text_completions(client: Any, text_capable: None) -> None:
    response = await client.completions.create(model="fake-base", prompt="x", n=2)
    assert [c.text for c in response.choices] == [" and so on"] * 2


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
        response = await http.post("/v1/chat/completions", json=chat_body(n=3))
        assert_error(response, 429)
        assert (await http.post("/v1/chat/completions", json=chat_body(n=2))).status_code == 200
