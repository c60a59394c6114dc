"""Ollama's native API on fake models, through the official ``ollama`` client (in-process)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import ollama
import pytest
from fastapi import FastAPI
from serverkit import running

from terminus.client.sync import Terminus


@pytest.fixture
async def app(make_app: Any) -> AsyncIterator[FastAPI]:
    app = make_app()
    async with running(app):
        yield app


@pytest.fixture
def client(app: FastAPI) -> ollama.AsyncClient:
    return ollama.AsyncClient(host="http://localhost", transport=httpx.ASGITransport(app=app))


@pytest.fixture
def http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


def ndjson(body: str) -> list[dict[str, Any]]:
    assert body.endswith("\n"), body[-100:]
    return [json.loads(line) for line in body.splitlines()]


async def test_chat_non_stream(client: ollama.AsyncClient) -> None:
    response = await client.chat(
        "fake-chat:latest", messages=[{"role": "user", "content": "the sky is blue"}], stream=False
    )
    assert response.message.role == "assistant"
    assert response.message.content == "the sky is blue"
    assert response.done and response.done_reason == "stop"
    assert response.model == "fake-chat:latest"
    assert response.prompt_eval_count == 4 and response.eval_count == 4
    assert response.total_duration and response.total_duration > 0


async def test_chat_stream(client: ollama.AsyncClient) -> None:
    parts = [
        part
        async for part in await client.chat(
            "fake-chat", messages=[{"role": "user", "content": "one two three"}], stream=True
        )
    ]
    assert "".join(p.message.content or "" for p in parts) == "one two three"
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 3


async def test_ndjson_framing(http: httpx.AsyncClient) -> None:
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "a b"}]}
    response = await http.post("/api/chat", json=body)  # stream is Ollama's default
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson(response.text)
    assert lines[-1]["done"] is True and "created_at" in lines[-1]
    assert {"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"} <= set(
        lines[-1]
    )


async def test_options_map_to_sampling(client: ollama.AsyncClient) -> None:
    from terminus.engines.fake import FakeEngine

    await client.chat(
        "fake-chat",
        messages=[{"role": "user", "content": "a b c d e f"}],
        options={
            "temperature": 0.3,
            "top_p": 0.8,
            "top_k": 7,
            "seed": 42,
            "num_predict": 2,
            "stop": ["zz"],
            "repeat_penalty": 1.2,
            "num_thread": 3,  # hardware: accepted, no effect
        },
    )
    params = FakeEngine.calls[-1].params
    assert (params.temperature, params.top_p, params.top_k, params.seed) == (0.3, 0.8, 7, 42)
    assert params.max_tokens == 2 and params.stop == ("zz",) and params.repeat_penalty == 1.2


async def test_generate_with_system_and_raw(client: ollama.AsyncClient, text_capable: None) -> None:
    from terminus.engines.fake import FakeEngine

    answer = await client.generate("fake-chat", "hello world", system="Be brief.")
    assert answer.response == "hello world" and answer.done
    messages = FakeEngine.calls[-1].messages
    assert [m.role for m in messages] == ["system", "user"]
    raw = await client.generate("fake-base", "once upon", raw=True)
    assert raw.response == " and so on"
    base = await client.generate("fake-base", "once upon")  # a base model: always raw
    assert base.response == " and so on"


async def test_tools_round_trip(client: ollama.AsyncClient) -> None:
    from terminus.engines.fake import FakeEngine

    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    messages += [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "22 C", "tool_name": "get_weather"},
    ]
    await client.chat("fake-chat", messages=messages, tools=[tool])
    sent = FakeEngine.calls[-1]
    assert sent.tools[0].name == "get_weather"
    call = sent.messages[1].tool_calls[0]
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}
    result = sent.messages[2]
    assert result.role == "tool" and result.tool_call_id == call.id
    assert result.name == "get_weather"


async def test_format_schema_and_json(client: ollama.AsyncClient) -> None:
    from terminus.engines.fake import FakeEngine

    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    response = await client.chat(
        "fake-chat", messages=[{"role": "user", "content": "x"}], format=schema
    )
    assert json.loads(response.message.content or "") == {"answer": "x"}
    await client.chat("fake-chat", messages=[{"role": "user", "content": "x"}], format="json")
    fmt = FakeEngine.calls[-1].response_format
    assert fmt is not None and fmt.type == "json_object"


async def test_embed_equals_terminus_embed(
    client: ollama.AsyncClient, fake_client: Terminus
) -> None:
    texts = ["the cat sat", "tax filings are due"]
    answer = await client.embed("fake-embed", texts)
    expected = fake_client.embed("fake-embed", texts).vectors
    assert np.allclose(np.array(answer.embeddings), expected, atol=1e-6)
    assert answer.prompt_eval_count and answer.prompt_eval_count > 0
    legacy = await client.embeddings("fake-embed", "the cat sat")
    assert np.allclose(np.array(legacy.embedding), expected[0], atol=1e-6)


async def test_tags_ps_show(client: ollama.AsyncClient) -> None:
    await client.chat("fake-chat", messages=[{"role": "user", "content": "load"}])
    tags = await client.list()
    names = {m.model for m in tags.models}
    assert "fake-chat:latest" in names  # cached through its load
    assert "fake-slow:latest" not in names  # never fetched: not on disk
    running_models = await client.ps()
    assert [m.model for m in running_models.models] == ["fake-chat:latest"]
    shown = await client.show("fake-chat")
    assert shown.capabilities == ["completion", "tools"]
    assert shown.details is not None and shown.details.format == "fake"


async def test_pull_copy_create_delete(client: ollama.AsyncClient, fake_client: Terminus) -> None:
    statuses = [p.status async for p in await client.pull("fake-slow", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert any(s and s.startswith("pulling ") and s != "pulling manifest" for s in statuses)
    assert "fake-slow:latest" in {m.model for m in (await client.list()).models}
    assert (await client.pull("fake-base")).status == "success"  # not streamed: one answer

    await client.copy("fake-slow", "my-slow")
    assert fake_client.models.get("my-slow").user_added
    created = await client.create(
        "terse", from_="fake-slow", system="Answer in one word.", parameters={"temperature": 0.1}
    )
    assert created.status == "success"
    card = fake_client.models.get("terse")
    assert card.defaults["system_prompt"] == "Answer in one word."
    assert card.defaults["temperature"] == 0.1
    shown = await client.show("terse")
    assert shown.parameters is not None and "temperature" in shown.parameters

    await client.delete("my-slow")
    with pytest.raises(ollama.ResponseError) as gone:
        await client.show("my-slow")
    assert gone.value.status_code == 404
    assert fake_client.cache.is_cached(fake_client.models.get("fake-slow"))  # shared blob kept


async def test_version_and_head(http: httpx.AsyncClient, client: ollama.AsyncClient) -> None:
    assert (await http.head("/")).status_code == 200
    version = (await http.get("/api/version")).json()
    assert version["version"].count(".") == 2 and "terminus" in version


async def test_load_and_unload_with_empty_requests(
    client: ollama.AsyncClient, fake_client: Terminus
) -> None:
    loaded = await client.generate("fake-chat", "")
    assert loaded.done_reason == "load"
    assert "fake-chat" in {m.id for m in fake_client.loaded_models()}
    unloaded = await client.generate("fake-chat", "", keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert "fake-chat" not in {m.id for m in fake_client.loaded_models()}


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        (
            "/api/chat",
            {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
            404,
            "nope",
        ),
        ("/api/generate", {"model": "nope", "prompt": "x"}, 404, "nope"),
        ("/api/embed", {"model": "nope", "input": "x"}, 404, "nope"),
        ("/api/show", {"model": "nope"}, 404, "nope"),
        ("/api/pull", {"model": "nope"}, 404, "nope"),
        ("/api/copy", {"source": "nope", "destination": "x"}, 404, "nope"),
        ("/api/chat", {"model": "fake-chat", "messages": "hi"}, 400, "messages"),
        (
            "/api/chat",
            {
                "model": "fake-chat",
                "messages": [{"role": "user", "content": "x"}],
                "options": {"mirostat": 2},
            },
            400,
            "options.mirostat",
        ),
        ("/api/generate", {"model": "fake-chat", "prompt": "x", "suffix": "y"}, 400, "suffix"),
        (
            "/api/chat",
            {
                "model": "fake-chat",
                "messages": [{"role": "user", "content": "x", "images": ["aGk="]}],
            },
            400,
            "messages.0.images",
        ),
        (
            "/api/chat",
            {"model": "fake-chat", "messages": [], "keep_alive": "soon"},
            400,
            "keep_alive",
        ),
        (
            "/api/chat",
            {"model": "fake-embed", "messages": [{"role": "user", "content": "x"}]},
            400,
            "embed",
        ),
        ("/api/embed", {"model": "fake-chat", "input": "x"}, 400, "embedding"),
        ("/api/embed", {"model": "fake-embed", "input": "x", "truncate": False}, 400, "truncate"),
        ("/api/create", {"model": "x", "from": "fake-chat", "quantize": "q4_K_M"}, 400, "quantize"),
        (
            "/api/create",
            {"model": "x", "from": "fake-chat", "parameters": {"mirostat": 1}},
            400,
            "mirostat",
        ),
        ("/api/chat", "{not json", 400, "JSON"),
    ],
)
async def test_errors_in_ollamas_shape(
    http: httpx.AsyncClient, path: str, body: Any, status: int, needle: str
) -> None:
    if isinstance(body, str):
        headers = {"content-type": "application/json"}
        response = await http.post(path, content=body, headers=headers)
    else:
        response = await http.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert set(error) == {"error"} and isinstance(error["error"], str)
    assert needle in error["error"]


async def test_unknown_model_through_the_client(client: ollama.AsyncClient) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        await client.chat("no-such-model", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404 and "no-such-model" in missing.value.error


def _failing_chat(self: Any, request: Any, cancel: Any) -> Any:
    from terminus.errors import EngineError
    from terminus.types import ContentDelta

    yield ContentDelta(text="partial")
    raise EngineError("the engine fell over")


async def test_failure_mid_stream_is_an_error_line(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus.engines.fake import FakeChatModel

    monkeypatch.setattr(FakeChatModel, "chat", _failing_chat)
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}]}
    lines = ndjson((await http.post("/api/chat", json=body)).text)
    assert lines[0]["message"]["content"] == "partial"
    assert lines[-1] == {"error": "the engine fell over"}
    whole = await http.post("/api/chat", json={**body, "stream": False})
    assert whole.status_code == 500 and whole.json() == {"error": "the engine fell over"}


async def test_num_ctx_beyond_the_loaded_context(client: ollama.AsyncClient) -> None:
    hi = [{"role": "user", "content": "hi"}]
    await client.chat("fake-chat", messages=hi, options={"num_ctx": 128})  # within: fine
    with pytest.raises(ollama.ResponseError) as bad:
        await client.chat("fake-chat", messages=hi, options={"num_ctx": 100_000})
    assert bad.value.status_code == 400 and "options.num_ctx" in bad.value.error


async def test_think_false_hides_thinking(
    client: ollama.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus.engines.fake import FakeChatModel
    from terminus.types import ContentDelta, Done, Stats, ThinkingDelta

    def thinking_chat(self: Any, request: Any, cancel: Any) -> Any:
        yield ThinkingDelta(text="let me see")
        yield ContentDelta(text="4")
        yield Stats(prompt_tokens=1, completion_tokens=2)
        yield Done(stop_reason="stop")

    monkeypatch.setattr(FakeChatModel, "chat", thinking_chat)
    hi = [{"role": "user", "content": "2+2?"}]
    shown = await client.chat("fake-chat", messages=hi, think=True)
    assert shown.message.thinking == "let me see" and shown.message.content == "4"
    hidden = await client.chat("fake-chat", messages=hi, think=False)
    assert hidden.message.thinking is None and hidden.message.content == "4"


async def test_keep_alive_goes_to_the_model_manager(
    client: ollama.AsyncClient, fake_client: Terminus
) -> None:
    manager = fake_client.manager
    manager.default_keep_alive_s = 120
    hi = [{"role": "user", "content": "hi"}]
    await client.chat("fake-chat", messages=hi, keep_alive="5m")
    assert manager.keep_alive_for("fake-chat") == 300.0
    await client.chat("fake-chat", messages=hi, keep_alive=-1)
    assert manager.keep_alive_for("fake-chat") == math.inf
    await client.chat("fake-chat", messages=hi)  # no keep_alive: the server's default again
    assert manager.keep_alive_for("fake-chat") == 120
    await client.embed("fake-embed", "x", keep_alive=30)
    assert manager.keep_alive_for("fake-embed") == 30.0


async def test_model_tool_calls_in_ollamas_shape(
    client: ollama.AsyncClient, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus.engines.fake import FakeChatModel
    from terminus.types import Done, Stats, ToolCall, ToolCallEvent

    def calling_chat(self: Any, request: Any, cancel: Any) -> Any:
        yield ToolCallEvent(
            call=ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
        )
        yield Stats(prompt_tokens=3, completion_tokens=9)
        yield Done(stop_reason="tool_calls")

    monkeypatch.setattr(FakeChatModel, "chat", calling_chat)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    hi = [{"role": "user", "content": "weather?"}]
    answer = await client.chat("fake-chat", messages=hi, tools=[tool])
    [call] = answer.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "Oslo"}
    assert answer.done_reason == "stop"  # Ollama ends a tool call with "stop"
    body = {"model": "fake-chat", "messages": hi, "tools": [tool]}
    lines = ndjson((await http.post("/api/chat", json=body)).text)
    assert lines[0]["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}},
        }
    ]
    assert lines[-1]["done"] is True


async def test_failed_pull(http: httpx.AsyncClient, fake_client: Terminus, tmp_path: Any) -> None:
    from fakecards import fake_card

    card = fake_card(tmp_path / "gone", "fake-gone")
    (tmp_path / "gone" / "fake-gone.bin").unlink()  # its only source is missing
    fake_client.catalog.register(card)
    lines = ndjson((await http.post("/api/pull", json={"model": "fake-gone"})).text)
    assert lines[0] == {"status": "pulling manifest"}
    assert set(lines[-1]) == {"error"} and "fake-gone" in lines[-1]["error"]
    whole = await http.post("/api/pull", json={"model": "fake-gone", "stream": False})
    assert whole.status_code >= 400 and set(whole.json()) == {"error"}
    assert "fake-gone:latest" not in {
        m["model"] for m in (await http.get("/api/tags")).json()["models"]
    }


def test_ollama_port_in_use_is_a_clear_error() -> None:
    import socket

    from click.testing import CliRunner

    from terminus.cli.main import cli

    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        free.bind(("127.0.0.1", 0))
        free_port = free.getsockname()[1]
        free.close()
        busy = str(taken.getsockname()[1])
        result = CliRunner().invoke(cli, ["serve", "--port", str(free_port), "--ollama-port", busy])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{busy}" in result.output
