"""A pool of providers on the scripted fake engine: routing, model availability, failover.

Providers run in this process (their own iroh endpoints on 127.0.0.1) except where one must
die without notice: that one is `terminus provide` in its own process, killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakecards import fake_card
from p2pkit import TERMINUS, Processes, wait_for_file

from terminus import Terminus
from terminus.cli.main import cli
from terminus.errors import ModelNotFoundError, PeerUnavailableError
from terminus.models.catalog import Catalog
from terminus.p2p.identity import Identity, load_or_create_identity
from terminus.p2p.provider import Provider, ProviderPolicy
from terminus.transports.pool import PoolTransport


class Node:
    """An in-process provider whose fake model answers with its own name."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        consumer: str,
        *,
        models: tuple[str, ...] = ("fake-chat",),
        max_concurrent: int = 4,
        delay: float = 0.02,
    ) -> None:
        self.name = name
        self.client = Terminus(home=tmp / name)
        for model in models:
            self.client.catalog.register(
                fake_card(tmp / name / "w", model, replies=[f"from {name}"], token_delay_s=delay)
            )
        self.provider = Provider(
            self.client.transport,
            Identity.generate(),
            self.client.catalog,
            models,
            ProviderPolicy(allow=frozenset({consumer}), max_concurrent=max_concurrent),
            listen="127.0.0.1:0",
        )
        self.ref = self.provider.start().format()

    def close(self) -> None:
        self.provider.close()
        self.client.close()


@pytest.fixture
def consumer_home(tmp_path: Path) -> Path:
    return tmp_path / "consumer"


@pytest.fixture
def nodes(tmp_path: Path, consumer_home: Path) -> Iterator[list[Node]]:
    key = load_or_create_identity(consumer_home).node_id
    made = [
        Node(tmp_path, "a", key),
        Node(tmp_path, "b", key),
        Node(tmp_path, "c", key, models=("fake-other",)),
    ]
    try:
        yield made
    finally:
        for node in made:
            node.close()


def _consumer(home: Path, refs: list[str], **kwargs: object) -> Terminus:
    client = Terminus(home=home, delegate=refs, **kwargs)  # type: ignore[arg-type]
    for model in ("fake-chat", "fake-other"):
        client.catalog.register(fake_card(home / "w", model, replies=["local"]))
    return client


def test_concurrent_requests_spread_over_the_providers_that_share_the_model(
    nodes: list[Node], consumer_home: Path
) -> None:
    with _consumer(consumer_home, [n.ref for n in nodes]) as client:
        assert isinstance(client.transport, PoolTransport)

        def ask(_: int) -> str:
            return client.completion("hi", model="fake-chat").text

        with ThreadPoolExecutor(8) as workers:
            answers = Counter(workers.map(ask, range(8)))
        # c does not share fake-chat; a and b take the load between them
        assert set(answers) == {"from a", "from b"}
        assert min(answers.values()) >= 2
        assert client.completion("hi", model="fake-other").text == "from c"


def test_a_model_no_provider_shares_is_a_typed_error(
    nodes: list[Node], consumer_home: Path
) -> None:
    with _consumer(consumer_home, [n.ref for n in nodes]) as client:
        client.catalog.register(fake_card(consumer_home / "w", "fake-nowhere"))
        with pytest.raises(ModelNotFoundError, match="no provider in the pool"):
            client.completion("hi", model="fake-nowhere").result()


def test_a_closed_provider_is_routed_around_and_reported(
    nodes: list[Node], consumer_home: Path
) -> None:
    with _consumer(consumer_home, [n.ref for n in nodes]) as client:
        pool = client.transport
        assert isinstance(pool, PoolTransport)
        assert client.completion("hi", model="fake-chat").text in {"from a", "from b"}
        nodes[0].close()
        answers = {client.completion("hi", model="fake-chat").text for _ in range(4)}
        assert answers == {"from b"}
        pool.refresh()
        rows = {r["node_id"]: r for r in pool.describe()}
        gone = rows[nodes[0].provider.identity.node_id]
        assert not gone["reachable"] and gone["error"]
        alive = rows[nodes[1].provider.identity.node_id]
        assert alive["reachable"] and alive["models"] == ["fake-chat"]
        assert alive["latency_ms"] is not None


def test_with_every_provider_gone_the_pool_falls_back_or_raises(
    nodes: list[Node], consumer_home: Path
) -> None:
    refs = [n.ref for n in nodes[:2]]
    with _consumer(consumer_home, refs, delegate_fallback=True) as client:
        assert client.completion("hi", model="fake-chat").text in {"from a", "from b"}
        for node in nodes[:2]:
            node.close()
        assert client.completion("hi", model="fake-chat").text == "local"
    with _consumer(consumer_home, refs) as client, pytest.raises(PeerUnavailableError):
        client.completion("hi", model="fake-chat").result()


def test_peers_status_prints_each_providers_models_and_load(
    nodes: list[Node], consumer_home: Path
) -> None:
    runner = CliRunner()
    command = ["--home", str(consumer_home), "peers", "status"]
    result = runner.invoke(cli, [*command, "--json", *(f"--peer={n.ref}" for n in nodes)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["models"] for r in rows] == [["fake-chat"], ["fake-chat"], ["fake-other"]]
    assert all(r["reachable"] and r["max_concurrent"] == 4 and r["cores"] >= 1 for r in rows)
    nodes[2].close()
    text = runner.invoke(cli, [*command, f"--peer={nodes[2].ref}"])
    assert text.exit_code == 30 and "unreachable" in text.output


def _provide(procs: Processes, tmp: Path, name: str, consumer: str) -> subprocess.Popen[bytes]:
    home = tmp / name
    Catalog(home / "cards").save_user_card(
        fake_card(tmp / f"{name}-w", replies=[f"from {name}"], token_delay_s=0.01, user_added=True)
    )
    ref_file = tmp / f"{name}.ref"
    proc = procs.start(
        [
            *TERMINUS,
            "--offline",
            "provide",
            "--model",
            "fake-chat",
            "--allow",
            consumer,
            "--listen",
            "127.0.0.1:0",
            "--ref-file",
            str(ref_file),
        ],
        home,
        name,
    )
    proc.ref = wait_for_file(ref_file, proc, timeout=60)  # type: ignore[attr-defined]
    return proc


def test_a_killed_provider_process_is_routed_around(
    procs: Processes, tmp_path: Path, consumer_home: Path
) -> None:
    key = load_or_create_identity(consumer_home).node_id
    first, second = (_provide(procs, tmp_path, name, key) for name in ("p1", "p2"))
    refs = [first.ref, second.ref]  # type: ignore[attr-defined]
    with _consumer(consumer_home, refs) as client:
        seen = {client.completion("hi", model="fake-chat").text for _ in range(4)}
        assert seen <= {"from p1", "from p2"}
        os.killpg(first.pid, signal.SIGKILL)  # no CONNECTION_CLOSE: it only looks alive
        first.wait(timeout=10)
        after = [client.completion("hi", model="fake-chat").text for _ in range(3)]
        assert after == ["from p2"] * 3
        pool = client.transport
        assert isinstance(pool, PoolTransport)
        assert pool.fallbacks == 0
