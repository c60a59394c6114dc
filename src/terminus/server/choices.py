"""``n > 1`` streamed: several generations interleaved into one OpenAI stream.

``MergedStream`` runs the ``n`` Terminus streams side by side and yields their events
tagged with the choice index, then one ``Stats`` (the prompt once, every choice's
completion tokens) and one ``Done``. ``ChoicesEncoder`` gives each choice its own
encoder and writes that index into its chunks. Both fit the one generation driver
(:func:`terminus.server.generation.respond`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from terminus.client.streams import AsyncCompletionStream
from terminus.types import ChatEvent, Completion, Done, Stats

_END = object()


@dataclass(frozen=True)
class Indexed:
    """One choice's event."""

    index: int
    event: ChatEvent


class MergedStream:
    """The events of ``streams`` as they come, each tagged with its stream's index."""

    def __init__(self, streams: Sequence[AsyncCompletionStream]) -> None:
        self.streams = list(streams)

    def cancel(self) -> None:
        for stream in self.streams:
            stream.cancel()

    async def __aiter__(self) -> AsyncIterator[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def pump(index: int, stream: AsyncCompletionStream) -> None:
            try:
                async for event in stream:
                    await queue.put(Indexed(index, event))
            except Exception as exc:  # an error of one choice ends the whole answer
                await queue.put(exc)
            finally:
                await queue.put(_END)

        tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(self.streams)]
        prompt, produced, ended = 0, 0, 0
        try:
            while ended < len(tasks):
                item = await queue.get()
                if item is _END:
                    ended += 1
                    continue
                if isinstance(item, Exception):
                    raise item
                if isinstance(item.event, Stats):
                    prompt = prompt or item.event.prompt_tokens
                    produced += item.event.completion_tokens
                yield item
            yield Stats(prompt_tokens=prompt, completion_tokens=produced)
            yield Done(stop_reason="stop")
        finally:
            self.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class ChoicesEncoder:
    """One encoder per choice (sharing the answer's id); chunks carry their choice's index."""

    def __init__(self, encoders: Sequence[Any]) -> None:
        self.encoders = list(encoders)
        first = self.encoders[0]
        for encoder in self.encoders[1:]:
            encoder.id, encoder.created = first.id, first.created
        self.usage_chunk: dict[str, Any] | None = None
        self.stats: Stats | None = None

    def _indexed(self, index: int, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for chunk in chunks:
            if chunk.get("choices") == [] and "usage" in chunk:
                self.usage_chunk = chunk  # one usage chunk for the whole answer, at its end
                continue
            for choice in chunk.get("choices") or ():
                choice["index"] = index
            out.append(chunk)
        return out

    def start(self) -> list[dict[str, Any]]:
        return [c for i, e in enumerate(self.encoders) for c in self._indexed(i, e.start())]

    def event(self, event: Any) -> list[dict[str, Any]]:
        if isinstance(event, Indexed):
            return self._indexed(event.index, self.encoders[event.index].event(event.event))
        if isinstance(event, Stats):
            self.stats = event
        if isinstance(event, Done) and self.usage_chunk is not None and self.stats is not None:
            prompt, produced = self.stats.prompt_tokens, self.stats.completion_tokens
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": produced,
                "total_tokens": prompt + produced,
            }
            return [{**self.usage_chunk, "usage": usage}]
        return []

    def response(self, completion: Completion) -> dict[str, Any]:
        raise TypeError("whole answers with n > 1 are merged by respond_choices")
