"""Completion streams: one event source, consumed from a thread or from asyncio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from terminus.types import CancelToken, ChatEvent, Completion, collect_completion
from terminus.types.text_compat import AwaitableText, CallableText

EventFactory = Callable[[CancelToken], Iterator[ChatEvent]]
_END = object()


class _StreamState:
    def __init__(self, factory: EventFactory) -> None:
        self._factory = factory
        self.cancel_token = CancelToken()
        self.events: list[ChatEvent] = []
        self.started = False
        self.finished = False

    def start(self) -> Iterator[ChatEvent]:
        if self.started:
            raise RuntimeError("a completion stream can be iterated only once")
        self.started = True
        return self._factory(self.cancel_token)

    def cancel(self) -> None:
        self.cancel_token.cancel()


class CompletionStream:
    """Events of one completion. Iterate it, or call :meth:`result` for the whole answer.

    ``cancel()`` may be called from any thread; the engine stops within a few
    tokens and the stream ends with ``Done(stop_reason="cancelled")``.
    """

    def __init__(self, factory: EventFactory) -> None:
        self._state = _StreamState(factory)
        self._iterator: Iterator[ChatEvent] | None = None

    def __iter__(self) -> Iterator[ChatEvent]:
        self._iterator = self._state.start()
        try:
            for event in self._iterator:
                self._state.events.append(event)
                yield event
        finally:
            self._state.finished = True
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()

    def cancel(self) -> None:
        self._state.cancel()

    @property
    def cancelled(self) -> bool:
        return self._state.cancel_token.cancelled

    def result(self) -> Completion:
        """Drain the stream (if not yet consumed) and fold its events."""
        if not self._state.started:
            for _ in self:
                pass
        return collect_completion(self._state.events)

    @property
    def text(self) -> CallableText:
        """The whole answer's text (drains the stream if not yet consumed)."""
        return CallableText.of(self.result().text, "CompletionStream")

    def __enter__(self) -> CompletionStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._state.started and not self._state.finished:
            self.cancel()


class AsyncCompletionStream:
    """The asyncio face of the same event source.

    The engine's iterator runs on a pump thread and hands events to the loop;
    leaving ``async for`` early, or cancelling the consuming task, cancels the
    generation.
    """

    def __init__(self, factory: EventFactory) -> None:
        self._state = _StreamState(factory)

    def __aiter__(self) -> AsyncIterator[ChatEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ChatEvent]:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        iterator = self._state.start()

        def deliver(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:  # the loop closed under us: stop generating
                self._state.cancel()

        def pump() -> None:
            try:
                for event in iterator:
                    deliver(event)
                    if self._state.cancel_token.cancelled and loop.is_closed():
                        break
                deliver(_END)
            except BaseException as exc:
                deliver(exc)

        thread = threading.Thread(target=pump, name="terminus-async-stream", daemon=True)
        thread.start()
        try:
            while True:
                item = await inbox.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                self._state.events.append(item)
                yield item
        finally:
            self._state.finished = True
            if thread.is_alive():
                self._state.cancel()

    def cancel(self) -> None:
        self._state.cancel()

    @property
    def cancelled(self) -> bool:
        return self._state.cancel_token.cancelled

    async def result(self) -> Completion:
        if not self._state.started:
            async for _ in self:
                pass
        return collect_completion(self._state.events)

    @property
    def text(self) -> AwaitableText:
        """``await stream.text``: the whole answer's text."""

        async def text() -> str:
            return (await self.result()).text

        return AwaitableText(text, "AsyncCompletionStream")
