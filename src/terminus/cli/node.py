"""``terminus node``, ``terminus provide`` and ``terminus peers``: this node and the ones it knows."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from terminus.cli.context import CliState, pass_state


def _node_options(command: Any) -> Any:
    options = [
        click.option(
            "--model",
            "models",
            multiple=True,
            metavar="MODEL",
            help="Load MODEL and serve delegated requests for it (repeatable).",
        ),
        click.option(
            "--tool",
            "functions",
            multiple=True,
            metavar="MODULE:FUNCTION",
            help="Offer a Python function as a tool to the allowed keys (repeatable).",
        ),
        click.option(
            "--mcp",
            "servers",
            multiple=True,
            metavar="'CMD ARGS'|URL",
            help="Offer an MCP server's tools to the allowed keys (repeatable).",
        ),
        click.option(
            "--allow",
            multiple=True,
            metavar="KEY",
            help="A consumer node id allowed to use this node (repeatable).",
        ),
        click.option("--deny", multiple=True, metavar="KEY", help="A node id always refused."),
        click.option(
            "--allow-any", is_flag=True, help="Serve any key not denied (trusted networks only)."
        ),
        click.option(
            "--max-concurrent", default=4, show_default=True, help="Requests served at once."
        ),
        click.option("--max-tokens", type=int, help="Most tokens one request may generate."),
        click.option("--context-length", type=int, help="Context window per request, in tokens."),
        click.option("--parallel", type=int, help="Requests each model decodes at once."),
        click.option(
            "--listen",
            default="0.0.0.0:0",
            show_default=True,
            metavar="HOST:PORT",
            help="QUIC address for delegated requests.",
        ),
        click.option(
            "--advertise", multiple=True, metavar="HOST", help="Address peers should dial."
        ),
        click.option(
            "--relay", is_flag=True, help="Also use public relays and discovery (needs internet)."
        ),
        click.option(
            "--ref-file",
            type=click.Path(dir_okay=False),
            help="Also write the node reference here.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _serve(state: CliState, **opts: Any) -> None:
    from terminus.p2p.identity import load_or_create_identity
    from terminus.p2p.nonces import PersistentNonceStore
    from terminus.p2p.provider import Provider, ProviderPolicy

    offers = opts["models"] or opts["functions"] or opts["servers"]
    if offers and not (opts["allow"] or opts["allow_any"]):
        raise click.UsageError("name the consumers with --allow KEY (or --allow-any)")
    client = state.client()
    tools, servers = _offered_tools(opts["functions"], opts["servers"], client.home)
    for model in opts["models"]:
        info = client.load_model(
            model, context_length=opts["context_length"], parallel=opts["parallel"]
        )
        click.echo(f"loaded {info.id}", err=True)
    policy = ProviderPolicy(
        allow=None if opts["allow_any"] else frozenset(k.lower() for k in opts["allow"]),
        deny=frozenset(k.lower() for k in opts["deny"]),
        max_concurrent=opts["max_concurrent"],
        max_tokens=opts["max_tokens"],
    )
    provider = Provider(
        client.transport,
        load_or_create_identity(client.home),
        client.catalog,
        opts["models"],
        policy,
        listen=opts["listen"],
        advertise=opts["advertise"],
        relay=opts["relay"],
        nonces=PersistentNonceStore(client.home / "p2p" / "nonces.sqlite"),
        tools=tools,
    )
    try:
        ref = provider.start().format()
    except BaseException:
        _close_all(servers)
        raise
    if opts["ref_file"]:
        with open(opts["ref_file"], "w", encoding="utf-8") as fh:
            fh.write(ref + "\n")
    click.echo(ref)
    sys.stdout.flush()
    shared = ", ".join(sorted(provider.models)) or "no models"
    click.echo(f"node {provider.identity.node_id} serving {shared} (Ctrl-C stops)", err=True)
    if tools is not None:
        click.echo(f"offering tools: {', '.join(tools.names)}", err=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        provider.close()
        _close_all(servers)


def _offered_tools(
    functions: tuple[str, ...], servers: tuple[str, ...], home: Any
) -> tuple[Any, list[Any]]:
    """The tools named on the command line (nothing else is offered), and the MCP
    servers started for them."""
    if not functions and not servers:
        return None, []
    from terminus.agents import McpServer, OfferedTools
    from terminus.cli.agent import import_tool

    tools: list[Any] = [import_tool(spec) for spec in functions]
    started: list[Any] = []
    try:
        for target in servers:
            started.append(McpServer(target).start())
        offered = OfferedTools([*tools, *started], log_path=home / "p2p" / "tool-calls.jsonl")
    except BaseException:
        _close_all(started)
        raise
    return offered, started


def _close_all(servers: list[Any]) -> None:
    for server in servers:
        server.close()


@click.command()
@click.option("--show", is_flag=True, help="Print this node's id and key file, then exit.")
@_node_options
@pass_state
def node(state: CliState, show: bool, **opts: Any) -> None:
    """Run this node: one Ed25519 identity, kept in the Terminus home (mode 0600).

    Prints a terminus:node/… reference peers connect with. Connections are QUIC with
    both keys authenticated; no relay, tracker or DHT is needed on a LAN. Add --model
    and --allow to serve delegated inference (the same as `terminus provide`).
    """
    if show:
        from terminus.p2p.identity import KEY_FILE, load_or_create_identity

        home = state.client().home
        click.echo(load_or_create_identity(home).node_id)
        click.echo(f"key: {home / KEY_FILE}", err=True)
        return
    _serve(state, **opts)


@click.command()
@_node_options
@pass_state
def provide(state: CliState, **opts: Any) -> None:
    """Serve delegated inference (--model M) and tools (--tool, --mcp) to the --allow'ed keys.

    \b
    Example:
      terminus provide --model smollm2 --allow 5ec1ee52…  (a consumer's `terminus node --show`)
      terminus run --peer terminus:node/…?addr=192.168.1.7:4433 "Why is the sky blue?"
      terminus provide --tool mytools:lookup --mcp "mcp-server-filesystem /srv" --allow 5ec1…
      terminus agent "…" --peer-tools terminus:node/…?addr=192.168.1.7:4433
    Requests carry single-use tokens signed by the consumer's key; replays and
    expired tokens are refused. Only the named tools are offered; every call is
    logged (stderr and HOME/p2p/tool-calls.jsonl).
    """
    if not (opts["models"] or opts["functions"] or opts["servers"]):
        raise click.UsageError("name at least one --model, --tool or --mcp to provide")
    _serve(state, **opts)


@click.group(invoke_without_command=True)
@click.pass_context
def peers(ctx: click.Context) -> None:
    """Peers this node knows (added by hand or reached before)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_peers)


