"""A local imitation of the Hugging Face Hub's API and file endpoints, for tests and benches.

What huggingface_hub 2.4 and Terminus read, and nothing more:

- ``GET /api/models/OWNER/REPO[/revision/REV]?blobs=true``: ``sha``, ``gated`` and
  ``siblings`` with ``rfilename``, ``size``, ``blobId`` and, for LFS files,
  ``lfs = {sha256, size, pointerSize}``; errors carry ``X-Error-Code`` (RepoNotFound,
  RevisionNotFound, GatedRepo) as the Hub sends them.
- ``HEAD``/``GET /OWNER/REPO/resolve/REV/PATH``: LFS files answer 302 to a CDN-like
  ``/cdn/<sha256>`` (on a second server, another origin, so tokens must not follow),
  with ``X-Repo-Commit``, ``X-Linked-Etag``, ``X-Linked-Size`` and ``ETag``; small
  files are served directly. A gated repository answers 401 without the right token.
- ``/cdn/<sha256>`` serves bytes with ``Range`` (206 + ``Content-Range``), optionally
  throttled (to kill a transfer mid-file) or with one byte flipped (a tampering CDN).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

LFS_THRESHOLD = 10 << 20


def installed_file(distribution: str, suffix: str) -> Path | None:
    """A file shipped in an installed distribution (the real weights the fake Hub serves)."""
    import importlib.metadata as md

    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if str(entry).endswith(suffix):
            return Path(str(dist.locate_file(entry)))
    return None  # like the Hub: big files in LFS, small ones in git


def split_gguf(source: Path, target: Path, max_tensors: int) -> list[Path]:
    """Write ``source`` as a split GGUF (``TARGET-0000k-of-0000n.gguf``), as gguf-split does."""
    import gguf

    reader = gguf.GGUFReader(str(source))
    writer = gguf.GGUFWriter(
        str(target), reader.fields["general.architecture"].contents(), split_max_tensors=max_tensors
    )
    for key, value in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub_type = value.types[-1] if len(value.types) > 1 else None
        writer.add_key_value(key, value.contents(), value.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sorted(target.parent.glob(f"{target.stem}-*-of-*.gguf"))


@dataclass
class HubFile:
    path: str
    source: Path | bytes
    sha256: str
    size: int
    lfs: bool

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.source, bytes):
            return self.source[start:end]
        with self.source.open("rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


@dataclass
class HubRepo:
    repo: str
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)
    gated: bool = False


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.endpoint`` goes into ``HF_ENDPOINT``."""

    def __init__(self, token: str = "hf_test_token") -> None:
        self.token = token
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[dict[str, Any]] = []
        self.throttle_bps: float | None = None  # CDN bytes per second, None = full speed
        self.tamper: set[str] = set()  # sha256 of files served with one byte flipped
        self._blobs: dict[str, HubFile] = {}
        self._api = _Server(self, cdn=False)
        self._cdn = _Server(self, cdn=True)

    # -- content ----------------------------------------------------------------

    def add_file(
        self, repo: str, path: str, source: Path | bytes, *, lfs: bool | None = None
    ) -> HubFile:
        data_size = source.stat().st_size if isinstance(source, Path) else len(source)
        digest = _sha256(source)
        entry = HubFile(
            path, source, digest, data_size, lfs if lfs is not None else data_size >= LFS_THRESHOLD
        )
        target = self.repos.setdefault(repo, HubRepo(repo, hashlib.sha1(repo.encode()).hexdigest()))
        target.files[path] = entry
        self._blobs[digest] = entry
        return entry

    def gate(self, repo: str) -> None:
        self.repos[repo].gated = True

    # -- lifecycle ----------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self._api.url

    def __enter__(self) -> FakeHub:
        self._api.start()
        self._cdn.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._api.stop()
        self._cdn.stop()

    def ranges(self, path_part: str) -> list[str | None]:
        """The ``Range`` headers of CDN requests for a sha256 (or any path fragment)."""
        return [r["range"] for r in self.requests if r["cdn"] and path_part in r["path"]]

    # -- request handling -----------------------------------------------------------

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization", "") == f"Bearer {self.token}"

    def cdn_url(self, digest: str) -> str:
        return f"{self._cdn.url}/cdn/{digest}"

    def blob(self, digest: str) -> HubFile | None:
        return self._blobs.get(digest)


def _sha256(source: Path | bytes) -> str:
    digest = hashlib.sha256()
    if isinstance(source, bytes):
        digest.update(source)
    else:
        with source.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


