"""HttpFileSource against a real local HTTP server, through the real ModelCache."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from terminus.errors import ChecksumMismatchError, SourceUnavailableError
from terminus.models.cache import ModelCache
from terminus.models.card import HttpSource, ModelCard, ModelFile
from terminus.models.sources import make_source
from terminus.models.sources.base import BlobSink
from terminus.models.sources.http import HttpFileSource, auth_headers
from terminus.types.common import Capability

PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "model.gguf"


@dataclass
class Behaviour:
    drop_after: int | None = None  # first request only: send this many bytes, then hang up
    ignore_range: bool = False
    wrong_bytes: bool = False
    status: int | None = None
    requests: list[dict[str, str]] = field(default_factory=list)

    def ranges(self) -> list[str | None]:
        return [r.get("range") for r in self.requests]


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    behaviour: Behaviour


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        b = self.server.behaviour
        first = not b.requests
        b.requests.append({k.lower(): v for k, v in self.headers.items()})
        if b.status is not None:
            body = f"status {b.status}".encode()
            self.send_response(b.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = bytes(x ^ 0xFF for x in PAYLOAD[:64]) + PAYLOAD[64:] if b.wrong_bytes else PAYLOAD
        start = 0
        range_header = self.headers.get("Range")
        if range_header and not b.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if first and b.drop_after is not None:
            self.wfile.write(body[: b.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.behaviour = Behaviour()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/{NAME}", srv.behaviour
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def _card(url: str) -> ModelCard:
    return ModelCard(
        id="http-test",
        capability=Capability.CHAT,
        engine="fake",
        files=(ModelFile(name=NAME, sha256=SHA, size=len(PAYLOAD)),),
        sources=(HttpSource(urls={NAME: url}),),
    )


def _source(url: str, max_retries: int = 5) -> HttpFileSource:
    return HttpFileSource(HttpSource(urls={NAME: url}), max_retries=max_retries, backoff=0.01)


class RecordingProgress:
    def __init__(self) -> None:
        self.starts: list[tuple[str, int | None, int]] = []
        self.advances: list[int] = []
        self.finished = 0

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        self.starts.append((description, total, initial))

    def advance(self, n: int) -> None:
        self.advances.append(n)

    def finish(self) -> None:
        self.finished += 1


def _partial(cache: ModelCache) -> Path:
    return cache.blobs / f"{SHA}.incomplete"


def test_plain_download(tmp_path: Path, server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    cache = ModelCache(tmp_path)
    files = cache.ensure(_card(url), [_source(url)])
    assert cache.blob_path(SHA).read_bytes() == PAYLOAD
    assert files.main.read_bytes() == PAYLOAD
    assert not _partial(cache).exists()
    assert behaviour.ranges() == [None]
    assert behaviour.requests[0]["user-agent"].startswith("terminus/")


def test_make_source_builds_http_source(server: tuple[str, Behaviour]) -> None:
    url, _ = server
    source = make_source(HttpSource(urls={NAME: url}))
    assert isinstance(source, HttpFileSource)
    assert source.resumable and source.provides(NAME) and not source.provides("other")
    assert url in source.describe()


def test_interrupted_transfer_resumes_within_one_call(
    tmp_path: Path, server: tuple[str, Behaviour]
) -> None:
    url, behaviour = server
    behaviour.drop_after = 1_000_000
    cache = ModelCache(tmp_path)
    cache.ensure(_card(url), [_source(url)])
    assert cache.blob_path(SHA).read_bytes() == PAYLOAD
    assert behaviour.ranges() == [None, "bytes=1000000-"]
    assert not _partial(cache).exists()


def test_interrupted_transfer_resumes_across_calls(
    tmp_path: Path, server: tuple[str, Behaviour]
) -> None:
    url, behaviour = server
    behaviour.drop_after = 1_500_000
    cache = ModelCache(tmp_path)
    card = _card(url)
    with pytest.raises(SourceUnavailableError):
        cache.ensure(card, [_source(url, max_retries=0)])
    assert not cache.blob_path(SHA).exists()
    assert not cache.is_cached(card)
    partial_size = _partial(cache).stat().st_size
    assert 0 < partial_size < len(PAYLOAD)
    assert cache.partial_bytes(card) == partial_size

    behaviour.drop_after = None
    behaviour.requests.clear()
    progress = RecordingProgress()
    cache.ensure(card, [_source(url)], progress)
    assert behaviour.ranges() == [f"bytes={partial_size}-"]
    assert progress.starts == [(NAME, len(PAYLOAD), partial_size)]
    assert sum(progress.advances) == len(PAYLOAD) - partial_size
    assert cache.blob_path(SHA).read_bytes() == PAYLOAD
    assert not _partial(cache).exists()


def test_server_ignoring_range_still_gives_correct_bytes(
    tmp_path: Path, server: tuple[str, Behaviour]
) -> None:
    url, behaviour = server
    behaviour.drop_after = 700_000
    behaviour.ignore_range = True
    cache = ModelCache(tmp_path)
    cache.ensure(_card(url), [_source(url)])
    assert cache.blob_path(SHA).read_bytes() == PAYLOAD
    assert behaviour.ranges() == [None, "bytes=700000-"]  # asked, got 200, restarted


def test_already_complete_partial_gets_416_and_is_kept(
    tmp_path: Path, server: tuple[str, Behaviour]
) -> None:
    url, behaviour = server
    partial = tmp_path / "x.incomplete"
    partial.write_bytes(PAYLOAD)
    sink = BlobSink(partial, resume=True)
    try:
        _source(url).fetch(_card(url).main_file, sink, RecordingProgress())
    finally:
        sink.close()
    assert behaviour.ranges() == [f"bytes={len(PAYLOAD)}-"]
    assert sink.offset == len(PAYLOAD) and sink.hexdigest() == SHA


def test_oversized_partial_is_restarted(tmp_path: Path, server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    partial = tmp_path / "x.incomplete"
    partial.write_bytes(PAYLOAD + b"junk")
    sink = BlobSink(partial, resume=True)
    try:
        _source(url).fetch(_card(url).main_file, sink, RecordingProgress())
    finally:
        sink.close()
    assert behaviour.ranges() == [f"bytes={len(PAYLOAD) + 4}-", None]
    assert partial.read_bytes() == PAYLOAD and sink.hexdigest() == SHA


def test_wrong_bytes_raise_checksum_mismatch(tmp_path: Path, server: tuple[str, Behaviour]) -> None:
    url, behaviour = server
    behaviour.wrong_bytes = True
    cache = ModelCache(tmp_path)
    with pytest.raises(ChecksumMismatchError):
        cache.ensure(_card(url), [_source(url)])
    assert not cache.blob_path(SHA).exists()
    assert not _partial(cache).exists()
    assert list(cache.blobs.iterdir()) == []


@pytest.mark.parametrize("status", [404, 403])
def test_client_error_is_source_unavailable(
    tmp_path: Path, server: tuple[str, Behaviour], status: int
) -> None:
    url, behaviour = server
    behaviour.status = status
    cache = ModelCache(tmp_path)
    with pytest.raises(SourceUnavailableError, match=str(status)):
        cache.ensure(_card(url), [_source(url)])
    assert len(behaviour.requests) == 1  # not retried
    assert not cache.blob_path(SHA).exists()


def test_server_error_is_retried_then_unavailable(
    tmp_path: Path, server: tuple[str, Behaviour]
) -> None:
    url, behaviour = server
    behaviour.status = 500
    cache = ModelCache(tmp_path)
    with pytest.raises(SourceUnavailableError, match="500"):
        cache.ensure(_card(url), [_source(url, max_retries=2)])
    assert len(behaviour.requests) == 3
    assert not cache.blob_path(SHA).exists()


def test_download_not_allowed_makes_no_request(
    tmp_path: Path, server: tuple[str, Behaviour]
) -> None:
    url, behaviour = server
    cache = ModelCache(tmp_path)
    source = HttpFileSource(HttpSource(urls={NAME: url}), allow_download=False)
    with pytest.raises(SourceUnavailableError):
        cache.ensure(_card(url), [source])
    assert behaviour.requests == []


def test_offline_env_makes_no_request(
    tmp_path: Path, server: tuple[str, Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, behaviour = server
    monkeypatch.setenv("TERMINUS_OFFLINE", "1")
    with pytest.raises(SourceUnavailableError):
        ModelCache(tmp_path).ensure(_card(url), [_source(url)])
    assert behaviour.requests == []


@pytest.mark.parametrize("url", ["ftp://example.com/model.gguf", "file:///etc/passwd"])
def test_non_http_url_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(SourceUnavailableError, match="http"):
        ModelCache(tmp_path).ensure(_card(url), [_source(url)])


def test_connection_refused_is_unavailable(tmp_path: Path, server: tuple[str, Behaviour]) -> None:
    # a port that was just free: nothing listens there
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{NAME}"
    with pytest.raises(SourceUnavailableError, match="after 2 attempt"):
        ModelCache(tmp_path).ensure(_card(url), [_source(url, max_retries=1)])


def test_progress_advances_sum_to_payload(tmp_path: Path, server: tuple[str, Behaviour]) -> None:
    url, _ = server
    progress = RecordingProgress()
    ModelCache(tmp_path).ensure(_card(url), [_source(url)], progress)
    assert progress.starts == [(NAME, len(PAYLOAD), 0)]
    assert sum(progress.advances) == len(PAYLOAD)
    assert progress.finished >= 1


def test_hf_token_only_for_hugging_face(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "secret")
    assert auth_headers("https://huggingface.co/org/repo/resolve/main/m.gguf") == {
        "Authorization": "Bearer secret"
    }
    assert auth_headers("https://cdn-lfs.huggingface.co/x") == {"Authorization": "Bearer secret"}
    assert auth_headers("https://example.com/huggingface.co/m.gguf") == {}
    assert auth_headers("https://nothuggingface.co/m.gguf") == {}
    monkeypatch.delenv("HF_TOKEN")
    assert auth_headers("https://huggingface.co/m.gguf") == {}
