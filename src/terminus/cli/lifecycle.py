"""``terminus ps`` and ``terminus stop``: what the resident server holds, and unloading it."""

from __future__ import annotations

import json
from typing import Any

import click

from terminus.cli.context import CliState, pass_state


def _server(state: CliState) -> Any:
    """The resident server's HTTP transport, or a clear error when none runs."""
    from terminus.paths import terminus_home
    from terminus.transports.http import HttpTransport

    transport = state.server_transport()
    if not isinstance(transport, HttpTransport):
        raise click.ClickException(
            f"no resident server is running for {terminus_home(state.home)}: each command "
            "loads its model in-process (start one with `terminus serve --detach`)"
        )
    return transport


def _size(n: int) -> str:
    from terminus.runtime.memory import format_size

    return format_size(n)


def _until(entry: dict[str, Any]) -> str:
    if entry.get("active_requests"):
        return "busy"
    seconds = entry.get("expires_in_s")
    if seconds is None:
        return "never"
    from terminus.runtime.keepalive import describe_keep_alive

    return "in " + describe_keep_alive(float(round(seconds)))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
@pass_state
def ps(state: CliState, as_json: bool) -> None:
    """Models the resident server has loaded: memory, busy slots, when they unload."""
    transport = _server(state)
    try:
        data = transport.ps()
    finally:
        transport.close()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    models = data["models"]
    if not models:
        click.echo(f"no models loaded ({transport.base_url})")
        return
    rows = [("NAME", "MEMORY", "SLOTS BUSY", "KEEP ALIVE", "UNLOADS")]
    for entry in models:
        from terminus.runtime.keepalive import describe_keep_alive

        keep = entry.get("keep_alive_s")
        rows.append(
            (
                entry["id"],
                _size(int(entry["memory_bytes"])),
                f"{entry['active_requests']}/{entry.get('parallel') or '-'}",
                "forever" if keep is None else describe_keep_alive(float(keep)),
                _until(entry),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        )


@click.command()
@click.argument("model", required=False)
@click.option("--server", "whole_server", is_flag=True, help="Stop the resident server itself.")
@pass_state
def stop(state: CliState, model: str | None, whole_server: bool) -> None:
    """Unload MODEL from the resident server now (or stop the server with --server)."""
    if whole_server == (model is not None):
        raise click.UsageError("name a MODEL to unload, or pass --server (not both)")
    if whole_server:
        from terminus.cli.resident import stop_server
        from terminus.paths import terminus_home

        stopped = stop_server(terminus_home(state.home))
        click.echo(f"stopped the resident server (pid {stopped.pid}, {stopped.url})")
        return
    assert model is not None
    transport = _server(state)
    try:
        unloaded = transport.unload(model)
    finally:
        transport.close()
    click.echo(f"unloaded {model}" if unloaded else f"{model} was not loaded")
