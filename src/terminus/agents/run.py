"""One agent run as a stream of events, consumed from a thread or from asyncio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from terminus.agents.events import AgentResult, collect_agent_result
from terminus.types import CancelToken
from terminus.types.text_compat import CallableText

_END = object()


class AgentRun:
    """Events of one run. Iterate it, or take :meth:`result` or ``.text`` for the final answer.

    ``cancel()`` may be called from any thread: the model stops within a few
    tokens, a tool being waited for is abandoned, and the run ends with
    ``AgentDone(stop_reason="cancelled")``.
    """

    def __init__(self, factory: Callable[[CancelToken], Iterator[Any]]) -> None:
        self._factory = factory
        self.cancel_token = CancelToken()
        self.events: list[Any] = []
        self._started = False

    def _start(self) -> Iterator[Any]:
        if self._started:
            raise RuntimeError("an agent run can be iterated only once")
        self._started = True
        return self._factory(self.cancel_token)

    def __iter__(self) -> Iterator[Any]:
        for event in self._start():
            self.events.append(event)
            yield event

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def result(self) -> AgentResult:
        if not self._started:
            for _ in self:
                pass
        return collect_agent_result(self.events)

    @property
    def text(self) -> CallableText:
        """The final answer's text (runs the loop to its end if not yet consumed)."""
        return CallableText.of(self.result().text, "AgentRun")


class AsyncAgentRun(AgentRun):
    """The same run for asyncio: the loop runs on a pump thread; leaving early cancels it."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._aevents()

    async def _aevents(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        iterator = self._start()

        def deliver(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:  # the loop closed under us: stop the run
                self.cancel()

        def pump() -> None:
            try:
                for event in iterator:
                    deliver(event)
                deliver(_END)
            except BaseException as exc:
                deliver(exc)

        thread = threading.Thread(target=pump, name="terminus-agent", daemon=True)
        thread.start()
        finished = False
        try:
            while True:
                item = await inbox.get()
                if item is _END:
                    finished = True
                    break
                if isinstance(item, BaseException):
                    raise item
                self.events.append(item)
                yield item
        finally:
            if not finished:
                self.cancel()

    async def aresult(self) -> AgentResult:
        if not self._started:
            async for _ in self:
                pass
        return collect_agent_result(self.events)
