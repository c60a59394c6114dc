"""State shared by every command: the global options and a lazily built client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from terminus.client.sync import Terminus


@dataclass
class CliState:
    home: str | None = None
    offline: bool = False
    memory_policy: str | None = None
    memory_budget: str | None = None
    _client: Any = field(default=None, repr=False)

    def client(self) -> Terminus:
        if self._client is None:
            from terminus.client.sync import Terminus
            from terminus.models.progress import terminal_progress

            self._client = Terminus(
                home=self.home,
                allow_download=False if self.offline else None,
                memory_policy=self.memory_policy,
                memory_budget=self.memory_budget,
                progress=terminal_progress(),
            )
        client: Terminus = self._client
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


pass_state = click.make_pass_decorator(CliState)
