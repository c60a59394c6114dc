"""``terminus serve``: the OpenAI-compatible HTTP server (needs ``terminus-sdk[server]``)."""

from __future__ import annotations

import logging
import sys

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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
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
    help="Allow browser calls from ORIGIN (repeatable; '*' for any).",
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
@click.option("--no-access-log", is_flag=True, help="Do not log one JSON line per request.")
@pass_state
def serve(
    state: CliState,
    host: str,
    port: int,
    models: tuple[str, ...],
    context_length: int | None,
    parallel: int | None,
    threads: int | None,
    max_concurrent: int,
    max_body_bytes: str,
    cors_origins: tuple[str, ...],
    api_keys: tuple[str, ...],
    api_keys_file: str | None,
    no_access_log: bool,
) -> None:
    """Serve models over an OpenAI-compatible HTTP API.

    \b
    Point any OpenAI client at http://HOST:PORT/v1:
      terminus serve -m smollm2
      curl localhost:8080/v1/chat/completions -d '{"model": "smollm2",
           "messages": [{"role": "user", "content": "Hi"}]}'
      curl localhost:8080/v1/embeddings -d '{"model": "minilm", "input": "Hi"}'

    Listening on anything but loopback needs an API key.
    """
    try:
        import uvicorn

        from terminus.server import ServerSettings, check_exposure, create_app, resolve_api_keys
    except ImportError as exc:
        raise click.ClickException(
            f"terminus serve needs the server extra ({exc.name} is missing): "
            "pip install 'terminus-sdk[server]'"
        ) from exc

    settings = ServerSettings(
        host=host,
        port=port,
        api_keys=resolve_api_keys(api_keys, keys_file=api_keys_file),
        max_concurrent=max_concurrent,
        max_body_bytes=parse_size(max_body_bytes),
        cors_origins=cors_origins,
        preload=models,
        context_length=context_length,
        parallel=parallel,
        threads=threads,
        access_log=not no_access_log,
    )
    try:
        check_exposure(settings)
    except InvalidParameterError as exc:
        raise click.UsageError(exc.one_line()) from exc
    client = state.client()
    for name in models:  # unknown names fail now (exit 3), not in the background
        card = client.models.get(name)
        if card.capability not in ("chat", "completion", "embed"):
            raise click.UsageError(f"{card.id} is a {card.capability} model; it cannot be served")
    _access_logger(settings.access_log)
    app = create_app(client, settings)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"terminus serve: OpenAI-compatible API on http://{shown}:{port}/v1"
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
    uvicorn.Server(config).run()
