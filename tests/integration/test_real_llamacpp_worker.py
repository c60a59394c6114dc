"""llama.cpp in its worker process, on the real SmolLM2: a real crash mid-stream, the
model reloading on the next request, no worker outliving its host, and the prompt
cache's bound reaching llama.cpp and keeping memory flat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from realmodel import GREEDY, MODEL, load_smollm2, make_client

from terminus import Terminus
from terminus.engines.base import LoadOptions
from terminus.engines.llamacpp import LlamaCppEngine
from terminus.errors import EngineError, WorkerCrashedError
from terminus.types import ContentDelta

pytestmark = pytest.mark.real

STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


@pytest.fixture
def own_client(real_home: Path) -> Iterator[Callable[..., Terminus]]:
    """Clients with their own worker (tests here kill workers), closed afterwards."""
    made: list[Terminus] = []

    def make(**options: object) -> Terminus:
        client = make_client(real_home)
        load_smollm2(client, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def worker_pid(client: Terminus) -> int:
    with client.manager.use(MODEL) as model:
        pid = model.worker_pid  # type: ignore[attr-defined]
    assert isinstance(pid, int) and pid != os.getpid()
    return pid


def gone(pid: int, within: float = 15.0) -> bool:
    """True once ``pid`` has exited (reaped, or a zombie not reaped yet)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_a_crash_mid_stream_is_an_engine_error_and_the_model_reloads(
    own_client: Callable[..., Terminus], sig: signal.Signals
) -> None:
    client = own_client()
    pid = worker_pid(client)
    received = 0
    with pytest.raises(WorkerCrashedError, match=sig.name) as raised:
        for event in client.completion(STORY, max_tokens=400, **GREEDY, model=MODEL):
            if isinstance(event, ContentDelta):
                received += 1
                if received == 5:
                    os.kill(pid, sig)
    assert isinstance(raised.value, EngineError)
    assert 5 <= received < 400
    assert gone(pid)
    # The host lives on; the next request loads the model in a fresh worker.
    answer = client.completion(
        "What is the capital of France?", max_tokens=20, **GREEDY, model=MODEL
    )
    assert "Paris" in answer.text
    assert worker_pid(client) != pid
    with client.manager.use(MODEL) as model:
        assert model.server.loads == 2  # type: ignore[attr-defined]


def test_a_crash_fails_every_stream_in_flight(own_client: Callable[..., Terminus]) -> None:
    client = own_client()
    pid = worker_pid(client)
    started = threading.Barrier(4)
    outcomes: list[BaseException | None] = [None] * 3

    def stream(i: int) -> None:
        events = iter(client.completion(STORY, max_tokens=400, **GREEDY, model=MODEL))
        try:
            next(events)
            started.wait(timeout=60)
            for _ in events:
                pass
        except BaseException as exc:  # collected for the main thread
            outcomes[i] = exc

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    started.wait(timeout=60)  # every stream has produced an event
    os.kill(pid, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(outcome, WorkerCrashedError) for outcome in outcomes), outcomes
    answer = client.completion(
        "What is the capital of France?", max_tokens=20, **GREEDY, model=MODEL
    )
    assert "Paris" in answer.text


def test_embeddings_survive_a_crash_too(own_client: Callable[..., Terminus]) -> None:
    from terminus.models.card import ModelCard

    client = own_client()
    chat = client.catalog.get(MODEL)
    card = ModelCard(
        id="smollm2-embed-worker",
        capability="embed",  # type: ignore[arg-type]
        engine="llamacpp",
        files=chat.files,
        sources=chat.sources,
        defaults={"pooling": "mean", "context_length": 256},
    )
    client.catalog.register(card)
    client.load_model(card.id, parallel=1, threads=1)
    before = client.embed(["a lighthouse"], model=card.id).vectors
    with client.manager.use(card.id) as model:
        server = model.server  # type: ignore[attr-defined]
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while server.pid is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the host has seen the worker end (not only its main thread)
    assert server.pid is None
    after = client.embed(["a lighthouse"], model=card.id).vectors  # reloaded on use
    assert after.shape == before.shape and abs(after - before).max() < 1e-5


