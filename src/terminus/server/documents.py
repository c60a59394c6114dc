"""Terminus extension: RAG workspaces over HTTP — upload documents, list them, ask.

``POST /terminus/v1/rag/workspaces/{ws}/documents`` takes multipart files (created on
first use) and streams NDJSON progress while they are embedded; ``POST .../ask`` streams
server-sent events: the numbered sources first, then the answer's text, then the sources
the answer cited (so a page can make each ``[n]`` open its passage).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, StreamingResponse

from terminus.errors import TerminusError
from terminus.rag import open_workspace
from terminus.rag.ingest import TextDocument
from terminus.rag.loaders import load_file
from terminus.rag.types import Citation
from terminus.server.errors import APIError
from terminus.server.guard import accepts_form_data
from terminus.server.library import StreamedProgress
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state
from terminus.server.streaming import EventStreamResponse, sse

T = TypeVar("T")
_END = object()
MAX_FILES = 32


class AskRequest(Wire):
    question: str = Field(min_length=1, max_length=10_000)
    model: str | None = None
    top_k: int = Field(default=4, ge=1, le=50)
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = True


def _ndjson(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


def _source(citation: Citation) -> dict[str, Any]:
    result = citation.result
    return {
        "number": citation.number,
        "label": f"{Path(result.source).name}#{result.position.index}",
        "source": Path(result.source).name,
        "document_id": result.document_id,
        "text": result.text,
        "score": result.score,
        "position": result.position.model_dump(),
    }


async def iterate_in_thread(produce: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Run a blocking iterator on a worker thread and hand its items to the event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def pump() -> None:
        try:
            for item in produce():
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    threading.Thread(target=pump, name="terminus-rag-pump", daemon=True).start()
    while True:
        item = await queue.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _documents(state: ServerState, workspace: str) -> dict[str, Any]:
    with open_workspace(state.client, workspace) as ws:
        docs = ws.documents()
        model = ws.model
    data = [d.model_dump(mode="json") | {"name": Path(d.source).name} for d in docs]
    return {"object": "list", "workspace": workspace, "model": model, "data": data}


def _read_uploads(folder: Path, uploads: list[tuple[str, bytes]]) -> list[TextDocument]:
    """Each upload's text, through the same loaders as files on disk (PDF, HTML …)."""
    documents = []
    for name, data in uploads:
        safe = Path(name).name or "document.txt"
        path = folder / safe
        path.write_bytes(data)
        loaded = load_file(path)  # a typed error names the file
        documents.append(TextDocument(loaded.text, source=safe, kind=loaded.kind))
    return documents


async def ingest_events(
    state: ServerState, workspace: str, uploads: list[tuple[str, bytes]]
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    progress = StreamedProgress(loop, queue)

    def work() -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="terminus-upload-") as tmp:
            documents = _read_uploads(Path(tmp), uploads)
        with open_workspace(state.client, workspace, create=True) as ws:
            results = ws.ingest(documents, progress=progress)
        return [r.model_dump(mode="json") for r in results]

    job = asyncio.ensure_future(asyncio.to_thread(work))
    while not job.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            yield _ndjson(getter.result())
        else:
            getter.cancel()
    try:
        results = job.result()
    except TerminusError as exc:
        yield _ndjson({"status": "error", "error": exc.one_line(), "code": exc.code})
        return
    yield _ndjson({"status": "success", "workspace": workspace, "documents": results})


async def _uploads(request: Request) -> list[tuple[str, bytes]]:
    async with request.form() as form:  # closes the uploads' spools
        files = [v for v in form.getlist("file") if isinstance(v, UploadFile)]
        return [(f.filename or "document.txt", await f.read()) for f in _checked(files)]


def _checked(files: list[UploadFile]) -> list[UploadFile]:
    if not files:
        raise APIError(
            400,
            "send one or more files in the 'file' field",
            code="invalid_parameter",
            param="file",
        )
    if len(files) > MAX_FILES:
        raise APIError(
            400, f"at most {MAX_FILES} files at once", code="invalid_parameter", param="file"
        )
    return files


def _ask_stream(
    state: ServerState, workspace: str, body: AskRequest, holder: dict[str, Any]
) -> Callable[[], Iterator[dict[str, Any]]]:
    """Events of one answer: sources, content deltas, citations (runs on a worker thread)."""

    def produce() -> Iterator[dict[str, Any]]:
        generation: dict[str, Any] = {}
        if body.temperature is not None:
            generation["temperature"] = body.temperature
        if body.max_tokens is not None:
            generation["max_tokens"] = body.max_tokens
        with open_workspace(state.client, workspace) as ws:
            answer = ws.ask(body.question, model=body.model, top_k=body.top_k, **generation)
            holder["answer"] = answer
            yield {"type": "sources", "sources": [_source(c) for c in answer.sources]}
            stop = None
            for event in answer:
                if event.type == "content":
                    yield {"type": "content", "text": event.text}
                elif event.type == "done":
                    stop = event.stop_reason
            yield {
                "type": "done",
                "stop_reason": stop,
                "citations": [c.number for c in answer.citations],
            }

    return produce


def add_document_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/rag/workspaces/{workspace}/documents")
    async def documents(workspace: str, request: Request) -> dict[str, Any]:
        return await asyncio.to_thread(_documents, server_state(request), workspace)

    @router.post("/terminus/v1/rag/workspaces/{workspace}/documents", response_model=None)
    @accepts_form_data
    async def ingest(workspace: str, request: Request) -> StreamingResponse:
        state = server_state(request)
        uploads = await _uploads(request)
        return StreamingResponse(
            ingest_events(state, workspace, uploads), media_type="application/x-ndjson"
        )

    @router.post("/terminus/v1/rag/workspaces/{workspace}/ask", response_model=None)
    async def ask(workspace: str, request: Request) -> JSONResponse | EventStreamResponse:
        body = await parse_body(request, AskRequest)
        state = server_state(request)
        await asyncio.to_thread(_documents, state, workspace)  # unknown workspace → 404 first
        holder: dict[str, Any] = {}
        produce = _ask_stream(state, workspace, body, holder)
        slot = state.admit()
        if not body.stream:
            try:
                events = [e async for e in iterate_in_thread(produce)]
            finally:
                slot.release()
            text = "".join(e["text"] for e in events if e["type"] == "content")
            return JSONResponse(
                {
                    "text": text,
                    "sources": events[0]["sources"],
                    "citations": events[-1]["citations"],
                    "stop_reason": events[-1]["stop_reason"],
                }
            )

        async def body_stream() -> AsyncIterator[bytes]:
            try:
                async for event in iterate_in_thread(produce):
                    yield sse(event)
            except TerminusError as exc:
                yield sse({"type": "error", "error": exc.one_line(), "code": exc.code})
            yield b"data: [DONE]\n\n"

        def cancel() -> None:
            answer = holder.get("answer")
            if answer is not None:
                answer.cancel()

        return EventStreamResponse(body_stream(), on_disconnect=cancel, on_close=slot.release)
