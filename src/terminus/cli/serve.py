"""``terminus serve``: the OpenAI-compatible HTTP server (needs ``terminus-sdk[server]``)."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import click

from terminus.cli.context import CliState, pass_state
from terminus.errors import InvalidParameterError

SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3}


def parse_size(value: str) -> int:
    text = value.strip().upper().removesuffix("IB").removesuffix("I")
    number = text.rstrip("BKMG")
    unit = text[len(number) :]
    if not number.isdigit() or unit not in SIZE_UNITS:
        raise click.BadParameter(f"{value!r} is not a size like 4M, 512K or 1048576")
    return int(number) * SIZE_UNITS[unit]


def _access_logger(enabled: bool) -> None:
    """Access lines go to stderr as bare JSON, whatever --verbose says."""
    from terminus.server.settings import ACCESS_LOGGER

    logger = logging.getLogger(ACCESS_LOGGER)
    logger.propagate = False
    logger.setLevel(logging.INFO if enabled else logging.WARNING)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (an IPv6 address in brackets or not)."""
    name = host.strip("[]")
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    try:
        return socket.create_server((name, port), family=family, backlog=2048)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--ollama-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Also listen on PORT (Ollama's is 11434), so apps configured for Ollama find "
    "this server; both ports serve every API.",
)
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Load MODEL at startup (repeatable); other models load on their first request.",
)
@click.option(
    "--context-length",
    type=int,
    help="Context per request slot, in tokens (text models; embedding models keep their "
    "card's input limit).",
)
@click.option("--parallel", type=int, help="Requests each model runs at once (llama.cpp slots).")
@click.option(
    "--split",
    metavar="REF,REF…",
    help="Run the -m models with their layers spread over this machine and these "
    "`terminus provide --rpc` workers (needs `terminus rpc build`).",
)
@click.option(
    "--tensor-split",
    metavar="W1,W2…",
    help="With --split: the workers' relative shares [default: by free memory].",
)
@click.option("--threads", type=int, help="CPU threads per model [default: physical cores].")
@click.option(
    "--max-concurrent",
    default=16,
    show_default=True,
    type=click.IntRange(min=1),
    help="Generation and embedding requests in flight; more are answered 429 with Retry-After.",
)
@click.option(
    "--max-body-bytes",
    default="4M",
    show_default=True,
    metavar="SIZE",
    help="Largest request body (413 beyond it), e.g. 512K, 4M.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Allow browser calls from ORIGIN, e.g. http://localhost:3000 (repeatable; '*' for "
    "any, only with an API key). Pages served by this server itself are always allowed.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests for host NAME, e.g. my-box.lan or *.lan (repeatable; also env "
    "TERMINUS_ALLOWED_HOSTS, comma separated; '*' for any, only with an API key). Loopback "
    "names and the --host address are always allowed.",
)
@click.option(
    "--grace-period",
    "grace_s",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="On SIGTERM or Ctrl-C, how long requests in flight may finish before they are stopped.",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY",
    help="Require `Authorization: Bearer KEY` (repeatable; also env TERMINUS_API_KEYS, "
    "comma separated).",
)
@click.option(
    "--api-keys-file",
    type=click.Path(dir_okay=False),
    envvar="TERMINUS_API_KEYS_FILE",
    help="A file of API keys, one a line [env TERMINUS_API_KEYS_FILE].",
)
@click.option(
    "--mcp",
    "tool_servers",
    multiple=True,
    metavar="LABEL=CMD|URL",
    help="An MCP server whose tools /v1/responses (an mcp tool naming LABEL) and the web "
    "chat may run here (repeatable).",
)
@click.option("--no-access-log", is_flag=True, help="Do not log one JSON line per request.")
@click.option(
    "--allow-image-urls",
    is_flag=True,
    help="Fetch http(s) image URLs in chat requests [default: data URLs only].",
)
@click.option(
    "--keep-alive",
    default="5m",
    show_default=True,
    metavar="DURATION",
    help="Unload a model idle this long (300, 5m, 1h; 0: after each request; -1: never).",
)
@click.option(
    "--detach",
    is_flag=True,
    help="Run in the background as this home's resident server (log and pid in "
    "TERMINUS_HOME/server); `terminus run`, `chat`, `embed`… then use its warm models.",
)
@click.option("--stop", "stop_resident", is_flag=True, help="Stop the resident server.")
@click.option("--resident", is_flag=True, hidden=True)
@pass_state
def serve(
    state: CliState,
    host: str,
    port: int,
    ollama_port: int | None,
    models: tuple[str, ...],
    context_length: int | None,
    parallel: int | None,
    threads: int | None,
    split: str | None,
    tensor_split: str | None,
    max_concurrent: int,
    max_body_bytes: str,
    cors_origins: tuple[str, ...],
    allowed_hosts: tuple[str, ...],
    grace_s: float,
    api_keys: tuple[str, ...],
    api_keys_file: str | None,
    tool_servers: tuple[str, ...],
    no_access_log: bool,
    allow_image_urls: bool,
    keep_alive: str,
    detach: bool,
    stop_resident: bool,
    resident: bool,
) -> None:
    """Serve models over an OpenAI-compatible HTTP API.

    \b
    Point any OpenAI client at http://HOST:PORT/v1, Anthropic clients at
    http://HOST:PORT, Ollama clients at http://HOST:PORT (or --ollama-port):
      terminus serve -m smollm2 --ollama-port 11434
      curl localhost:8080/v1/chat/completions --json '{"model": "smollm2",
           "messages": [{"role": "user", "content": "Hi"}]}'
      curl localhost:11434/api/chat --json '{"model": "smollm2",
           "messages": [{"role": "user", "content": "Hi"}]}'
      curl localhost:8080/v1/embeddings --json '{"model": "minilm", "input": "Hi"}'

    Listening on anything but loopback needs an API key. Bodies must be JSON
    (Content-Type: application/json); requests for unknown host names and from
    other web origins are refused (see --allowed-host, --cors-origin).

    \b
    A resident server the CLI reuses:
      terminus serve --detach -m smollm2      start it in the background
      terminus run "Hi"                       answered by its warm model
      terminus ps                             what it has loaded
      terminus serve --stop                   stop it
    """
    from terminus.paths import terminus_home
    from terminus.runtime.keepalive import parse_keep_alive

    home = terminus_home(state.home)
    if stop_resident:
        from terminus.cli.resident import stop_server

        stopped = stop_server(home)
        click.echo(f"stopped the resident server (pid {stopped.pid}, {stopped.url})", err=True)
        return
    if split and not models:
        raise click.UsageError("--split applies to the models given with -m: name one")
    if tensor_split and not split:
        raise click.UsageError("--tensor-split needs --split")
    try:
        keep_alive_s = parse_keep_alive(keep_alive)
    except InvalidParameterError as exc:
        raise click.BadParameter(exc.one_line(), param_hint="--keep-alive") from exc
    try:
        import uvicorn

        from terminus.server import (
            ServerSettings,
            check_exposure,
            create_app,
            resolve_allowed_hosts,
            resolve_api_keys,
        )
        from terminus.server.agent_tools import parse_tool_server
        from terminus.server.drain import DrainingServer
    except ImportError as exc:
        raise click.ClickException(
            f"terminus serve needs the server extra ({exc.name} is missing): "
            "pip install 'terminus-sdk[server]'"
        ) from exc

    try:
        settings = ServerSettings(
            host=host,
            port=port,
            api_keys=resolve_api_keys(api_keys, keys_file=api_keys_file),
            max_concurrent=max_concurrent,
            max_body_bytes=parse_size(max_body_bytes),
            cors_origins=cors_origins,
            allowed_hosts=resolve_allowed_hosts(allowed_hosts),
            grace_s=grace_s,
            preload=models,
            context_length=context_length,
            parallel=parallel,
            threads=threads,
            split=tuple(r.strip() for r in (split or "").split(",") if r.strip()),
            tensor_split=tensor_split,
            access_log=not no_access_log,
            allow_image_urls=allow_image_urls,
            keep_alive_s=keep_alive_s,
            resident=resident,
            tool_servers=tuple(parse_tool_server(spec) for spec in tool_servers),
        )
        check_exposure(settings)
    except InvalidParameterError as exc:
        raise click.UsageError(exc.one_line()) from exc
    if detach:
        _detach(state, settings)
        return
    client = state.local_client()
    for name in models:  # unknown names fail now (exit 3), not in the background
        card = client.models.get(name)
        if card.capability not in ("chat", "completion", "embed"):
            raise click.UsageError(f"{card.id} is a {card.capability} model; it cannot be served")
    sockets = [listen(host, port)]
    if ollama_port is not None and ollama_port != port:
        try:
            sockets.append(listen(host, ollama_port))
        except click.ClickException:
            sockets[0].close()
            raise
    _access_logger(settings.access_log)
    app = create_app(client, settings)
    shown = f"[{host}]" if ":" in host else host
    bound = [sock.getsockname()[1] for sock in sockets]
    click.echo(
        f"terminus serve: OpenAI-compatible API on http://{shown}:{bound[0]}/v1"
        + (f", Ollama API on http://{shown}:{bound[1]}" if len(bound) > 1 else "")
        + (f" (loading {', '.join(models)})" if models else "")
        + (" - API key required" if settings.api_keys else ""),
        err=True,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    DrainingServer(config, app.state.terminus).run(sockets=sockets)  # one app on every listener


def _detach(state: CliState, settings: Any) -> None:
    import os

    from terminus.cli.resident import detach
    from terminus.paths import terminus_home

    env = dict(os.environ)
    if settings.api_keys:  # through the environment: a command line is visible to all users
        env["TERMINUS_API_KEYS"] = ",".join(sorted(settings.api_keys))
    if state.offline:
        env["TERMINUS_OFFLINE"] = "1"
    for name, value in (
        ("TERMINUS_MEMORY_POLICY", state.memory_policy),
        ("TERMINUS_MEMORY_BUDGET", state.memory_budget),
    ):
        if value:
            env[name] = value
    params = click.get_current_context().params
    home = terminus_home(state.home)
    resident = detach(home, params, env)
    click.echo(
        f"terminus serve: resident server running in the background (pid {resident.pid}) on "
        f"{resident.url}/v1\n  log: {home / 'server' / 'server.log'}\n"
        "  `terminus run`, `chat`, `embed`... now use it; stop it with `terminus serve --stop`",
        err=True,
    )