def test_closing_the_client_ends_the_worker(own_client: Callable[..., Terminus]) -> None:
    client = own_client()
    pid = worker_pid(client)
    client.close()
    assert gone(pid)


def test_unloading_mid_stream_ends_it_with_an_engine_error(
    own_client: Callable[..., Terminus],
) -> None:
    client = own_client()
    pid = worker_pid(client)
    with pytest.raises(EngineError, match="unloaded") as raised:
        for n, _ in enumerate(client.completion(STORY, max_tokens=400, **GREEDY, model=MODEL)):
            if n == 3:
                client.manager.unload_all()
    assert not isinstance(raised.value, WorkerCrashedError)
    assert gone(pid)


def test_a_worker_never_outlives_its_host(smollm2_gguf: Path, real_home: Path) -> None:
    """The host is killed outright (no cleanup runs): its worker exits by itself."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from realmodel import MODEL, load_smollm2, make_client
        client = make_client({str(real_home)!r})
        load_smollm2(client)
        with client.manager.use(MODEL) as model:
            print(model.worker_pid, flush=True)
        time.sleep(120)
        """
    )
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert host.stdout is not None
        pid = int(host.stdout.readline())
        assert not gone(pid, within=0.1)
    finally:
        host.kill()
        host.wait()
        if host.stdout is not None:
            host.stdout.close()
    assert gone(pid)


def test_a_cancel_stops_llama_cpp_in_the_worker(own_client: Callable[..., Terminus]) -> None:
    client = own_client()
    stream = client.completion(STORY, max_tokens=400, **GREEDY, model=MODEL)
    received = 0
    for event in stream:
        if isinstance(event, ContentDelta):
            received += 1
            if received == 3:
                stream.cancel()
    result = stream.result()
    assert result.stop_reason == "cancelled"
    assert result.stats is not None and result.stats.completion_tokens < 20


# -- the prompt cache ---------------------------------------------------------------


def test_the_prompt_cache_is_bounded_counted_and_keeps_memory_flat(
    own_client: Callable[..., Terminus],
) -> None:
    bound = 4
    client = own_client(prompt_cache_mib=bound)
    card = client.catalog.get(MODEL)
    files = client.manager.ensure_files(card)
    engine = LlamaCppEngine()
    counted = {
        mib: engine.estimate_memory(
            card,
            files,
            LoadOptions(context_length=1024, parallel=4, extra={"prompt_cache_mib": mib}),
        )
        for mib in (0, bound)
    }
    assert counted[bound] - counted[0] == bound << 20
    assert client.loaded_models()[0].memory_bytes == counted[bound]
    with client.manager.use(MODEL) as model:
        assert ("cache_ram_mib", bound) in model.server._assignments  # type: ignore[attr-defined]
    worker = psutil.Process(worker_pid(client))
    # Each distinct ~80-token prompt leaves ~1.8 MB of KV state in llama.cpp's cache:
    # 30 of them would add ~55 MiB under llama.cpp's own 8 GiB bound.
    client.completion("Warm up.", max_tokens=1, **GREEDY, model=MODEL).result()
    start = worker.memory_info().rss
    for i in range(30):
        words = " ".join(f"w{i}x{j}" for j in range(15))
        client.completion(f"Note {i}: {words}.", max_tokens=1, **GREEDY, model=MODEL).result()
    grown = worker.memory_info().rss - start
    assert grown < (bound + 24) << 20, f"worker RSS grew {grown / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("busy", "wanted"), [(0.0, ("GOMP_SPINCOUNT", "300")), (2.0, ("OMP_WAIT_POLICY", "PASSIVE"))]
)
def test_worker_threads_wait_as_the_machine_allows(
    own_client: Callable[..., Terminus],
    monkeypatch: pytest.MonkeyPatch,
    busy: float,
    wanted: tuple[str, str],
) -> None:
    """llama.cpp's OpenMP threads must not spin on a busy machine, nor sleep at every barrier
    on a quiet one: the real worker process gets the policy its start-up reading calls for."""
    from terminus.engines import llamacpp_threads

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(llamacpp_threads, "busy_elsewhere", lambda: busy)
    pid = worker_pid(own_client())
    environ = psutil.Process(pid).environ()
    assert environ.get(wanted[0]) == wanted[1]
    other = "OMP_WAIT_POLICY" if wanted[0] == "GOMP_SPINCOUNT" else "GOMP_SPINCOUNT"
    assert other not in environ