class _Server:
    def __init__(self, hub: FakeHub, *, cdn: bool) -> None:
        handler = type("Handler", (_Handler,), {"hub": hub, "is_cdn": cdn})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    is_cdn: bool
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # -- routing ------------------------------------------------------------------

    def _route(self, *, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(
            {
                "method": self.command,
                "path": path,
                "range": self.headers.get("Range"),
                "authorization": self.headers.get("Authorization"),
                "cdn": self.is_cdn,
            }
        )
        if self.is_cdn:
            if path.startswith("/cdn/"):
                return self._serve_blob(path[5:], head=head)
            return self._error(404, "EntryNotFound", "no such blob")
        if path.startswith("/api/models/"):
            return self._model_info(path[len("/api/models/") :])
        parts = path.strip("/").split("/", 4)
        if len(parts) == 5 and parts[2] == "resolve":
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], parts[4], head=head)
        return self._error(404, None, "not found")

    def _repo(self, name: str, revision: str | None) -> HubRepo | None:
        repo = self.hub.repos.get(name)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if revision not in (None, "main", repo.commit):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return None
        return repo

    def _model_info(self, rest: str) -> None:
        name, revision = rest, None
        if "/revision/" in rest:
            name, _, revision = rest.partition("/revision/")
        repo = self._repo(name, revision)
        if repo is None:
            return
        siblings = []
        for f in repo.files.values():
            sibling: dict[str, Any] = {"rfilename": f.path, "size": f.size}
            if f.lfs:
                sibling["blobId"] = hashlib.sha1(f.sha256.encode()).hexdigest()
                sibling["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
            else:
                sibling["blobId"] = _git_blob_id(f.read(0, f.size))
            siblings.append(sibling)
        body = {
            "_id": repo.commit[:24],
            "id": repo.repo,
            "modelId": repo.repo,
            "sha": repo.commit,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "tags": ["gguf"],
            "siblings": siblings,
        }
        self._json(200, body)

    def _resolve(self, name: str, revision: str, path: str, *, head: bool) -> None:
        repo = self._repo(name, revision)
        if repo is None:
            return
        if repo.gated and not self.hub.authorized(self.headers):
            return self._error(401, "GatedRepo", "Access to model is restricted.")
        f = repo.files.get(path)
        if f is None:
            return self._error(404, "EntryNotFound", "Entry not found")
        common = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
        if f.lfs:
            self.send_response(302)
            headers = {
                **common,
                "Location": self.hub.cdn_url(f.sha256),
                "X-Linked-Etag": f'"{f.sha256}"',
                "X-Linked-Size": str(f.size),
                "ETag": f'"{f.sha256[:40]}"',
                "Content-Length": "0",
            }
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            return
        self._send_bytes(
            f, head=head, extra={**common, "ETag": f'"{_git_blob_id(f.read(0, f.size))}"'}
        )

    def _serve_blob(self, digest: str, *, head: bool) -> None:
        f = self.hub.blob(digest)
        if f is None:
            return self._error(404, "EntryNotFound", "no such blob")
        self._send_bytes(f, head=head, extra={"ETag": f'"{digest}"'})

    def _send_bytes(self, f: HubFile, *, head: bool, extra: dict[str, str]) -> None:
        start, end = 0, f.size
        header = self.headers.get("Range")
        status = 200
        if header and header.startswith("bytes="):
            first, _, last = header[6:].partition("-")
            start = int(first or 0)
            end = int(last) + 1 if last else f.size
            if start >= f.size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{f.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{f.size}")
        self.end_headers()
        if head:
            return
        try:
            self._write_range(f, start, end)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _write_range(self, f: HubFile, start: int, end: int) -> None:
        tampered = f.sha256 in self.hub.tamper
        throttle = self.hub.throttle_bps
        if isinstance(f.source, Path) and not tampered and throttle is None:
            with f.source.open("rb") as fh:  # the fast path: the kernel copies the file
                self.wfile.flush()
                sent = start
                while sent < end:
                    n = os.sendfile(self.connection.fileno(), fh.fileno(), sent, end - sent)
                    if n == 0:
                        break
                    sent += n
            return
        chunk = 256 << 10
        position = start
        while position < end:
            data = bytearray(f.read(position, min(end, position + chunk)))
            middle = f.size // 2
            if tampered and position <= middle < position + len(data):
                data[middle - position] ^= 0xFF
            self.wfile.write(data)
            position += len(data)
            if throttle:
                time.sleep(len(data) / throttle)

    # -- answers ------------------------------------------------------------------

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str | None, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
