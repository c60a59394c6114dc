"""SmolLM2 split over llama.cpp RPC workers reached through the peer channel (127.0.0.1).

Each worker is an ``RpcWorker``: llama.cpp's own ``ggml-rpc-server`` process on loopback
behind an iroh endpoint that admits allow-listed keys only. Needs the RPC build
(`terminus rpc build`, or TERMINUS_LLAMA_RPC_BIN): skipped with that reason without it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminus.errors import EngineUnavailableError, PeerRefusedError, PeerUnavailableError
from terminus.p2p.identity import Identity
from terminus.p2p.rpc_binaries import RPC_SERVER, binary
from terminus.p2p.rpc_tunnel import RpcWorker
from terminus.p2p.split import SplitDone, SplitModel, SplitToken
from terminus.types import ContentDelta

pytestmark = pytest.mark.real
PROMPT = "Name three colors of the rainbow."


@pytest.fixture
def rpc_server(tmp_path: Path) -> Path:
    try:
        return binary(tmp_path, RPC_SERVER)
    except EngineUnavailableError as exc:
        pytest.skip(f"llama.cpp RPC build absent: {exc.hint}")


@pytest.fixture
def host() -> Identity:
    return Identity.generate()


@pytest.fixture
def workers(rpc_server: Path, host: Identity) -> Iterator[list[RpcWorker]]:
    made = [
        RpcWorker(Identity.generate(), rpc_server, frozenset({host.node_id}), listen="127.0.0.1:0")
        for _ in range(2)
    ]
    refs = [w.start() for w in made]
    for worker, ref in zip(made, refs, strict=True):
        worker.ref = ref  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        for worker in made:
            worker.close()


def _tokens(model: SplitModel, max_tokens: int = 24) -> list[int]:
    return [e.token_id for e in model.generate(PROMPT, max_tokens) if isinstance(e, SplitToken)]


def test_split_greedy_tokens_equal_a_single_process_run(
    workers: list[RpcWorker], host: Identity, smollm2_gguf: Path, tmp_path: Path
) -> None:
    with SplitModel(smollm2_gguf, [], host, tmp_path).start() as single:
        expected = _tokens(single)
    refs = [w.ref for w in workers]  # type: ignore[attr-defined]
    with SplitModel(smollm2_gguf, refs, host, tmp_path).start() as split:
        assert split.remote_layers == 20  # 30 layers: a third here, a third on each worker
        got = _tokens(split)
    assert got == expected and len(got) > 5
    for worker in workers:  # each worker really held layers (weights went through the tunnel)
        assert worker.stats.connections >= 1 and worker.stats.bytes_to_rpc > 10_000_000


def test_an_unknown_key_is_refused_before_any_rpc_byte(
    workers: list[RpcWorker], smollm2_gguf: Path, tmp_path: Path
) -> None:
    stranger = Identity.generate()
    refs = [w.ref for w in workers]  # type: ignore[attr-defined]
    with pytest.raises(PeerRefusedError, match="refused this node"):
        SplitModel(smollm2_gguf, refs, stranger, tmp_path).start()
    assert workers[0].stats.refused == 1
    assert all(w.stats.bytes_to_rpc == 0 and w.stats.connections == 0 for w in workers)


def test_a_worker_killed_mid_generation_is_a_typed_error(
    workers: list[RpcWorker], host: Identity, smollm2_gguf: Path, tmp_path: Path
) -> None:
    worker = workers[0]
    with SplitModel(smollm2_gguf, [worker.ref], host, tmp_path).start() as split:  # type: ignore[attr-defined]
        events = split.generate("Write a long story about a dragon.", 400)
        assert isinstance(next(events), SplitToken)
        assert worker._proc is not None
        os.kill(worker._proc.pid, signal.SIGKILL)  # the rpc-server process dies
        with pytest.raises(PeerUnavailableError, match="worker was lost"):
            for event in events:
                assert not isinstance(event, SplitDone)
    # This process carries on: the model loads again without that worker.
    with SplitModel(smollm2_gguf, [], host, tmp_path).start() as alone:
        assert alone.text(PROMPT, 4)


def test_cli_provide_rpc_and_run_split(
    rpc_server: Path, smollm2_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user would: a `terminus provide --rpc` worker process, `terminus run --split` here."""
    from click.testing import CliRunner
    from p2pkit import Processes

    from terminus.cli.main import cli
    from terminus.p2p.identity import load_or_create_identity

    host_home = tmp_path / "host"
    procs = Processes(tmp_path / "logs")
    try:
        ref = _rpc_worker_process(procs, tmp_path, load_or_create_identity(host_home).node_id)
        monkeypatch.setenv("TERMINUS_HOME", str(host_home))
        args = ["--offline", "run", "-m", "smollm2", "--max-tokens", "8", "--split", ref]
        result = CliRunner().invoke(cli, [*args, "What is the capital of France?"])
        assert result.exit_code == 0, result.output
        assert "Paris" in result.stdout
        assert "15 of 30 layers on 1 worker" in result.stderr
        monkeypatch.setenv("TERMINUS_HOME", str(tmp_path / "stranger"))
        refused = CliRunner().invoke(cli, [*args, "Hi"])
        assert refused.exit_code == 31 and "refused this node" in refused.output
    finally:
        procs.kill_all()


