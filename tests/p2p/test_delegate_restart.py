"""A provider killed and started again: replays stay refused, the next request reconnects.

The provider is `terminus provide` in its own process on 127.0.0.1 (the fake engine, so
it starts in a second); SIGKILL gives the consumer no CONNECTION_CLOSE, as a crash or a
power cut would not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fakecards import fake_card
from p2pkit import TERMINUS, Processes, free_port, wait_for_file

from terminus import Terminus
from terminus.errors import PeerUnavailableError
from terminus.models.catalog import Catalog
from terminus.p2p.identity import Identity, load_or_create_identity
from terminus.p2p.node import (
    EventLoopThread,
    bind_endpoint,
    dial,
    parse_node_ref,
    read_frame,
    write_frame,
)
from terminus.p2p.nonces import PersistentNonceStore
from terminus.p2p.ops import OPS, request_body
from terminus.p2p.tokens import issue_token
from terminus.transports.peer import PeerTransport

REPLY = "one two three four five"


class ProviderProcess:
    """`terminus provide` on a fixed port, allowing one consumer key; restartable."""

    def __init__(self, procs: Processes, tmp: Path, consumer: str) -> None:
        self.procs = procs
        self.home = tmp / "provider"
        Catalog(self.home / "cards").save_user_card(
            fake_card(tmp / "weights", replies=[REPLY], token_delay_s=0.01, user_added=True)
        )
        self.port = free_port()
        self.consumer = consumer
        self.ref_file = tmp / "provider.ref"
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.ref = ""

    def start(self) -> str:
        self.ref_file.unlink(missing_ok=True)
        self.starts += 1
        self.proc = self.procs.start(
            [
                *TERMINUS,
                "--offline",
                "provide",
                "--model",
                "fake-chat",
                "--allow",
                self.consumer,
                "--listen",
                f"127.0.0.1:{self.port}",
                "--ref-file",
                str(self.ref_file),
            ],
            self.home,
            f"provider-{self.starts}",
        )
        self.ref = wait_for_file(self.ref_file, self.proc, timeout=60)
        return self.ref

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def consumer_home(tmp_path: Path) -> Path:
    return tmp_path / "consumer"


@pytest.fixture
def provider(procs: Processes, tmp_path: Path, consumer_home: Path) -> ProviderProcess:
    key = load_or_create_identity(consumer_home).node_id
    node = ProviderProcess(procs, tmp_path, key)
    node.start()
    return node


def _client(consumer_home: Path, ref: str, **kwargs: Any) -> Terminus:
    transport = PeerTransport(ref, home=consumer_home, **kwargs)
    client = Terminus(home=consumer_home, transport=transport)
    client.catalog.register(fake_card(consumer_home / "w", replies=[REPLY]))
    return client


def _send_raw(identity: Identity, ref: str, header: dict[str, object]) -> list[dict[str, Any]]:
    """One request header on a fresh connection; every frame of the answer but pings."""
    loop = EventLoopThread()

    async def go() -> list[dict[str, Any]]:
        endpoint = await bind_endpoint(identity, "127.0.0.1:0")
        connection = await dial(endpoint, parse_node_ref(ref))
        stream = await connection.open_bi()
        await write_frame(stream.send(), header)
        frames: list[dict[str, Any]] = []
        while (frame := await read_frame(stream.recv())) is not None:
            if not frame.get("ping"):
                frames.append(frame)
            if frame.get("end") or "error" in frame:
                break
        connection.close(0, b"")
        await endpoint.close()
        return frames

    try:
        return loop.run(go(), timeout=30)
    finally:
        loop.stop()


def test_a_token_used_before_a_restart_is_refused_after_it(
    provider: ProviderProcess, consumer_home: Path
) -> None:
    identity = load_or_create_identity(consumer_home)
    with _client(consumer_home, provider.ref) as client:
        request = client.chat_request("hi", model="fake-chat")
    body = request_body(OPS["chat"], request)
    node_id = parse_node_ref(provider.ref).node_id
    token = issue_token(identity, node_id, "chat", body, ttl=120)
    header = {"op": "chat", "token": token.to_wire(), "body": body.decode()}

    first = _send_raw(identity, provider.ref, header)
    assert first[-1] == {"end": True}
    provider.kill()
    provider.start()
    replayed = _send_raw(identity, provider.ref, header)
    assert len(replayed) == 1 and "error" in replayed[0]
    assert "already used" in str(replayed[0]["error"])
    # A fresh token still works: only the replay is refused.
    fresh = issue_token(identity, node_id, "chat", body, ttl=120)
    again = _send_raw(identity, provider.ref, {**header, "token": fresh.to_wire()})
    assert again[-1] == {"end": True}


def test_the_first_request_after_a_restart_reconnects(
    provider: ProviderProcess, consumer_home: Path
) -> None:
    with _client(consumer_home, provider.ref) as client:
        assert client.completion("hi", model="fake-chat").text == REPLY
        provider.kill()
        provider.start()
        assert client.completion("hi", model="fake-chat").text == REPLY
        transport = client.transport
        assert isinstance(transport, PeerTransport)
        assert transport.client.resent == 1
        assert transport.fallbacks == 0


def test_a_provider_gone_before_the_answer_began_falls_back(
    provider: ProviderProcess, consumer_home: Path, tmp_path: Path
) -> None:
    local = Terminus(home=tmp_path / "local")
    local.catalog.register(fake_card(tmp_path / "lw", replies=["from here"]))
    with _client(
        consumer_home, provider.ref, fallback=local.transport, connect_timeout=1, retries=0
    ) as client:
        assert client.completion("hi", model="fake-chat").text == REPLY
        provider.kill()  # and not started again: the open connection only looks alive
        started = time.monotonic()
        assert client.completion("hi", model="fake-chat").text == "from here"
        assert client.transport.fallbacks == 1  # type: ignore[attr-defined]
        assert time.monotonic() - started < 30


def test_without_a_fallback_the_error_says_the_answer_never_began(
    provider: ProviderProcess, consumer_home: Path
) -> None:
    with _client(consumer_home, provider.ref, connect_timeout=1, retries=0) as client:
        assert client.completion("hi", model="fake-chat").text == REPLY
        provider.kill()
        with pytest.raises(PeerUnavailableError, match="cannot reach provider"):
            client.completion("hi", model="fake-chat").result()


def test_the_nonce_store_survives_reopening_and_prunes_expired_tokens(tmp_path: Path) -> None:
    path = tmp_path / "nonces.sqlite"
    store = PersistentNonceStore(path)
    now = time.time()
    assert store.claim("a", now + 60)
    assert not store.claim("a", now + 60)
    assert store.claim("old", now - 3600)  # (check_token refuses expired tokens first)
    store.close()
    reopened = PersistentNonceStore(path)  # a restart: prunes what expired
    assert not reopened.claim("a", now + 60)
    assert len(reopened) == 1
    reopened.close()


def test_a_full_nonce_store_refuses_instead_of_forgetting(tmp_path: Path) -> None:
    from terminus.errors import PeerBusyError

    store = PersistentNonceStore(tmp_path / "n.sqlite", max_nonces=3)
    for nonce in "abc":
        assert store.claim(nonce, time.time() + 60)
    with pytest.raises(PeerBusyError):
        store.claim("d", time.time() + 60)
    assert len(store) == 3  # every live nonce is still remembered
    store.close()
