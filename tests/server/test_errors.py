"""Every failure answers in OpenAI's error shape, with the status of its error type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serverkit import assert_error, chat_body, running, sse_events

from terminus.engines.fake import FakeChatModel
from terminus.errors import EngineError
from terminus.types import ChatEvent, ContentDelta, Done, Stats

JSON = {"content-type": "application/json"}


async def test_unknown_model_is_404(api: httpx.AsyncClient) -> None:
    error = assert_error(
        await api.post("/v1/chat/completions", json=chat_body(model="nope")), 404, "model_not_found"
    )
    assert error["param"] == "model" and error["type"] == "invalid_request_error"
    body = {"model": "nope", "prompt": "x"}
    assert_error(await api.post("/v1/completions", json=body), 404, "model_not_found")
    assert_error(await api.get("/v1/models/nope"), 404, "model_not_found")
    # every kind of model is retrievable: speech models are served on /v1/audio
    assert (await api.get("/v1/models/whisper-tiny.en")).json()["kind"] == "stt"


async def test_malformed_json_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/chat/completions",
        content=b'{"model": "fake-chat", "messages": [',
        headers={"content-type": "application/json"},
    )
    error = assert_error(response, 400, "invalid_json")
    assert "parse" in error["message"]
    assert_error(await api.post("/v1/chat/completions", content=b""), 400, "invalid_json")
    response = await api.post("/v1/completions", content=b"[1, 2]", headers=JSON)
    assert_error(response, 400, "invalid_parameter")


async def test_json_with_a_form_content_type_is_refused(api: httpx.AsyncClient) -> None:
    # what `curl -d '{...}'` sends, and what a web page may send cross-site with no preflight
    response = await api.post(
        "/v1/chat/completions",
        content=json.dumps(chat_body("hi")).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    error = assert_error(response, 415, "unsupported_media_type")
    assert "--json" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "fake-chat"}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "fake-chat", "messages": []}, "messages"),
        (
            {"model": "fake-chat", "messages": [{"role": "robot", "content": "x"}]},
            "messages.0.role",
        ),
        (chat_body(stream="maybe"), "stream"),
        (chat_body(tool_choice="sometimes"), "tool_choice"),
        (chat_body(max_tokens="many"), "max_tokens"),
    ],
)
async def test_invalid_body_is_400(
    api: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    error = assert_error(
        await api.post("/v1/chat/completions", json=body), 400, "invalid_parameter"
    )
    assert error["param"] == param


@pytest.mark.parametrize(
    "extra",
    [
        {"temperature": 9},
        {"top_p": 0},
        {"max_tokens": 0},
        {"seed": -1},
        {"stop": [""]},
        {"stop": ""},
        {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
    ],
)
async def test_out_of_range_parameters_are_400(
    api: httpx.AsyncClient, extra: dict[str, Any]
) -> None:
    assert_error(await api.post("/v1/chat/completions", json=chat_body(**extra)), 400)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools.0.type"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": ""}}],
                    }
                ]
            },
            "messages.0.content.0",
        ),
    ],
)
async def test_unsupported_features_are_400(
    api: httpx.AsyncClient, extra: dict[str, Any], param: str
) -> None:
    response = await api.post("/v1/chat/completions", json={**chat_body(), **extra})
    error = assert_error(response, 400, "unsupported_parameter")
    assert error["param"] == param
    assert "not supported" in error["message"]


async def test_neutral_values_of_unsupported_features_pass(api: httpx.AsyncClient) -> None:
    body = chat_body(n=1, logprobs=False, presence_penalty=0, frequency_penalty=0, logit_bias={})
    assert (await api.post("/v1/chat/completions", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "a"}}],
                "tool_choice": {"type": "function", "function": {"name": "b"}},
            },
            "tool_choice",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{oops"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.tool_calls",
        ),
        ({"messages": [{"role": "tool", "content": "22 C"}]}, "messages.0.tool_call_id"),
    ],
)
async def test_inconsistent_requests_are_400(
    api: httpx.AsyncClient, extra: dict[str, Any], param: str
) -> None:
    response = await api.post("/v1/chat/completions", json={**chat_body(), **extra})
    assert assert_error(response, 400, "invalid_parameter")["param"] == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"suffix": "end"}, "suffix"),
        ({"best_of": 2}, "best_of"),
        ({"stream": True, "prompt": ["a", "b"]}, "stream"),
    ],
)
async def test_text_completion_unsupported(
    api: httpx.AsyncClient, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "fake-base", "prompt": "x", **extra}
    error = assert_error(await api.post("/v1/completions", json=body), 400, "unsupported_parameter")
    assert error["param"] == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": []}, "prompt"),
        ({"prompt": ["a", ""]}, "prompt"),
        ({"prompt": [1, -2]}, "prompt"),
        ({"prompt": ["x"] * 65}, "prompt"),
        ({"prompt": [1, "x"]}, "prompt"),  # token ids and text mixed in one prompt
        ({"prompt": [[1, "a"]]}, "prompt"),
        ({"prompt": [True, False]}, "prompt"),  # JSON booleans are not token ids
        ({"prompt": [{"text": "x"}]}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"echo": True, "max_tokens": -1}, "max_tokens"),
    ],
)
async def test_text_completion_invalid_prompts(
    api: httpx.AsyncClient, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "fake-base", "prompt": "x", **extra}
    error = assert_error(await api.post("/v1/completions", json=body), 400, "invalid_parameter")
    assert error["param"] == param
    if extra.get("prompt") in ([1, "x"], [[1, "a"]], [True, False], [{"text": "x"}]):
        assert "a list of token ids" in error["message"]  # not pydantic's union wording


async def test_echo_needs_a_llamacpp_model(api: httpx.AsyncClient) -> None:
    """Scoring a prompt reads the GGUF itself: another engine's model is a clear 400."""
    body = {"model": "fake-base", "prompt": "x", "echo": True, "logprobs": 1, "max_tokens": 0}
    response = await api.post("/v1/completions", json=body)
    assert response.status_code == 400
    assert "token scores" in response.json()["error"]["message"]


