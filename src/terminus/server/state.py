"""Per-app state: the client, the concurrency bound, model loading and readiness.

One ``ServerState`` lives on ``app.state.terminus``; nothing is module-global, so
several apps (tests, embedding) run side by side. The counters are touched only
from the event loop, so they need no lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from terminus.client.aio import AsyncTerminus
from terminus.client.sync import Terminus
from terminus.errors import CapabilityError, TerminusError
from terminus.models.card import ModelCard
from terminus.server.errors import APIError
from terminus.server.settings import ServerSettings
from terminus.types.common import Capability, model_kind

#: Capabilities the generation endpoints serve.
TEXT_CAPABILITIES = frozenset({Capability.CHAT, Capability.COMPLETION})


class Slot:
    """One admitted generation or embedding request; ``release`` is idempotent.

    ``on_drain`` stops the request's generation when the server drains (shutdown).
    """

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._held = True
        self.on_drain: Callable[[], None] | None = None
        state.slots.add(self)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._state.active -= 1
            self._state.slots.discard(self)


@dataclass
class Preload:
    status: str = "loading"  # loading | loaded | failed
    error: str | None = None


@dataclass
class ServerState:
    client: Terminus
    settings: ServerSettings
    aclient: AsyncTerminus = field(init=False)
    log: logging.Logger = field(init=False)
    active: int = 0
    preloads: dict[str, Preload] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    slots: set[Slot] = field(default_factory=set)
    #: Set once a shutdown begins: new requests get 503, in-flight ones may finish.
    draining: bool = False

    def __post_init__(self) -> None:
        self.aclient = AsyncTerminus(self.client)
        self.log = logging.getLogger(self.settings.logger_name)

    # -- admission ----------------------------------------------------------------

    def admit(self) -> Slot:
        """Admit one generation or embedding request or answer 429 (with Retry-After)."""
        if self.draining:
            raise shutting_down()
        if self.active >= self.settings.max_concurrent:
            raise APIError(
                429,
                f"the server is busy: {self.active} requests in flight "
                f"(--max-concurrent {self.settings.max_concurrent}); retry shortly",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        self.active += 1
        return Slot(self)

    async def drain(self, grace_s: float, wind_down_s: float = 10.0) -> int:
        """Refuse new requests, give those in flight ``grace_s`` to finish, then stop them.

        Stopped streams end with a ``server_shutting_down`` error event and ``[DONE]``;
        stopped non-streamed requests answer 503. Returns how many were stopped.
        """
        self.draining = True
        started = time.monotonic()
        line = {"event": "draining", "in_flight": self.active, "grace_s": grace_s}
        self.log.info(json.dumps(line, separators=(",", ":")))
        await self._wait_idle(grace_s)
        stopped = 0
        for slot in list(self.slots):
            if slot.on_drain is not None:
                slot.on_drain()
                stopped += 1
        await self._wait_idle(wind_down_s)
        line = {
            "event": "drained",
            "stopped": stopped,
            "in_flight": self.active,
            "seconds": round(time.monotonic() - started, 2),
        }
        self.log.info(json.dumps(line, separators=(",", ":")))
        return stopped

    async def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    # -- models -------------------------------------------------------------------

    async def resolve(self, name: str, capability: Capability | None = None) -> ModelCard:
        """The card for ``name`` (the catalog reads user cards from disk: off the loop)."""
        return await asyncio.to_thread(self._card, name, capability)

    def _card(self, name: str, capability: Capability | None) -> ModelCard:
        card = self.client.models.get(name)  # ModelNotFoundError → 404
        if capability == Capability.EMBED:
            if card.capability != Capability.EMBED:
                raise CapabilityError(
                    f"{card.id} is {model_kind(card.capability)}, not an embedding model",
                    hint="use an embedding model such as all-minilm-l6-v2",
                )
            return card
        if card.capability not in TEXT_CAPABILITIES:
            hint = "use /v1/embeddings" if card.capability == Capability.EMBED else None
            raise CapabilityError(
                f"{card.id} is {model_kind(card.capability)}; it cannot generate text", hint=hint
            )
        if capability == Capability.CHAT and card.capability != Capability.CHAT:
            raise CapabilityError(
                f"{card.id} is a base model; it cannot chat", hint="use /v1/completions"
            )
        return card

    def load_options(self, card: ModelCard) -> dict[str, Any]:
        """The server's load options as they apply to ``card``.

        ``context_length`` is for text models: an embedding model keeps its card's input
        limit (MiniLM's 256 tokens, as in sentence-transformers), so its vectors are the
        same as ``Terminus.embed``'s.
        """
        options: dict[str, Any] = dict(self.settings.load_options())
        if card.capability == Capability.EMBED:
            options["context_length"] = None
        if self.settings.split and card.id in self._split_ids():
            options["split"] = list(self.settings.split)
            if self.settings.tensor_split:
                options["tensor_split"] = self.settings.tensor_split
        return options

    def _split_ids(self) -> set[str]:
        return {self.client.models.get(name).id for name in self.settings.preload}

    async def ensure_loaded(self, model: str) -> None:
        """Load with this server's options (idempotent; concurrent callers share one load)."""
        await asyncio.to_thread(self._load, model)

    def _load(self, model: str) -> None:
        card = self.client.models.get(model)
        self.client.load_model(card.id, **self.load_options(card))

    async def preload(self) -> None:
        """Load the preloaded models one after another; /ready reports on them."""
        for name in self.settings.preload:
            entry = self.preloads.setdefault(name, Preload())
            try:
                await self.ensure_loaded(name)
                # named at startup: kept until unloaded (the keep-alive is for models
                # loaded on demand), unless a request's keep_alive says otherwise
                await asyncio.to_thread(self.client.manager.set_keep_alive, name, math.inf)
            except TerminusError as exc:
                entry.status, entry.error = "failed", exc.one_line()
            except Exception as exc:
                entry.status, entry.error = "failed", f"{type(exc).__name__}: {exc}"
            else:
                entry.status = "loaded"
            self.log.log(
                logging.ERROR if entry.error else logging.INFO,
                json.dumps(
                    {
                        "event": "preload",
                        "model": name,
                        "status": entry.status,
                        "error": entry.error,
                    },
                    separators=(",", ":"),
                ),
            )

    def start_preload(self) -> None:
        for name in self.settings.preload:
            self.preloads[name] = Preload()
        if self.settings.preload:
            task = asyncio.get_running_loop().create_task(self.preload())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def ready(self) -> bool:
        return all(p.status == "loaded" for p in self.preloads.values())


def shutting_down() -> APIError:
    return APIError(
        503,
        "the server is shutting down; retry on another instance or after it restarts",
        code="server_shutting_down",
        headers={"Retry-After": "5", "Connection": "close"},
    )


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.terminus
    return state