def _rpc_worker_process(procs: object, tmp_path: Path, allow: str) -> str:
    from p2pkit import TERMINUS, Processes, wait_for_file

    assert isinstance(procs, Processes)
    ref_file = tmp_path / "worker.ref"
    worker = procs.start(
        [*TERMINUS, "--offline", "provide", "--rpc", "--allow", allow,
         "--rpc-listen", "127.0.0.1:0", "--rpc-ref-file", str(ref_file)],
        tmp_path / "worker",
        "worker",
    )  # fmt: skip
    return wait_for_file(ref_file, worker, timeout=60)


def test_load_model_split_runs_every_request_through_the_workers(
    rpc_server: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`load_model(..., split=[...])`: chat, streaming and raw completion on the split model."""
    from p2pkit import Processes

    from terminus import Terminus
    from terminus.p2p.identity import load_or_create_identity

    host_home = tmp_path / "host"
    monkeypatch.setenv("TERMINUS_HOME", str(host_home))
    procs = Processes(tmp_path / "logs")
    try:
        ref = _rpc_worker_process(procs, tmp_path, load_or_create_identity(host_home).node_id)
        with Terminus(allow_download=False) as t:
            info = t.load_model("smollm2", split=[ref], context_length=512)
            assert info.engine == "llamacpp-split"
            question = [{"role": "user", "content": "What is the capital of France?"}]
            answer = t.completion(question, model="smollm2", temperature=0, max_tokens=8).result()
            assert "Paris" in answer.text
            assert answer.stats is not None and answer.stats.prompt_tokens > 5
            stream = t.completion(question, model="smollm2", temperature=0, max_tokens=8)
            deltas = [e.text for e in stream if isinstance(e, ContentDelta)]
            assert len(deltas) > 1 and "".join(deltas) == answer.text
            seeded = [
                t.completion(question, model="smollm2", temperature=0.9, seed=3, max_tokens=12)
                .result()
                .text
                for _ in range(2)
            ]
            assert seeded[0] == seeded[1]
            raw = t.text_completion(
                "The capital of France is", model="smollm2", temperature=0, max_tokens=4
            ).result()
            assert raw.text.strip()
    finally:
        procs.kill_all()


def test_serve_split_answers_the_openai_client(
    rpc_server: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user would: `terminus provide --rpc` on a helper, `terminus serve -m … --split REF`
    here, and the official OpenAI client talking to it."""
    import httpx
    import openai
    from p2pkit import TERMINUS, Processes, free_port

    from terminus.p2p.identity import load_or_create_identity

    host_home = tmp_path / "host"
    procs = Processes(tmp_path / "logs")
    try:
        ref = _rpc_worker_process(procs, tmp_path, load_or_create_identity(host_home).node_id)
        port = free_port()
        server = procs.start(
            [*TERMINUS, "--offline", "serve", "-m", "smollm2", "--split", ref,
             "--port", str(port), "--context-length", "512"],
            host_home,
            "server",
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, procs.log("server")
            with contextlib.suppress(httpx.HTTPError):
                ps = httpx.get(f"{base}/terminus/v1/ps", timeout=5).json()
                if ps["models"]:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("the split model did not load: " + procs.log("server"))
        assert [m["engine"] for m in ps["models"]] == ["llamacpp-split"]
        with openai.OpenAI(base_url=f"{base}/v1", api_key="unused") as client:
            reply = client.chat.completions.create(
                model="smollm2",
                messages=[{"role": "user", "content": "What is the capital of France?"}],
                temperature=0,
                max_tokens=8,
            )
            assert "Paris" in (reply.choices[0].message.content or "")
            chunks = client.chat.completions.create(
                model="smollm2",
                messages=[{"role": "user", "content": "What is the capital of France?"}],
                temperature=0,
                max_tokens=8,
                stream=True,
            )
            streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert streamed == reply.choices[0].message.content
            with pytest.raises(openai.BadRequestError, match="cannot call tools"):
                client.chat.completions.create(
                    model="smollm2",
                    messages=[{"role": "user", "content": "Weather in Paris?"}],
                    tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}],
                )
    finally:
        procs.kill_all()


def test_the_memory_check_covers_the_workers_before_any_weight_is_sent(
    workers: list[RpcWorker],
    host: Identity,
    smollm2_gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The workers report their free memory first; a model part they cannot hold is refused."""
    from terminus.errors import InsufficientMemoryError
    from terminus.models.gguf import MemoryEstimate
    from terminus.p2p import split as split_module

    huge = MemoryEstimate(2**50, 0, 0, 2**50, "")  # a petabyte: more than any worker has
    monkeypatch.setattr(split_module, "estimate_load_bytes", lambda *_: huge)
    refs = [w.ref for w in workers]  # type: ignore[attr-defined]
    with pytest.raises(InsufficientMemoryError, match="MiB free together"):
        SplitModel(smollm2_gguf, refs, host, tmp_path).start()
    assert all(w.stats.connections >= 1 for w in workers)  # they were asked…
    assert all(w.stats.bytes_to_rpc < 1_000_000 for w in workers)  # …and got no weights
