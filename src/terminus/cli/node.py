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
        click.option(
            "--rpc",
            is_flag=True,
            help="Also offer this machine's memory as a llama.cpp RPC worker to the allowed "
            "keys (`terminus run --split`); its port stays on 127.0.0.1.",
        ),
        click.option(
            "--rpc-listen",
            default="0.0.0.0:0",
            show_default=True,
            metavar="HOST:PORT",
            help="QUIC address of the RPC tunnel.",
        ),
        click.option(
            "--rpc-ref-file",
            type=click.Path(dir_okay=False),
            help="Also write the RPC worker's reference here.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _serve(state: CliState, **opts: Any) -> None:
    from terminus.p2p.identity import load_or_create_identity
    from terminus.p2p.nonces import PersistentNonceStore
    from terminus.p2p.provider import Provider, ProviderPolicy

    offers = opts["models"] or opts["functions"] or opts["servers"] or opts["rpc"]
    if offers and not (opts["allow"] or opts["allow_any"]):
        raise click.UsageError("name the consumers with --allow KEY (or --allow-any)")
    client = state.client()
    tools, servers = _offered_tools(opts["functions"], opts["servers"], client.home)
    worker = _start_rpc_worker(client, opts) if opts["rpc"] else None
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
        if worker is not None:
            worker.close()
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
        if worker is not None:
            worker.close()


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


def _start_rpc_worker(client: Any, opts: dict[str, Any]) -> Any:
    from terminus.p2p.identity import load_or_create_identity
    from terminus.p2p.rpc_binaries import RPC_SERVER, binary
    from terminus.p2p.rpc_tunnel import RpcWorker

    worker = RpcWorker(
        load_or_create_identity(client.home),
        binary(client.home, RPC_SERVER),
        None if opts["allow_any"] else frozenset(k.lower() for k in opts["allow"]),
        listen=opts["rpc_listen"],
        cache_dir=client.home / "p2p" / "rpc-cache",
    )
    ref = worker.start().format()
    if opts["rpc_ref_file"]:
        with open(opts["rpc_ref_file"], "w", encoding="utf-8") as fh:
            fh.write(ref + "\n")
    click.echo(f"rpc worker: {ref}", err=True)
    return worker


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
    if not (opts["models"] or opts["functions"] or opts["servers"] or opts["rpc"]):
        raise click.UsageError("name at least one --model, --tool, --mcp or --rpc to provide")
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


@peers.command("status")
@click.option(
    "--peer",
    "refs",
    multiple=True,
    metavar="REF",
    help="A provider to ask (repeatable); by default every known peer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answers as JSON.")
@pass_state
def peer_status(state: CliState, refs: tuple[str, ...], as_json: bool) -> None:
    """Ask providers for their models, load and latency (each answer is a signed request)."""
    from terminus.p2p.peers import PeerBook
    from terminus.transports.pool import PoolTransport

    home = state.client().home
    targets = list(refs) or sorted(PeerBook(home).all())
    if not targets:
        raise click.UsageError("no known peers: name them with --peer REF or `terminus peers add`")
    pool = PoolTransport(targets, home=home)
    try:
        pool.refresh()
        rows = pool.describe()
    finally:
        pool.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            click.echo(_status_line(row))
    if not any(row["reachable"] for row in rows):
        raise SystemExit(30)  # PeerUnavailableError's exit code: nobody answered


def _status_line(row: dict[str, Any]) -> str:
    node = row["node_id"][:16] + "…"
    if not row["reachable"]:
        return f"{node}  unreachable  {row['error'] or ''}"
    models = ",".join(row["models"]) or "-"
    busy = f"{row['active']}/{row['max_concurrent']} busy"
    load = f"load {row['load_average']}/{row['cores']} cores"
    return f"{node}  {busy:<10} {load:<20} {row['latency_ms']:>6} ms  {models}"


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


def use_peer(state: CliState, peers: str | tuple[str, ...], fallback_local: bool) -> None:
    """Route the client's requests to ``peers`` (``terminus run --peer``, repeatable)."""
    from terminus.client.delegation import delegated_transport

    client = state.client()
    client.transport = delegated_transport(
        client, peers, client.transport if fallback_local else None
    )
