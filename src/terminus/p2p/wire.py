"""Frames and values on the wire: length-prefixed JSON, with bytes and arrays tagged.

Only plain data crosses (never pickles): the receiver validates every value into
its pydantic type, so a peer cannot make us build arbitrary objects.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np

from terminus.errors import PeerUnavailableError, TerminusError

MAX_FRAME = 64 << 20
_HEADER = struct.Struct(">I")


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, default=json_default, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise PeerUnavailableError(f"peer sent a {length}-byte frame (limit {MAX_FRAME})")
    return int(length)


def decode_body(body: bytes) -> dict[str, Any]:
    data = json.loads(body, object_hook=_tagged)
    if not isinstance(data, dict):
        raise PeerUnavailableError("peer sent a malformed frame")
    return data


def json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {
            "$nd": base64.b64encode(array.tobytes()).decode(),
            "dtype": str(array.dtype),
            "shape": list(array.shape),
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot send {type(value).__name__} to a peer")


_ALLOWED_DTYPES = {"float32", "float64", "int16", "int32", "int64", "uint8", "float16"}


def _tagged(obj: dict[str, Any]) -> Any:
    if "$b64" in obj and len(obj) == 1:
        return base64.b64decode(obj["$b64"])
    if "$nd" in obj and obj.get("dtype") in _ALLOWED_DTYPES:
        data = base64.b64decode(obj["$nd"])
        return np.frombuffer(data, dtype=obj["dtype"]).reshape(obj["shape"]).copy()
    return obj


def error_message(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, TerminusError):
        return {"code": exc.code, "message": exc.message, "hint": exc.hint}
    return {"code": "engine_error", "message": f"{type(exc).__name__}: {exc}", "hint": None}


def error_from_message(data: dict[str, Any], peer: str) -> TerminusError:
    """Rebuild the provider's error as the same Terminus type, by its code."""
    cls = _ERRORS_BY_CODE().get(str(data.get("code")), TerminusError)
    error = cls(f"peer {peer[:12]}…: {data.get('message', 'error')}", hint=data.get("hint"))
    return error


def _ERRORS_BY_CODE() -> dict[str, type[TerminusError]]:  # noqa: N802 - a table, built once
    global _CODES
    if _CODES is None:
        found: dict[str, type[TerminusError]] = {}
        stack: list[type[TerminusError]] = [TerminusError]
        while stack:
            cls = stack.pop()
            found.setdefault(cls.code, cls)
            stack.extend(cls.__subclasses__())
        _CODES = found
    return _CODES


_CODES: dict[str, type[TerminusError]] | None = None
