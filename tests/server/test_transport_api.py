"""/terminus/v1/transport/{op}: Terminus's own requests and events over HTTP (fake models)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
from serverkit import chat_body, running

from terminus.client.sync import Terminus
from terminus.p2p.ops import OPS, load_value, request_body
from terminus.p2p.wire import decode_body
from terminus.types import ChatRequest, ContentDelta, Done, EmbedRequest, Message, Stats

JSON = {"content-type": "application/json"}


def _request(model: str = "fake-chat", text: str = "hello over http") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(role="user", content=text),))


async def test_chat_events_are_the_local_ones(
    api: httpx.AsyncClient, fake_client: Terminus
) -> None:
    reply = await api.post(
        "/terminus/v1/transport/chat", content=request_body(OPS["chat"], _request()), headers=JSON
    )
    assert reply.status_code == 200, reply.text
    events = [
        load_value(OPS["chat"], decode_body(line.encode())["event"], result=True)
        for line in reply.text.splitlines()
    ]
    assert isinstance(events[-1], Done) and events[-1].stop_reason == "stop"
    assert any(isinstance(e, Stats) for e in events)
    served = "".join(e.text for e in events if isinstance(e, ContentDelta))
    local = fake_client.completion("hello over http", model="fake-chat").text
    assert served == local and "hello over http" in served


async def test_embed_result(api: httpx.AsyncClient, fake_client: Terminus) -> None:
    request = EmbedRequest(model="fake-embed", inputs=("a cat", "a dog"))
    reply = await api.post(
        "/terminus/v1/transport/embed", content=request_body(OPS["embed"], request), headers=JSON
    )
    assert reply.status_code == 200, reply.text
    result = load_value(OPS["embed"], decode_body(reply.content)["result"], result=True)
    local = fake_client.embed(["a cat", "a dog"], model="fake-embed").vectors
    assert result.vectors.shape == (2, 32) and np.allclose(result.vectors, local)


async def test_errors_keep_their_type(api: httpx.AsyncClient) -> None:
    def error(reply: httpx.Response) -> dict[str, Any]:
        body = json.loads(reply.text)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "hint"}
        return dict(body["error"])

    unknown_op = await api.post("/terminus/v1/transport/dance", content=b"{}", headers=JSON)
    assert unknown_op.status_code == 400 and error(unknown_op)["code"] == "invalid_parameter"
    tools = await api.post("/terminus/v1/transport/list_tools", content=b"{}", headers=JSON)
    assert tools.status_code == 400  # peer tools are a peer-channel operation only
    malformed = await api.post("/terminus/v1/transport/chat", content=b'{"model": 3}', headers=JSON)
    assert malformed.status_code == 400 and error(malformed)["code"] == "invalid_parameter"
    body = request_body(OPS["chat"], _request(model="no-such-model"))
    missing = await api.post("/terminus/v1/transport/chat", content=body, headers=JSON)
    assert missing.status_code == 404 and error(missing)["code"] == "model_not_found"


async def test_preloaded_models_stay_past_the_keep_alive(make_app: Any) -> None:
    async with running(make_app(preload=("fake-chat",), keep_alive_s=0.0)) as http:
        for _ in range(100):
            if (await http.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.02)
        assert (await http.post("/v1/chat/completions", json=chat_body())).status_code == 200
        await http.post("/v1/embeddings", json={"model": "fake-embed", "input": "x"})
        for _ in range(100):  # the model loaded on demand goes; the preloaded one stays
            ids = [m["id"] for m in (await http.get("/terminus/v1/ps")).json()["models"]]
            if ids == ["fake-chat"]:
                break
            await asyncio.sleep(0.02)
        assert ids == ["fake-chat"]