async def test_prompt_longer_than_the_context_is_400(api: httpx.AsyncClient) -> None:
    long = " ".join(["word"] * 300)  # fake-chat holds 256 words
    for stream in (False, True):  # streamed too: the error comes before any byte is sent
        response = await api.post("/v1/chat/completions", json=chat_body(long, stream=stream))
        assert_error(response, 400, "context_length_exceeded")


async def test_unknown_endpoint_and_method(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/moderations"), 404, "not_found")
    assert_error(await api.get("/v1/audio/speech"), 405, "method_not_allowed")
    assert_error(await api.get("/v1/embeddings"), 405, "method_not_allowed")
    assert_error(await api.get("/v1/chat/completions"), 405, "method_not_allowed")


async def test_body_over_the_limit_is_413(make_app: Any) -> None:
    async with running(make_app(max_body_bytes=4096)) as http:
        big = chat_body("x" * 5000)
        assert_error(await http.post("/v1/chat/completions", json=big), 413, "request_too_large")

        async def chunked() -> Any:  # no Content-Length: counted as it arrives
            for _ in range(5):
                yield b" " * 1000
            yield json.dumps(chat_body("hi")).encode()

        response = await http.post("/v1/chat/completions", content=chunked(), headers=JSON)
        assert_error(response, 413, "request_too_large")
        response = await http.post("/v1/chat/completions", json=chat_body("x" * 3000))
        assert response.status_code == 200  # under the limit


def _failing_chat(self: FakeChatModel, request: Any, cancel: Any) -> Iterator[ChatEvent]:
    yield ContentDelta(text="partial")
    raise EngineError("the engine fell over")


def _error_done(self: FakeChatModel, request: Any, cancel: Any) -> Iterator[ChatEvent]:
    yield Stats()
    yield Done(stop_reason="error", error="out of KV cache")


async def test_engine_failure_mid_stream(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeChatModel, "chat", _failing_chat)
    response = await api.post("/v1/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 200  # the headers were sent before the failure
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert events[-2] == {
        "error": {
            "message": "the engine fell over",
            "type": "server_error",
            "param": None,
            "code": "engine_error",
        }
    }
    response = await api.post("/v1/chat/completions", json=chat_body())
    assert_error(response, 500, "engine_error")


async def test_error_stop_reason(api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeChatModel, "chat", _error_done)
    error = assert_error(
        await api.post("/v1/chat/completions", json=chat_body()), 500, "engine_error"
    )
    assert "out of KV cache" in error["message"]
    events = sse_events((await api.post("/v1/chat/completions", json=chat_body(stream=True))).text)
    assert events[-2]["error"]["code"] == "engine_error"


async def test_unexpected_exception_is_a_bare_500(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: FakeChatModel, request: Any, cancel: Any) -> Iterator[ChatEvent]:
        raise ZeroDivisionError("secret detail")
        yield  # pragma: no cover

    monkeypatch.setattr(FakeChatModel, "chat", broken)
    app = make_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            response = await http.post("/v1/chat/completions", json=chat_body())
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in error["message"]
