"""Images through each HTTP API's own shape, in-process on the fake engine.

The fake engine records each request, so these tests see exactly which images
reached the model; the real model's answers are in test_vision_live.
"""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakecards import fake_card
from images import data_url, square
from serverkit import running

from terminus import Terminus
from terminus.engines.fake import FakeEngine
from terminus.server import ServerSettings, create_app

QUESTION = "What colour is it?"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Terminus]:
    weights = tmp_path / "weights"
    with Terminus(memory_budget="1G", allow_download=False) as t:
        # A fake card that names a projector file: the vision capability without llama.cpp.
        t.catalog.register(fake_card(weights, "fake-eyes", mmproj="weights.bin"))
        t.catalog.register(fake_card(weights, "fake-blind"))
        yield t


def _last_images() -> list[bytes]:
    request = FakeEngine.calls[-1]
    return [base64.b64decode(b) for m in request.messages for b in m.images]


def _openai_body(model: str, url: str) -> dict[str, Any]:
    parts = [{"type": "text", "text": QUESTION}, {"type": "image_url", "image_url": {"url": url}}]
    return {"model": model, "messages": [{"role": "user", "content": parts}]}


async def test_openai_image_url_reaches_the_model(client: Terminus) -> None:
    async with running(create_app(client, ServerSettings())) as http:
        reply = await http.post(
            "/v1/chat/completions", json=_openai_body("fake-eyes", data_url(square("red")))
        )
    assert reply.status_code == 200, reply.text
    assert _last_images() == [square("red")]
    assert FakeEngine.calls[-1].messages[-1].content == QUESTION


@pytest.mark.parametrize(
    ("model", "url", "status", "needle"),
    [
        ("fake-blind", data_url(square("red")), 400, "fake-blind cannot read images"),
        ("fake-eyes", data_url(b"not a picture"), 400, "not an image"),
        ("fake-eyes", data_url(square("red")[:200]), 400, "corrupt or truncated"),
        ("fake-eyes", "https://example.com/cat.png", 400, "not fetched"),
    ],
    ids=["text-only-model", "garbage", "truncated", "url-not-allowed"],
)
async def test_openai_bad_images_are_400s(
    client: Terminus, model: str, url: str, status: int, needle: str
) -> None:
    async with running(create_app(client, ServerSettings())) as http:
        reply = await http.post("/v1/chat/completions", json=_openai_body(model, url))
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert needle in error["message"]
    assert error["type"] == "invalid_request_error"
    assert not FakeEngine.calls  # nothing reached a model


@pytest.fixture
def picture_site(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server with /red.png."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "red.png").write_bytes(square("red"))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path / "site"), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_http_image_urls_are_fetched_only_when_allowed(
    client: Terminus, picture_site: str
) -> None:
    body = _openai_body("fake-eyes", f"{picture_site}/red.png")
    async with running(create_app(client, ServerSettings())) as http:
        refused = await http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400
    async with running(create_app(client, ServerSettings(allow_image_urls=True))) as http:
        fetched = await http.post("/v1/chat/completions", json=body)
        missing = await http.post(
            "/v1/chat/completions", json=_openai_body("fake-eyes", f"{picture_site}/none.png")
        )
    assert fetched.status_code == 200, fetched.text
    assert _last_images() == [square("red")]
    assert missing.status_code == 400
    assert "HTTP 404" in missing.json()["error"]["message"]


async def test_ollama_images(client: Terminus) -> None:
    b64 = base64.b64encode(square("blue")).decode()
    async with running(create_app(client, ServerSettings())) as http:
        chat = await http.post(
            "/api/chat",
            json={
                "model": "fake-eyes",
                "stream": False,
                "messages": [{"role": "user", "content": QUESTION, "images": [b64]}],
            },
        )
        assert chat.status_code == 200, chat.text
        assert _last_images() == [square("blue")]
        generate = await http.post(
            "/api/generate",
            json={"model": "fake-eyes", "stream": False, "prompt": QUESTION, "images": [b64]},
        )
        assert generate.status_code == 200, generate.text
        assert _last_images() == [square("blue")]
        bad = await http.post(
            "/api/chat",
            json={
                "model": "fake-eyes",
                "stream": False,
                "messages": [{"role": "user", "content": QUESTION, "images": ["bm90IGFuIGltYWdl"]}],
            },
        )
        blind = await http.post(
            "/api/chat",
            json={
                "model": "fake-blind",
                "stream": False,
                "messages": [{"role": "user", "content": QUESTION, "images": [b64]}],
            },
        )
        show = await http.post("/api/show", json={"model": "fake-eyes"})
    assert bad.status_code == 400
    assert "messages.0.images.0" in bad.json()["error"]
    assert blind.status_code == 400
    assert "fake-blind cannot read images" in blind.json()["error"]
    assert "vision" in show.json()["capabilities"]


async def test_responses_input_image(client: Terminus) -> None:
    content = [
        {"type": "input_text", "text": QUESTION},
        {"type": "input_image", "image_url": data_url(square("green"))},
    ]
    async with running(create_app(client, ServerSettings())) as http:
        reply = await http.post(
            "/v1/responses",
            json={"model": "fake-eyes", "input": [{"role": "user", "content": content}]},
        )
        bad = await http.post(
            "/v1/responses",
            json={
                "model": "fake-eyes",
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": data_url(b"junk")}],
                    }
                ],
            },
        )
    assert reply.status_code == 200, reply.text
    assert _last_images() == [square("green")]
    assert bad.status_code == 400
    assert "input.0.content.0" in bad.json()["error"]["message"]


async def test_models_list_the_vision_capability(client: Terminus) -> None:
    async with running(create_app(client, ServerSettings())) as http:
        models = {m["id"]: m for m in (await http.get("/v1/models")).json()["data"]}
        catalog = (await http.get("/terminus/v1/catalog")).json()
    assert models["fake-eyes"]["capabilities"] == ["chat", "vision"]
    assert models["fake-blind"]["capabilities"] == ["chat"]
    eyes = next(e for e in catalog["data"] if e["id"] == "fake-eyes")
    assert "vision" in eyes["capabilities"]


async def test_anthropic_image_blocks(client: Terminus) -> None:
    block = {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(square("red")).decode(),
        },
    }
    body = {
        "model": "fake-eyes",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": [block, {"type": "text", "text": QUESTION}]}],
    }
    async with running(create_app(client, ServerSettings())) as http:
        reply = await http.post("/v1/messages", json=body)
        assert reply.status_code == 200, reply.text
        assert _last_images() == [square("red")]
        block["source"]["data"] = base64.b64encode(b"junk").decode()  # type: ignore[index]
        bad = await http.post("/v1/messages", json=body)
        body["model"] = "fake-blind"
        block["source"]["data"] = base64.b64encode(square("red")).decode()  # type: ignore[index]
        blind = await http.post("/v1/messages", json=body)
    assert bad.status_code == 400
    assert bad.json()["type"] == "error"
    assert "messages.0.content.0.source" in bad.json()["error"]["message"]
    assert blind.status_code == 400
    assert "fake-blind cannot read images" in blind.json()["error"]["message"]
