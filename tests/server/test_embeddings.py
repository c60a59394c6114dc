"""POST /v1/embeddings with the fake embedding engine: shapes, base64, errors, limits."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serverkit import assert_error, chat_body, fake_card, running

from terminus.client.sync import Terminus
from terminus.engines.base import LoadOptions
from terminus.engines.fake import FakeEmbedModel, FakeEngine
from terminus.types import Embeddings, EmbedRequest

TEXTS = ["red apples", "green apples and pears", "tax law"]


def body(input: Any = TEXTS, **extra: Any) -> dict[str, Any]:
    return {"model": "fake-embed", "input": input, **extra}


def decode(item: str) -> np.ndarray[Any, Any]:
    return np.frombuffer(base64.b64decode(item), dtype="<f4")


async def test_float_vectors(api: httpx.AsyncClient, fake_client: Terminus) -> None:
    response = await api.post("/v1/embeddings", json=body())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == {"object", "data", "model", "usage"}
    assert data["object"] == "list" and data["model"] == "fake-embed"
    assert [(d["object"], d["index"]) for d in data["data"]] == [
        ("embedding", 0),
        ("embedding", 1),
        ("embedding", 2),
    ]
    vectors = np.array([d["embedding"] for d in data["data"]], dtype=np.float32)
    assert vectors.shape == (3, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    expected = fake_client.embed(TEXTS, model="fake-embed")
    assert np.array_equal(vectors, expected.vectors)  # float32 survives JSON exactly
    assert data["usage"] == {"prompt_tokens": 8, "total_tokens": 8}


async def test_one_string(api: httpx.AsyncClient) -> None:
    data = (await api.post("/v1/embeddings", json=body("just one text"))).json()
    assert len(data["data"]) == 1 and data["data"][0]["index"] == 0
    assert len(data["data"][0]["embedding"]) == 32
    assert data["usage"]["prompt_tokens"] == 3


async def test_base64_round_trip(api: httpx.AsyncClient) -> None:
    floats = (await api.post("/v1/embeddings", json=body(encoding_format="float"))).json()
    encoded = (await api.post("/v1/embeddings", json=body(encoding_format="base64"))).json()
    assert encoded["usage"] == floats["usage"]
    for f, b in zip(floats["data"], encoded["data"], strict=True):
        assert isinstance(b["embedding"], str) and b["index"] == f["index"]
        vector = decode(b["embedding"])
        assert vector.shape == (32,)
        assert np.array_equal(vector, np.array(f["embedding"], dtype=np.float32))


async def test_dimensions_and_user(
    api: httpx.AsyncClient, fake_client: Terminus, tmp_path: Path
) -> None:
    ok = await api.post("/v1/embeddings", json=body(dimensions=32, user="someone"))
    assert ok.status_code == 200, ok.text
    error = assert_error(
        await api.post("/v1/embeddings", json=body(dimensions=16)), 400, "unsupported_parameter"
    )
    assert error["param"] == "dimensions" and "32" in error["message"]
    # a card that does not declare its size: checked on the vectors themselves
    fake_client.catalog.register(
        fake_card(tmp_path / "weights", "fake-embed-64", capability="embed")
    )
    asked = {"model": "fake-embed-64", "input": "x"}
    assert (await api.post("/v1/embeddings", json={**asked, "dimensions": 64})).status_code == 200
    response = await api.post("/v1/embeddings", json={**asked, "dimensions": 63})
    assert assert_error(response, 400, "unsupported_parameter")["param"] == "dimensions"


async def test_unknown_model_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/embeddings", json=body(model="nope"))
    assert assert_error(response, 404, "model_not_found")["param"] == "model"


async def test_text_models_cannot_embed_nor_embedding_models_chat(api: httpx.AsyncClient) -> None:
    for model in ("fake-chat", "fake-base"):
        response = await api.post("/v1/embeddings", json=body(model=model))
        error = assert_error(response, 400, "capability_not_supported")
        assert "not an embedding model" in error["message"]
    response = await api.post("/v1/chat/completions", json=chat_body(model="fake-embed"))
    assert "/v1/embeddings" in assert_error(response, 400, "capability_not_supported")["message"]
    response = await api.post("/v1/completions", json={"model": "fake-embed", "prompt": "x"})
    assert_error(response, 400, "capability_not_supported")


@pytest.mark.parametrize(
    ("request_body", "code", "param"),
    [
        (body([]), "invalid_parameter", "input"),
        (body(""), "invalid_parameter", "input"),
        (body(["fine", ""]), "invalid_parameter", "input"),
        (body([1, 2, 3]), "unsupported_parameter", "input"),
        (body([[1, 2], [3]]), "unsupported_parameter", "input"),
        (body(["x"] * 2049), "invalid_parameter", "input"),
        (body([{"text": "x"}]), "invalid_parameter", "input"),
        ({"model": "fake-embed"}, "invalid_parameter", "input"),
        ({"input": "x"}, "invalid_parameter", "model"),
        (body(encoding_format="int8"), "invalid_parameter", "encoding_format"),
        (body(dimensions="many"), "invalid_parameter", "dimensions"),
    ],
)
async def test_invalid_requests_are_400(
    api: httpx.AsyncClient, request_body: dict[str, Any], code: str, param: str
) -> None:
    response = await api.post("/v1/embeddings", json=request_body)
    assert assert_error(response, 400, code)["param"] == param


async def test_token_ids_say_so(api: httpx.AsyncClient) -> None:
    error = assert_error(await api.post("/v1/embeddings", json=body([1, 2])), 400)
    assert "token-id input" in error["message"] and "not supported" in error["message"]


async def test_runs_off_the_event_loop_within_the_concurrency_limit(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = FakeEmbedModel.embed
    entered, release = threading.Event(), threading.Event()

    def blocking(self: FakeEmbedModel, request: EmbedRequest) -> Embeddings:
        entered.set()
        assert release.wait(5), "never released: the event loop was blocked"
        return original(self, request)

    monkeypatch.setattr(FakeEmbedModel, "embed", blocking)
    app = make_app(max_concurrent=1)
    state = app.state.terminus
    async with running(app) as http:
        first = asyncio.create_task(http.post("/v1/embeddings", json=body()))
        assert await asyncio.to_thread(entered.wait, 5)
        # the embedding blocks its thread; the loop still answers
        assert (await http.get("/health")).status_code == 200
        assert state.active == 1
        assert_error(await http.post("/v1/embeddings", json=body()), 429, "rate_limit_exceeded")
        assert_error(await http.post("/v1/chat/completions", json=chat_body()), 429)
        release.set()
        assert (await first).status_code == 200
        assert state.active == 0


async def test_failed_embedding_releases_the_slot(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: FakeEmbedModel, request: EmbedRequest) -> Embeddings:
        raise RuntimeError("boom")

    monkeypatch.setattr(FakeEmbedModel, "embed", broken)
    app = make_app(max_concurrent=1)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            for _ in range(2):  # the second is not a 429: the first gave its place back
                response = await http.post("/v1/embeddings", json=body())
                error = assert_error(response, 500, "internal_error")
                assert "boom" not in error["message"]
        assert app.state.terminus.active == 0


async def test_access_log_line(api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="terminus.server"):
        await api.post("/v1/embeddings", json=body())
        await api.post("/v1/embeddings", json=body(model="nope"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "terminus.server"]
    ok, missing = lines
    assert ok["path"] == "/v1/embeddings" and ok["status"] == 200
    assert ok["model"] == "fake-embed" and ok["prompt_tokens"] == 8
    assert "completion_tokens" not in ok and "stream" not in ok
    assert missing["status"] == 404 and missing["model"] == "nope"


async def test_embedding_models_are_listed(api: httpx.AsyncClient) -> None:
    await api.post("/v1/embeddings", json=body("load it"))
    one = (await api.get("/v1/models/fake-embed")).json()
    assert one["id"] == "fake-embed" and one["capability"] == "embed" and one["loaded"] is True
    minilm = (await api.get("/v1/models/minilm")).json()  # an alias resolves to the card
    assert minilm["id"] == "all-minilm-l6-v2" and minilm["capability"] == "embed"


async def test_text_load_options_only_partly_apply(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, LoadOptions] = {}
    original = FakeEngine.load

    def spy(self: FakeEngine, card: Any, files: Any, options: LoadOptions) -> Any:
        seen[card.id] = options
        return original(self, card, files, options)

    monkeypatch.setattr(FakeEngine, "load", spy)
    async with running(make_app(context_length=33, parallel=3, threads=2)) as http:
        assert (await http.post("/v1/embeddings", json=body())).status_code == 200
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200
    embed, chat = seen["fake-embed"], seen["fake-chat"]
    assert (chat.context_length, chat.parallel, chat.threads) == (33, 3, 2)
    # the embedding model keeps its own input limit, so its vectors are Terminus.embed's
    assert (embed.context_length, embed.parallel, embed.threads) == (None, 3, 2)


async def test_preloaded_embedding_model(make_app: Any) -> None:
    app = make_app(preload=("fake-embed",))
    async with running(app) as http:
        deadline = time.monotonic() + 5
        while (ready := await http.get("/ready")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            await asyncio.sleep(0.01)
        assert ready.json()["models"] == {"fake-embed": {"status": "loaded"}}
        assert FakeEngine.loads == ["fake-embed"]
        assert (await http.post("/v1/embeddings", json=body())).status_code == 200
    assert FakeEngine.loads == ["fake-embed"]