def test_a_worker_follows_the_machine_between_requests(
    own_client: Callable[..., Terminus], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads Terminus chose are re-chosen when the machine changes after the load: the idle
    worker is replaced once two readings in a row disagree with it, and answers stay the same."""
    from terminus.engines import llamacpp, llamacpp_threads

    for name in ("TERMINUS_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    machine = {"busy": 0.0}
    monkeypatch.setattr(llamacpp_threads, "busy_elsewhere", lambda: machine["busy"])
    monkeypatch.setattr(llamacpp, "busy_elsewhere", lambda: machine["busy"])
    monkeypatch.setattr(llamacpp_threads, "fresh_reading", lambda: machine["busy"])
    monkeypatch.setattr(llamacpp_threads.ThreadTuner, "RECHECK_S", 0.0)
    client = own_client(threads=None)
    quiet = worker_pid(client)
    assert psutil.Process(quiet).environ().get("GOMP_SPINCOUNT") == "300"

    def ask() -> str:
        return str(client.completion("Name a colour.", max_tokens=6, **GREEDY, model=MODEL).text)

    before = ask()
    machine["busy"] = 8.0  # a busy neighbour started
    assert ask() == before and worker_pid(client) == quiet  # one reading: maybe a burst
    assert ask() == before  # the second: a new worker, set up for a busy machine
    busy = worker_pid(client)
    assert busy != quiet and gone(quiet)
    environ = psutil.Process(busy).environ()
    assert environ.get("OMP_WAIT_POLICY") == "PASSIVE" and "GOMP_SPINCOUNT" not in environ
    with client.manager.use(MODEL) as model:
        assignments = dict(model.server._assignments)  # type: ignore[attr-defined]
    assert assignments["cpuparams.n_threads"] == assignments["cpuparams_batch.n_threads"] == 1


def test_a_prestarted_worker_is_taken_by_the_next_load(
    own_client: Callable[..., Terminus],
) -> None:
    """`terminus run` starts the worker before it knows the model; the load then uses it."""
    from terminus.engines import llamacpp_proxy

    llamacpp_proxy.prestart_worker()
    spare = llamacpp_proxy._spare
    assert spare is not None and spare.alive()
    client = own_client()
    assert worker_pid(client) == spare.process.pid
    assert llamacpp_proxy._spare is None
    assert client.completion(STORY, max_tokens=4, **GREEDY, model=MODEL).text


def test_the_workers_own_http_port_needs_the_loads_key(
    own_client: Callable[..., Terminus],
) -> None:
    """llama.cpp in the worker listens on loopback; another local process gets 401."""
    import json
    import urllib.error
    import urllib.request

    client = own_client()
    with client.manager.use(MODEL) as model:
        address = model.server.address  # type: ignore[attr-defined]
    assert address is not None and address.startswith("http://127.0.0.1:")
    request = urllib.request.Request(
        f"{address}/v1/chat/completions",
        data=json.dumps(
            {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(request, timeout=60)
    refused.value.close()
    assert refused.value.code == 401
    # Terminus's own calls (in process, not over that port) still work.
    assert client.completion("Say hi.", max_tokens=4, **GREEDY, model=MODEL).text
