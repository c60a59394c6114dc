"""How a server runs: limits, keys, origins, models to preload; and the exposure check."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from terminus.errors import InvalidParameterError

API_KEYS_ENV = "TERMINUS_API_KEYS"
API_KEYS_FILE_ENV = "TERMINUS_API_KEYS_FILE"
ALLOWED_HOSTS_ENV = "TERMINUS_ALLOWED_HOSTS"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_CONCURRENT = 16
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_GRACE_S = 5.0
ACCESS_LOGGER = "terminus.server"


@dataclass(frozen=True)
class ServerSettings:
    """Everything :func:`terminus.server.create_app` needs besides the client.

    ``max_concurrent`` bounds the requests in flight (chat, text completions and
    embeddings together); one more is answered ``429`` with ``Retry-After``.
    Requests within the bound but beyond a model's llama.cpp slots wait inside
    llama.cpp for a free slot.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_keys: frozenset[str] = frozenset()
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    cors_origins: tuple[str, ...] = ()
    #: Host names answered besides loopback names and ``host`` (see ``guard.HostPolicy``).
    allowed_hosts: tuple[str, ...] = ()
    #: On shutdown, how long requests in flight may run before they are stopped.
    grace_s: float = DEFAULT_GRACE_S
    preload: tuple[str, ...] = ()
    #: Load options for every model this server loads (preloaded or on first request);
    #: embedding models ignore ``context_length`` (see ``ServerState.load_options``).
    context_length: int | None = None
    parallel: int | None = None
    threads: int | None = None
    #: ``--split``: the ``preload`` models run with their layers over these RPC workers
    #: (``terminus provide --rpc`` peers), with ``tensor_split`` shares if given.
    split: tuple[str, ...] = ()
    tensor_split: str | None = None
    access_log: bool = True
    #: Fetch ``http(s)`` image URLs in chat requests (off: only data URLs and base64).
    allow_image_urls: bool = False
    logger_name: str = ACCESS_LOGGER
    retry_after_s: int = 1
    #: Idle seconds before a model unloads (``math.inf``: never); ``None`` keeps the
    #: client's own default. ``terminus serve`` uses Ollama's 5 minutes.
    keep_alive_s: float | None = None
    #: Stored Responses (``/v1/responses`` with ``store``): a SQLite file (default
    #: ``TERMINUS_HOME/server/responses.sqlite``), kept ``responses_ttl_s`` at most,
    #: the oldest dropped beyond ``responses_max_rows`` or ``responses_max_bytes``.
    responses_path: Path | None = None
    responses_ttl_s: float = 30 * 24 * 3600.0
    responses_max_rows: int = 10_000
    responses_max_bytes: int = 256 * 1024 * 1024
    #: MCP servers (label, command or URL) whose tools the Responses API and the web chat
    #: may run here, by label (``terminus serve --mcp LABEL=CMD``).
    tool_servers: tuple[tuple[str, str], ...] = ()
    #: Written by ``terminus serve --detach``: the CLI finds this server through it.
    resident: bool = False

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise InvalidParameterError("max_concurrent must be at least 1")
        if self.max_body_bytes < 1024:
            raise InvalidParameterError("max_body_bytes must be at least 1024")
        if not 0 <= self.port <= 65535:
            raise InvalidParameterError(f"port {self.port} is not a TCP port")
        if any(not key or key != key.strip() for key in self.api_keys):
            raise InvalidParameterError("API keys must be non-empty and without surrounding spaces")
        if self.grace_s < 0:
            raise InvalidParameterError("the shutdown grace period cannot be negative")
        if not self.api_keys:
            hint = f"pass --api-key KEY (or set {API_KEYS_ENV}), or name the origins or hosts"
            if "*" in (o.strip() for o in self.cors_origins):
                raise InvalidParameterError(
                    "refusing --cors-origin '*' without an API key: any web page you visit "
                    "could run models here and read your RAG workspaces",
                    hint=hint,
                )
            if "*" in (h.strip() for h in self.allowed_hosts):
                raise InvalidParameterError(
                    "refusing --allowed-host '*' without an API key: a web page could reach "
                    "this server through DNS rebinding",
                    hint=hint,
                )

    def load_options(self) -> dict[str, int | None]:
        return {
            "context_length": self.context_length,
            "parallel": self.parallel,
            "threads": self.threads,
        }


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(settings: ServerSettings) -> None:
    """Refuse to listen beyond loopback with no API key: anyone could run models here."""
    if not settings.api_keys and not is_loopback(settings.host):
        raise InvalidParameterError(
            f"refusing to listen on {settings.host} without an API key: anyone who can reach "
            "the port could run models on this machine",
            hint=f"pass --api-key KEY, set {API_KEYS_ENV} or --api-keys-file, "
            f"or listen on {DEFAULT_HOST}",
        )


def read_keys_file(path: str | os.PathLike[str]) -> list[str]:
    """One key a line; blank lines and ``#`` comments are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidParameterError(f"cannot read the API keys file {path}: {exc}") from exc
    keys = [line.strip() for line in text.splitlines()]
    return [key for key in keys if key and not key.startswith("#")]


def resolve_allowed_hosts(
    hosts: Iterable[str] = (), *, env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Host names from flags and ``TERMINUS_ALLOWED_HOSTS`` (comma separated), together."""
    environ = os.environ if env is None else env
    found = [h.strip() for h in hosts]
    found += [h.strip() for h in environ.get(ALLOWED_HOSTS_ENV, "").split(",")]
    return tuple(dict.fromkeys(h for h in found if h))


def resolve_api_keys(
    keys: Iterable[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    keys_file: str | os.PathLike[str] | None = None,
) -> frozenset[str]:
    """Keys from flags, ``TERMINUS_API_KEYS`` (comma separated) and a keys file, together."""
    environ = os.environ if env is None else env
    found = [k.strip() for k in keys]
    found += [k.strip() for k in environ.get(API_KEYS_ENV, "").split(",")]
    path = keys_file or environ.get(API_KEYS_FILE_ENV)
    if path:
        found += read_keys_file(path)
    return frozenset(k for k in found if k)