@peers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the peers as JSON.")
@pass_state
def list_peers(state: CliState, as_json: bool) -> None:
    """List known peers with their last addresses."""
    from terminus.p2p.peers import PeerBook

    rows = PeerBook(state.client().home).all()
    if as_json:
        click.echo(json.dumps([{"node_id": k, **v} for k, v in sorted(rows.items())], indent=2))
        return
    if not rows:
        click.echo("no known peers (add one with `terminus peers add REF`)")
        return
    for node_id, entry in sorted(rows.items()):
        name = entry.get("name", "")
        seen = entry.get("last_seen")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(seen)) if seen else "never"
        addrs = ",".join(entry.get("addresses", [])) or "-"
        click.echo(f"{node_id}  {name:<12} {addrs:<30} last seen {when}")


@peers.command("add")
@click.argument("ref")
@click.option("--name", help="A label for this peer.")
@pass_state
def add_peer(state: CliState, ref: str, name: str | None) -> None:
    """Remember a peer by its terminus:node/… reference."""
    from terminus.p2p.node import parse_node_ref
    from terminus.p2p.peers import PeerBook

    parsed = parse_node_ref(ref)
    PeerBook(state.client().home).add(parsed, name=name)
    click.echo(f"added {parsed.node_id}")


@peers.command("rm")
@click.argument("node_id")
@pass_state
def remove_peer(state: CliState, node_id: str) -> None:
    """Forget a peer."""
    from terminus.p2p.peers import PeerBook

    if not PeerBook(state.client().home).remove(node_id.lower()):
        raise click.UsageError(f"no known peer {node_id}")
    click.echo(f"removed {node_id}")


def use_peer(state: CliState, peer: str, fallback_local: bool) -> None:
    """Route the client's requests to ``peer`` (``terminus run --peer``)."""
    from terminus.transports.peer import PeerTransport

    client = state.client()
    client.transport = PeerTransport(
        peer, home=client.home, fallback=client.transport if fallback_local else None
    )
