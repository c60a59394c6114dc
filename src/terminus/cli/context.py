"""State shared by every command: the global options and a lazily built client.

When this home has a resident server (``terminus serve --detach``) and ``--no-server``
is not given, the client runs its requests there, on warm models, through an HTTP
transport; otherwise in this process, as always.
"""

from __future__ import annotations

import logging
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
    no_server: bool = False
    _client: Any = field(default=None, repr=False)

    def client(self) -> Terminus:
        """The client; its requests go to this home's resident server when one runs."""
        if self._client is None:
            self._client = self._make(self.server_transport())
        client: Terminus = self._client
        return client

    def local_client(self) -> Terminus:
        """A client that runs everything in this process (``terminus serve`` itself)."""
        if self._client is None:
            self._client = self._make(None)
        client: Terminus = self._client
        return client

    def _make(self, transport: Any) -> Terminus:
        from terminus.client.sync import Terminus
        from terminus.models.progress import terminal_progress

        return Terminus(
            home=self.home,
            transport=transport,
            allow_download=False if self.offline else None,
            memory_policy=self.memory_policy,
            memory_budget=self.memory_budget,
            progress=terminal_progress(),
        )

    def runs_here(self) -> bool:
        """True when requests run in this process (no resident server answers them)."""
        from terminus.paths import terminus_home
        from terminus.transports.resident import resident_path, server_disabled

        home = terminus_home(self.home)
        return self.no_server or server_disabled() or not resident_path(home).exists()

    def server_transport(self) -> Any:
        """An HTTP transport to this home's live resident server, or ``None``."""
        from terminus.paths import terminus_home
        from terminus.transports.resident import (
            find_resident,
            loopback_http,
            resident_path,
            server_disabled,
        )

        home = terminus_home(self.home)
        if self.no_server or server_disabled() or not resident_path(home).exists():
            return None  # the common case costs one stat, no HTTP client
        http = loopback_http()
        resident = find_resident(home, http=http)
        if resident is None:
            http.close()
            return None
        from terminus.transports.http import HttpTransport

        logging.getLogger(__name__).info("using the resident server at %s", resident.url)
        return HttpTransport(resident.url, http=http)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


pass_state = click.make_pass_decorator(CliState)
