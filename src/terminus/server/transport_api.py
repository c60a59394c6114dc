"""``POST /terminus/v1/transport/{op}``: the client's Transport calls, over HTTP.

This is what ``HttpTransport`` talks to when the CLI reuses a resident server: the
request is Terminus's own type as JSON (the same encoding delegated inference uses,
see ``terminus.p2p.ops``), validated on arrival; a streaming op answers NDJSON
lines ``{"event": …}``, a plain one ``{"result": …}``. Errors before the first
event keep their HTTP status with ``{"error": {"code", "message", "hint"}}``; a
stream that fails later ends with an ``{"error": …}`` line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from terminus.errors import InvalidParameterError, TerminusError
from terminus.p2p.ops import OPS, Op, dump_value, parse_request, run_op
from terminus.p2p.tool_ops import TOOL_OPS
from terminus.p2p.wire import error_message, json_default
from terminus.server.middleware import access_record
from terminus.server.state import TEXT_CAPABILITIES, ServerState, server_state
from terminus.server.streaming import EventStreamResponse
from terminus.types import CancelToken, Stats
from terminus.types.common import Capability

_END = object()


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, default=json_default, separators=(",", ":")).encode() + b"\n"


def _error(exc: BaseException) -> JSONResponse:
    status = exc.http_status if isinstance(exc, TerminusError) else 500
    body = json.loads(_line({"error": error_message(exc)}))
    return JSONResponse(body, status_code=status)


def add_transport_routes(router: APIRouter) -> None:
    @router.post("/terminus/v1/transport/{op_name}", response_model=None)
    async def transport_call(op_name: str, request: Request) -> Response:
        state = server_state(request)
        op = OPS.get(op_name)
        try:
            if op is None or op.name in TOOL_OPS:  # peer tools travel only between peers
                raise InvalidParameterError(f"unknown operation {op_name!r}")
            try:
                call = parse_request(op, await request.body())
            except (ValidationError, ValueError) as exc:
                raise InvalidParameterError(f"invalid {op.name} request: {exc}") from exc
            record = access_record(request)
            record.model = getattr(call, "model", None)
            await _prepare(state, call)
        except Exception as exc:
            return _error(exc)
        return await _run(request, state, op, call)


async def _prepare(state: ServerState, call: Any) -> None:
    """Text and embedding models load with this server's options (as for its OpenAI API)."""
    model = getattr(call, "model", None)
    if not isinstance(model, str):
        return
    card = await asyncio.to_thread(state.client.models.get, model)  # unknown: 404
    if card.capability in TEXT_CAPABILITIES or card.capability == Capability.EMBED:
        await state.ensure_loaded(card.id)


async def _run(request: Request, state: ServerState, op: Op, call: Any) -> Response:
    try:
        slot = state.admit()
    except Exception as exc:
        return JSONResponse({"error": {"code": "busy", "message": str(exc), "hint": None}}, 429)
    record = access_record(request)
    if not op.streams:
        try:
            result = await asyncio.to_thread(run_op, state.client.transport, op, call, None)
        except Exception as exc:
            return _error(exc)
        finally:
            slot.release()
        return Response(_line({"result": dump_value(op, result, result=True)}), 200,
                        media_type="application/json")  # fmt: skip
    cancel = CancelToken()
    events: Iterator[Any] = run_op(state.client.transport, op, call, cancel)
    try:
        first = await asyncio.to_thread(next, events, _END)
    except Exception as exc:
        slot.release()
        return _error(exc)

    async def body() -> AsyncIterator[bytes]:
        item = first
        try:
            while item is not _END:
                if isinstance(item, Stats):
                    record.note(item, None)
                yield _line({"event": dump_value(op, item, result=True)})
                item = await asyncio.to_thread(next, events, _END)
        except Exception as exc:
            yield _line({"error": error_message(exc)})
        finally:  # no next() is in flight here: closing runs the engine's cleanup
            close_events = getattr(events, "close", None)
            if close_events is not None:
                await asyncio.to_thread(close_events)

    def close() -> None:
        cancel.cancel()
        slot.release()

    response = EventStreamResponse(body(), on_disconnect=cancel.cancel, on_close=close)
    response.media_type = "application/x-ndjson"
    response.headers["content-type"] = "application/x-ndjson"
    return response
