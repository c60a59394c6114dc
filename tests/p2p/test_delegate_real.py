"""Delegated inference on the real SmolLM2 model, provider in another process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from p2pkit import TERMINUS, Processes, wait_for_file

from terminus import Terminus
from terminus.errors import PeerRefusedError, PeerUnavailableError
from terminus.p2p.identity import Identity, load_or_create_identity
from terminus.transports.peer import PeerTransport

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))
from realmodel import GREEDY, MODEL, make_client  # noqa: E402

pytestmark = pytest.mark.real

CONTEXT = 1024
PROMPT = "Name three colors of the rainbow."


@pytest.fixture
def consumer_home(tmp_path: Path) -> Path:
    return tmp_path / "consumer"


@pytest.fixture
def provider(
    procs: Processes, tmp_path: Path, consumer_home: Path, smollm2_gguf: Path
) -> Iterator[tuple[str, object]]:
    """`terminus provide` in its own process, allowing only the consumer's key."""
    key = load_or_create_identity(consumer_home).node_id
    ref_file = tmp_path / "node.ref"
    proc = procs.start(
        [
            *TERMINUS,
            "--offline",
            "provide",
            "--model",
            MODEL,
            "--allow",
            key,
            "--context-length",
            str(CONTEXT),
            "--parallel",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--ref-file",
            str(ref_file),
        ],
        tmp_path / "provider",
        "provider",
    )
    yield wait_for_file(ref_file, proc, timeout=120), proc


def _local_tokens(home: Path) -> list[str]:
    with make_client(home) as local:
        local.load_model(MODEL, context_length=CONTEXT, parallel=1, threads=1)
        return _tokens(local)


def _tokens(client: Terminus) -> list[str]:
    stream = client.completion(PROMPT, model=MODEL, max_tokens=24, **GREEDY)
    return [e.text for e in stream if e.type == "content"]


def test_delegated_stream_matches_local_greedy(
    provider: tuple[str, object], consumer_home: Path, tmp_path: Path
) -> None:
    ref, _ = provider
    with Terminus(home=consumer_home, transport=PeerTransport(ref, home=consumer_home)) as remote:
        events = list(remote.completion(PROMPT, model=MODEL, max_tokens=24, **GREEDY))
    kinds = [e.type for e in events]
    assert kinds[-1] == "done" and "stats" in kinds
    remote_tokens = [e.text for e in events if e.type == "content"]
    # A fresh local load with the same options: same slot history, same greedy tokens.
    assert remote_tokens == _local_tokens(tmp_path / "local")
    assert len(remote_tokens) > 3


def test_unknown_consumer_key_is_refused(provider: tuple[str, object], tmp_path: Path) -> None:
    ref, _ = provider
    stranger = PeerTransport(ref, home=tmp_path / "stranger", identity=Identity.generate())
    with (
        Terminus(home=tmp_path / "stranger", transport=stranger) as client,
        pytest.raises(PeerRefusedError, match="does not serve key"),
    ):
        client.completion(PROMPT, model=MODEL, max_tokens=4).result()


def test_provider_killed_mid_stream(
    provider: tuple[str, object], consumer_home: Path, tmp_path: Path
) -> None:
    ref, proc = provider
    with Terminus(home=consumer_home, transport=PeerTransport(ref, home=consumer_home)) as client:
        stream = iter(
            client.completion(
                "Write a long story about a dragon.", model=MODEL, max_tokens=400, **GREEDY
            )
        )
        first = next(stream)
        assert first.type == "content"
        os.killpg(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        with pytest.raises(PeerUnavailableError, match="lost mid-stream"):
            for _ in stream:
                pass

        # The provider is gone: a new request falls back to the local model when asked to.
        local = make_client(tmp_path / "fallback")
        local.load_model(MODEL, context_length=CONTEXT, parallel=1, threads=1)
        fallback = PeerTransport(
            ref, home=consumer_home, fallback=local.transport, connect_timeout=2, retries=1
        )
        started = time.monotonic()
        with Terminus(home=consumer_home, transport=fallback) as with_fallback:
            text = with_fallback.completion(PROMPT, model=MODEL, max_tokens=8, **GREEDY).text
        assert text.strip()
        assert fallback.fallbacks == 1
        assert time.monotonic() - started < 60

        # Without a fallback the caller gets the clear error instead.
        bare = PeerTransport(ref, home=consumer_home, connect_timeout=2, retries=0)
        with (
            Terminus(home=consumer_home, transport=bare) as without,
            pytest.raises(PeerUnavailableError, match="cannot reach provider"),
        ):
            without.completion(PROMPT, model=MODEL, max_tokens=4).result()
