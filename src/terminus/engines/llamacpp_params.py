"""``xllamacpp.CommonParams`` written in the host, built in the worker process.

The host decides every load setting but never imports xllamacpp (its import
costs ~50 ms and the native objects do not pickle). It writes the settings on a
:class:`ParamsRecorder` with the same attribute syntax as ``CommonParams``
(``params.cpuparams.n_threads = 4``); the worker replays the recorded
assignments on a real ``CommonParams`` with :func:`build_params`. Values that
only exist inside xllamacpp are named with :class:`Native`, and "at least" with
:class:`AtLeast`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Assignment = tuple[str, Any]  # ("cpuparams.n_threads", 4)


# NamedTuples, not dataclasses: this module is imported by `terminus run` before its worker
# starts, and `dataclasses` (with `inspect`) would add to every cold start.
class Native(NamedTuple):
    """An xllamacpp object by dotted name, called with ``args`` when they are given.

    ``Native("llama_pooling_type.LLAMA_POOLING_TYPE_MEAN")`` is an enum member,
    ``Native("CommonAdapterLoraInfo", (path, 1.0))`` a constructed object.
    """

    name: str
    args: tuple[Any, ...] | None = None


class AtLeast(NamedTuple):
    """Raise the field to ``value`` if its default is lower; keep a higher default."""

    value: int


class ParamsRecorder:
    """Records attribute assignments, nested ones included, in order."""

    def __init__(self, prefix: str = "", log: list[Assignment] | None = None) -> None:
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_log", [] if log is None else log)

    def __setattr__(self, name: str, value: Any) -> None:
        self._log.append((self._prefix + name, value))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for key, value in reversed(self._log):  # what this recorder set last
            if key == self._prefix + name:
                return value
        return ParamsRecorder(f"{self._prefix}{name}.", self._log)  # a nested struct

    @property
    def assignments(self) -> list[Assignment]:
        return list(self._log)


def build_params(assignments: list[Assignment]) -> Any:
    """A real ``xllamacpp.CommonParams`` with the recorded assignments applied."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    for dotted, value in assignments:
        *path, field = dotted.split(".")
        target = params
        for part in path:
            target = getattr(target, part)
        if isinstance(value, AtLeast):
            value = max(int(getattr(target, field)), value.value)
        setattr(target, field, _resolve(xllamacpp, value))
    return params


def _resolve(module: Any, value: Any) -> Any:
    if isinstance(value, list):
        return [_resolve(module, v) for v in value]
    if not isinstance(value, Native):
        return value
    found = module
    for part in value.name.split("."):
        found = getattr(found, part)
    return found if value.args is None else found(*value.args)


def assignments_to_json(assignments: list[Assignment]) -> list[Any]:
    """The assignments as JSON values (``Native`` and ``AtLeast`` tagged), for a file."""
    return [[key, _to_json(value)] for key, value in assignments]


def assignments_from_json(data: Any) -> list[Assignment]:
    """The inverse of :func:`assignments_to_json`; ``ValueError`` for anything malformed."""
    if not isinstance(data, list):
        raise ValueError("assignments must be a list")
    out: list[Assignment] = []
    for entry in data:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ValueError(f"not an assignment: {entry!r}")
        out.append((entry[0], _from_json(entry[1])))
    return out


def _to_json(value: Any) -> Any:
    if isinstance(value, Native):
        args = None if value.args is None else [_to_json(a) for a in value.args]
        return {"native": value.name, "args": args}
    if isinstance(value, AtLeast):
        return {"at_least": value.value}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError(f"cannot write {type(value).__name__} as JSON")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "native" in value and isinstance(value["native"], str):
            args = value.get("args")
            return Native(value["native"], None if args is None else tuple(map(_from_json, args)))
        if "at_least" in value and isinstance(value["at_least"], int):
            return AtLeast(value["at_least"])
        raise ValueError(f"unknown value {value!r}")
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
