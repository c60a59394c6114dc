"""``.text`` is an attribute on every result; calling it (the older spelling) still works.

:class:`~terminus.types.chat.Completion`, transcriptions and translations always had
``.text`` as an attribute, while streams and RAG answers had a ``.text()`` method. Streams
now expose ``.text`` too; the value they return is a ``str`` that may still be called,
with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Generator
from typing import Any


def _warn_call(owner: str) -> None:
    warnings.warn(
        f"{owner}.text() is deprecated; .text is an attribute now (drop the parentheses)",
        DeprecationWarning,
        stacklevel=3,
    )


class CallableText(str):
    """A ``str``; ``text()`` returns it too, with a deprecation warning."""

    _owner = "the result"

    @classmethod
    def of(cls, value: str, owner: str) -> CallableText:
        text = cls(value)
        text._owner = owner
        return text

    def __call__(self) -> str:
        _warn_call(self._owner)
        return str(self)


class AwaitableText:
    """``await stream.text`` gives the text; ``await stream.text()`` too, with a warning."""

    def __init__(self, result: Callable[[], Awaitable[str]], owner: str) -> None:
        self._result = result  # called only when awaited: no coroutine is left un-awaited
        self._owner = owner

    def __await__(self) -> Generator[Any, None, str]:
        return self._result().__await__()

    def __call__(self) -> AwaitableText:
        _warn_call(self._owner)
        return self
