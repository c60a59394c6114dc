"""The provider's rules, on the scripted fake engine (fast): tokens, limits, cancel, cleanup."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fakecards import fake_card
from p2pkit import env_for, free_port

from terminus import Terminus
from terminus.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    PeerBusyError,
    PeerRefusedError,
)
from terminus.p2p.identity import Identity
from terminus.p2p.node import NodeRef, dial, read_frame, write_frame
from terminus.p2p.ops import OPS, request_body
from terminus.p2p.provider import Provider, ProviderPolicy
from terminus.p2p.tokens import issue_token
from terminus.transports.peer import PeerTransport

REPLY = "one two three four five six seven eight nine ten"


class Node:
    def __init__(self, tmp: Path, policy: ProviderPolicy, *, port: int = 0, delay: float = 0.02):
        self.identity = Identity.generate()
        self.client = Terminus(home=tmp / "provider")
        self.client.catalog.register(fake_card(tmp / "w", replies=[REPLY], token_delay_s=delay))
        self.client.catalog.register(fake_card(tmp / "w", "fake-embed", capability="embed"))
        self.client.catalog.register(fake_card(tmp / "w", "not-shared"))
        self.policy = policy
        self.port = port
        self.provider = self._start()

    def _start(self) -> Provider:
        provider = Provider(
            self.client.transport,
            self.identity,
            self.client.catalog,
            ["fake-chat", "fake-embed"],
            self.policy,
            listen=f"127.0.0.1:{self.port}",
        )
        self.ref = provider.start()
        return provider

    def restart(self) -> None:
        self.provider.close()
        self.provider = self._start()

    def close(self) -> None:
        self.provider.close()
        self.client.close()


@pytest.fixture
def consumer() -> Identity:
    return Identity.generate()


@pytest.fixture
def node(tmp_path: Path, consumer: Identity) -> Iterator[Node]:
    n = Node(
        tmp_path,
        ProviderPolicy(allow=frozenset({consumer.node_id}), max_concurrent=2, max_tokens=50),
        port=free_port(),
    )
    try:
        yield n
    finally:
        n.close()


def _client(tmp_path: Path, node: Node, identity: Identity, **kwargs: object) -> Terminus:
    transport = PeerTransport(node.ref, home=tmp_path / "consumer", identity=identity, **kwargs)
    client = Terminus(home=tmp_path / "consumer", transport=transport)
    client.catalog.register(fake_card(tmp_path / "cw", replies=[REPLY]))
    client.catalog.register(fake_card(tmp_path / "cw", "not-shared"))
    return client


def _raw_request(node: Node, identity: Identity, headers: list[dict[str, object]]) -> list[object]:
    """Send hand-made request headers on one connection; the first frame of each answer."""
    from terminus.p2p.node import EventLoopThread, bind_endpoint

    loop = EventLoopThread()

    async def go() -> list[object]:
        endpoint = await bind_endpoint(identity, "127.0.0.1:0")
        connection = await dial(endpoint, NodeRef(node.ref.node_id, node.ref.addresses))
        answers = []
        for header in headers:
            stream = await connection.open_bi()
            await write_frame(stream.send(), header)
            frame = await read_frame(stream.recv())
            while frame is not None and frame.get("ping"):
                frame = await read_frame(stream.recv())
            answers.append(frame)
        connection.close(0, b"")
        await endpoint.close()
        return answers

    try:
        return loop.run(go(), timeout=30)
    finally:
        loop.stop()


def _chat_header(
    client: Terminus, node: Node, identity: Identity, ttl: float = 30
) -> dict[str, object]:
    request = client.chat_request("hi", model="fake-chat")
    body = request_body(OPS["chat"], request)
    token = issue_token(identity, node.ref.node_id, "chat", body, ttl)
    return {"op": "chat", "token": token.to_wire(), "body": body.decode()}


def test_same_events_as_local(tmp_path: Path, node: Node, consumer: Identity) -> None:
    with _client(tmp_path, node, consumer) as remote:
        events = list(remote.completion("hi", model="fake-chat"))
    local = node.client.completion("hi", model="fake-chat")
    local_events = list(local)
    strip = lambda evs: [e for e in evs if e.type != "stats"]  # noqa: E731 - timings differ
    assert strip(events) == strip(local_events)
    assert [e.type for e in events][-2:] == ["stats", "done"]


def test_replayed_and_expired_tokens_are_refused(
    tmp_path: Path, node: Node, consumer: Identity
) -> None:
    with _client(tmp_path, node, consumer) as client:
        header = _chat_header(client, node, consumer)
        expired = _chat_header(client, node, consumer, ttl=-60)
        forged = _chat_header(client, node, consumer)
        forged["body"] = str(forged["body"]).replace('"hi"', '"pwned"')
    first, replay, old, tampered = _raw_request(node, consumer, [header, header, expired, forged])
    assert first == {"event": {"type": "content", "text": "one"}}
    assert replay["error"]["code"] == "peer_refused"  # type: ignore[index]
    assert "replay" in replay["error"]["message"]  # type: ignore[index]
    assert "expired" in old["error"]["message"]  # type: ignore[index]
    assert "does not match" in tampered["error"]["message"]  # type: ignore[index]


def test_token_signed_by_another_key_is_refused(
    tmp_path: Path, node: Node, consumer: Identity
) -> None:
    with _client(tmp_path, node, consumer) as client:
        stolen = _chat_header(client, node, Identity.generate())  # not the connection's key
    (answer,) = _raw_request(node, consumer, [stolen])
    assert answer["error"]["code"] == "peer_refused"  # type: ignore[index]


def test_deny_list_wins_over_allow(tmp_path: Path, consumer: Identity) -> None:
    policy = ProviderPolicy(allow=None, deny=frozenset({consumer.node_id}))
    node = Node(tmp_path, policy)
    try:
        with _client(tmp_path, node, consumer) as client, pytest.raises(PeerRefusedError):
            client.completion("hi", model="fake-chat").result()
        assert node.provider.stats.refused == 1
        with _client(tmp_path, node, Identity.generate()) as other:
            assert other.completion("hi", model="fake-chat").text == REPLY
    finally:
        node.close()


def test_limits(tmp_path: Path, node: Node, consumer: Identity) -> None:
    with _client(tmp_path, node, consumer) as client:
        with pytest.raises(InvalidParameterError, match="over this provider's 50"):
            client.completion("hi", model="fake-chat", max_tokens=500).result()
        with pytest.raises(ModelNotFoundError, match="does not share"):
            client.completion("hi", model="not-shared").result()
        slow = [client.completion("hi", model="fake-chat") for _ in range(3)]
        firsts = [iter(s) for s in slow[:2]]
        for it in firsts:
            next(it)  # two requests running: the provider's limit
        with pytest.raises(PeerBusyError):
            next(iter(slow[2]))
        for stream in slow[:2]:
            stream.cancel()


def test_cancel_propagates_to_provider(tmp_path: Path, consumer: Identity) -> None:
    node = Node(tmp_path, ProviderPolicy(allow=frozenset({consumer.node_id})), delay=0.2)
    try:
        with _client(tmp_path, node, consumer) as client:
            stream = client.completion("hi", model="fake-chat")
            seen = []
            for event in stream:
                seen.append(event)
                if len(seen) == 2:
                    stream.cancel()
            assert seen[-1].type == "done" and seen[-1].stop_reason == "cancelled"
            assert len([e for e in seen if e.type == "content"]) < 5
        deadline = time.monotonic() + 10
        while node.provider.stats.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.provider.stats.active == 0
    finally:
        node.close()


def test_vanished_consumer_is_cleaned_up(tmp_path: Path) -> None:
    consumer = Identity.generate()
    node = Node(
        tmp_path, ProviderPolicy(allow=frozenset({consumer.node_id}), max_concurrent=1), delay=0.2
    )
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from fakecards import fake_card
        from pathlib import Path
        from terminus import Terminus
        from terminus.p2p.identity import Identity
        from terminus.transports.peer import PeerTransport
        home = Path({str(tmp_path / "gone")!r})
        t = PeerTransport({node.ref.format()!r}, home=home,
                          identity=Identity(bytes.fromhex({consumer.seed.hex()!r})))
        client = Terminus(home=home, transport=t)
        client.catalog.register(fake_card(home / "w", replies=["x"]))
        for event in client.completion("hi", model="fake-chat"):
            print(event.type, flush=True)
    """)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            env=env_for(tmp_path / "gone"),
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"content"
            assert node.provider.stats.active == 1
            proc.kill()
        finally:
            proc.kill()
            proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()
        deadline = time.monotonic() + 15
        while node.provider.stats.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.provider.stats.active == 0  # the slot held by the dead consumer is free
        with _client(tmp_path, node, consumer) as client:
            assert client.completion("hi", model="fake-chat").text == REPLY
    finally:
        node.close()


