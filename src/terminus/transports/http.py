"""The same Transport, served by a Terminus server over HTTP (``/terminus/v1/transport``).

The CLI uses it to answer from a resident server's warm models. Requests and
events cross as Terminus's own types (validated on both sides, as for delegated
inference), so a completion from the server is event for event the one a local
run would give. Errors come back as the same Terminus error types, by code.
Leaving a stream early (or cancelling its token) closes the connection, which
cancels the generation on the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from terminus.engines.base import LoadOptions
from terminus.engines.speech_base import TranscribeProgress
from terminus.errors import EngineError, SourceUnavailableError, TerminusError
from terminus.p2p.ops import OPS, load_value, request_body
from terminus.p2p.wire import decode_body
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    Done,
    Embeddings,
    EmbedRequest,
    LoadedModelInfo,
    TextRequest,
)
from terminus.types.image import ImageEvent, ImageRequest
from terminus.types.speech import (
    OcrRequest,
    OcrResult,
    SpeakRequest,
    SpeechChunk,
    TranscribeRequest,
    Transcription,
    TranslateRequest,
)

_JSON = {"Content-Type": "application/json"}


def error_class(code: str) -> type[TerminusError]:
    """The Terminus error type whose ``code`` this is (``TerminusError`` if none)."""
    stack: list[type[TerminusError]] = [TerminusError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls
        stack.extend(cls.__subclasses__())
    return TerminusError


def _raise(data: Any, status: int | None = None) -> None:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        raise EngineError(f"the server answered {status} without an error")
    cls = error_class(str(error.get("code")))
    raise cls(str(error.get("message") or "error"), hint=error.get("hint"))


class HttpTransport:
    """Runs requests on a Terminus server at ``base_url`` (``http://127.0.0.1:8080``)."""

    name = "http"

    def __init__(
        self, base_url: str, *, api_key: str | None = None, http: httpx.Client | None = None
    ) -> None:
        """``http``: a client to use (and close) instead of a new one; its headers are kept."""
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(connect=5.0, read=None, write=60.0, pool=None)
        )
        self._http.base_url = httpx.URL(self.base_url)
        if api_key:
            self._http.headers["Authorization"] = f"Bearer {api_key}"

    # -- streams -------------------------------------------------------------------

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self._stream("chat", request, cancel)

    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self._stream("complete", request, cancel)

    def translate(self, request: TranslateRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self._stream("translate", request, cancel)

    def speak(self, request: SpeakRequest, cancel: CancelToken) -> Iterator[SpeechChunk]:
        return self._stream("speak", request, cancel)

    def generate_image(self, request: ImageRequest, cancel: CancelToken) -> Iterator[ImageEvent]:
        return self._stream("generate_image", request, cancel)

    # -- calls ---------------------------------------------------------------------

    def embed(self, request: EmbedRequest) -> Embeddings:
        result: Embeddings = self._call("embed", request)
        return result

    def transcribe(
        self, request: TranscribeRequest, progress: TranscribeProgress | None = None
    ) -> Transcription:
        result: Transcription = self._call("transcribe", request)
        return result

    def ocr(self, request: OcrRequest) -> OcrResult:
        result: OcrResult = self._call("ocr", request)
        return result

    # -- models live on the server --------------------------------------------------

    def load(self, model: str, options: LoadOptions) -> LoadedModelInfo:
        body = {
            "context_length": options.context_length,
            "parallel": options.parallel,
            "threads": options.threads,
        }
        data = self._json("POST", f"/terminus/v1/models/{model}/load", body)
        return LoadedModelInfo.model_validate(data)

    def unload(self, model: str) -> bool:
        return bool(self._json("POST", f"/terminus/v1/models/{model}/unload")["unloaded"])

    def loaded(self) -> list[LoadedModelInfo]:
        data = self._json("GET", "/terminus/v1/ps")
        return [LoadedModelInfo.model_validate(m) for m in data["models"]]

    def ps(self) -> dict[str, Any]:
        """The server's ``/terminus/v1/ps`` as it answers it (with ``expires_at``)."""
        data: dict[str, Any] = self._json("GET", "/terminus/v1/ps")
        return data

    def close(self) -> None:
        self._http.close()

    # -- internals -----------------------------------------------------------------

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            reply = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        data = reply.json()
        if reply.status_code != 200:
            _raise(data, reply.status_code)
        return data

    def _call(self, op_name: str, request: Any) -> Any:
        op = OPS[op_name]
        try:
            reply = self._http.post(
                f"/terminus/v1/transport/{op.name}",
                content=request_body(op, request),
                headers=_JSON,
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        data = decode_body(reply.content)
        if reply.status_code != 200 or "result" not in data:
            _raise(data, reply.status_code)
        return load_value(op, data["result"], result=True)

    def _stream(self, op_name: str, request: Any, cancel: CancelToken) -> Iterator[Any]:
        op = OPS[op_name]
        path = f"/terminus/v1/transport/{op.name}"
        try:
            body = request_body(op, request)
            with self._http.stream("POST", path, content=body, headers=_JSON) as reply:
                if reply.status_code != 200:
                    reply.read()
                    _raise(json.loads(reply.content or b"{}"), reply.status_code)
                for line in reply.iter_lines():
                    if cancel.cancelled:
                        reply.close()  # the server sees the disconnect and cancels
                        if op.result is ChatEvent:
                            yield Done(stop_reason="cancelled")
                        return
                    if not line:
                        continue
                    data = decode_body(line.encode())
                    if "error" in data:
                        _raise(data)
                    yield load_value(op, data["event"], result=True)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: httpx.HTTPError) -> SourceUnavailableError:
        return SourceUnavailableError(
            f"the Terminus server at {self.base_url} did not answer: {exc}",
            hint="start it with `terminus serve --detach`, or run in-process with --no-server",
        )
