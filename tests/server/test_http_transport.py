"""HttpTransport against a real uvicorn server (in a thread) over fake models."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from liveserver import free_port

from terminus.client.sync import Terminus
from terminus.errors import InvalidParameterError, ModelNotFoundError
from terminus.transports.http import HttpTransport
from terminus.types import CancelToken, ChatRequest, ContentDelta, Done, EmbedRequest, Message


@pytest.fixture
def served(make_app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def _chat(model: str, text: str = "hello over http") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(role="user", content=text),))


def test_a_client_over_http_answers_like_a_local_one(served: str, fake_client: Terminus) -> None:
    local = fake_client.completion("fake-chat", "hello over http").result()
    with Terminus(home=fake_client.home, transport=HttpTransport(served)) as remote:
        result = remote.completion("fake-chat", "hello over http").result()
        assert result.text == local.text and result.stop_reason == "stop"
        vectors = remote.embed("fake-embed", ["a cat", "a dog"]).vectors
        assert np.allclose(vectors, fake_client.embed("fake-embed", ["a cat", "a dog"]).vectors)
        info = remote.load_model("fake-chat")
        assert info.id == "fake-chat" and info.memory_bytes > 0
        assert "fake-chat" in [m.id for m in remote.loaded_models()]
        assert remote.unload_model("fake-chat") is True
        assert "fake-chat" not in [m.id for m in remote.loaded_models()]


def test_errors_come_back_as_their_types(served: str) -> None:
    transport = HttpTransport(served)
    with pytest.raises(ModelNotFoundError):
        list(transport.chat(_chat("no-such-model"), CancelToken()))
    with pytest.raises(ModelNotFoundError):
        transport.embed(EmbedRequest(model="no-such-model", inputs=("x",)))
    with pytest.raises(InvalidParameterError):  # a chat model cannot embed
        transport.embed(EmbedRequest(model="fake-chat", inputs=("x",)))
    transport.close()


def test_cancel_stops_the_generation_on_the_server(served: str) -> None:
    transport = HttpTransport(served)
    cancel = CancelToken()
    events = transport.chat(_chat("fake-slow"), cancel)  # 400 words, 10 ms each
    started = time.monotonic()
    for event in events:
        if isinstance(event, ContentDelta):
            cancel.cancel()
        if isinstance(event, Done):
            break
    assert event == Done(stop_reason="cancelled")
    deadline = time.monotonic() + 3  # far less than the 4 s the whole reply takes
    while httpx.get(f"{served}/terminus/v1/ps").json()["requests_in_flight"]:
        assert time.monotonic() < deadline, "the server is still generating"
        time.sleep(0.02)
    assert time.monotonic() - started < 3.5
    transport.close()


def test_an_unreachable_server_is_a_clear_error() -> None:
    from terminus.errors import SourceUnavailableError

    transport = HttpTransport(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SourceUnavailableError, match="did not answer"):
        list(transport.chat(_chat("fake-chat"), CancelToken()))
    transport.close()