def test_reconnects_after_provider_restart(tmp_path: Path, node: Node, consumer: Identity) -> None:
    with _client(tmp_path, node, consumer) as client:
        assert client.completion("hi", model="fake-chat").text == REPLY
        node.restart()  # same key, same port: the old connection is dead
        assert client.completion("hi", model="fake-chat").text == REPLY
        transport = client.transport
        assert isinstance(transport, PeerTransport)
        assert transport.client.reconnects == 1


def test_embeddings_are_forwarded(tmp_path: Path, node: Node, consumer: Identity) -> None:
    with _client(tmp_path, node, consumer) as client:
        client.catalog.register(fake_card(tmp_path / "cw", "fake-embed", capability="embed"))
        remote = client.embed(["a red apple", "a green apple"], model="fake-embed")
    local = node.client.embed(["a red apple", "a green apple"], model="fake-embed")
    assert remote.vectors.dtype == np.float32
    np.testing.assert_array_equal(remote.vectors, local.vectors)


def test_unreachable_provider_falls_back(tmp_path: Path, node: Node, consumer: Identity) -> None:
    local = Terminus(home=tmp_path / "local")
    local.catalog.register(fake_card(tmp_path / "lw", replies=["from here"]))
    node.provider.close()
    with _client(
        tmp_path, node, consumer, fallback=local.transport, connect_timeout=1, retries=0
    ) as client:
        assert client.completion("hi", model="fake-chat").text == "from here"
        assert client.transport.fallbacks == 1  # type: ignore[attr-defined]


def test_client_delegate_option_uses_the_home_identity(tmp_path: Path) -> None:
    from terminus.p2p.identity import load_or_create_identity

    home = tmp_path / "delegating"
    me = load_or_create_identity(home)
    node = Node(tmp_path, ProviderPolicy(allow=frozenset({me.node_id})))
    try:
        with Terminus(home=home, delegate=node.ref.format()) as client:
            client.catalog.register(fake_card(tmp_path / "dw", replies=[REPLY]))
            assert client.completion("hi", model="fake-chat").text == REPLY
        assert me.node_id in node.provider.stats.consumers
    finally:
        node.close()
