"""``terminus share`` and ``terminus pull``: fetch models, from the catalog or from peers
(BitTorrent v2)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from terminus.cli.context import CliState, pass_state


@click.command()
@click.argument("model")
@click.option(
    "--listen",
    default="0.0.0.0:6881",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to accept peers on (port 0 picks a free one).",
)
@click.option(
    "--advertise",
    multiple=True,
    metavar="HOST",
    help="Address peers should dial, repeatable [default: this host's addresses].",
)
@click.option(
    "--web-seed",
    multiple=True,
    metavar="URL",
    help="An HTTP mirror serving a Terminus home's blobs/ folder, repeatable.",
)
@click.option(
    "--ref-file", type=click.Path(dir_okay=False), help="Also write the reference to this file."
)
@click.option("--once", is_flag=True, help="Print the reference and exit without seeding.")
@click.option(
    "--public",
    is_flag=True,
    envvar="TERMINUS_P2P_PUBLIC",
    help="Also announce on the DHT and map ports (internet) [env TERMINUS_P2P_PUBLIC].",
)
@pass_state
def share(
    state: CliState,
    model: str,
    listen: str,
    advertise: tuple[str, ...],
    web_seed: tuple[str, ...],
    ref_file: str | None,
    once: bool,
    public: bool,
) -> None:
    """Seed a cached MODEL to peers and print a reference they can pull it with.

    Any cached model can be shared, including ones added with `terminus models add`.
    Only verified blobs are served; peers check every piece against its SHA-256 Merkle
    tree and the whole file against the card before using it. Runs until Ctrl-C.
    """
    from terminus.models.progress import terminal_progress
    from terminus.p2p.share import Seeder

    client = state.client()
    card = client.catalog.get(model)
    seeder = Seeder(client.cache, listen=listen, advertise=advertise or None, public=public)
    ref = seeder.share(card, web_seeds=web_seed, progress=terminal_progress())
    text = ref.format()
    if ref_file:
        Path(ref_file).write_text(text + "\n", encoding="utf-8")
    click.echo(text)
    click.echo(f"magnet: {ref.magnet()}", err=True)
    click.echo(
        f"seeding {card.id} on port {seeder.port}; pull it with "
        f"`terminus pull {card.id} --from-peer REF` (Ctrl-C stops)",
        err=True,
    )
    sys.stdout.flush()
    if once:
        seeder.close()
        return
    try:
        while True:
            seeder.pump()
    except KeyboardInterrupt:
        pass
    finally:
        seeder.close()


@click.command()
@click.argument("models", nargs=-1, metavar="[MODEL...]")
@click.option(
    "--from-peer",
    "reference",
    metavar="REF",
    help="A reference printed by `terminus share` (terminus:model/…).",
)
@click.option(
    "--public",
    is_flag=True,
    envvar="TERMINUS_P2P_PUBLIC",
    help="Also find peers on the DHT (internet) [env TERMINUS_P2P_PUBLIC].",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was fetched as JSON.")
@pass_state
def pull(
    state: CliState, models: tuple[str, ...], reference: str | None, public: bool, as_json: bool
) -> None:
    """Fetch MODELs into the verified cache: from the catalog's sources (as `terminus
    models pull` does), or from peers when --from-peer is given.

    \b
    Examples:
      terminus pull qwen                                  from the catalog
      terminus pull qwen --from-peer terminus:model/…     from a peer running `terminus share`

    Peer downloads resume after an interruption (run the same command again); a peer
    that sends bad data is banned and the download goes on from the others. A model
    not in the catalog gets a card from the reference.
    """
    if reference is None:
        if not models:
            raise click.UsageError("name a MODEL or give --from-peer REF")
        from terminus.cli.models import pull_from_catalog

        pull_from_catalog(state, models, as_json=as_json)
        return
    if len(models) > 1:
        raise click.UsageError("--from-peer fetches one model; name at most one")
    model = models[0] if models else None
    client = state.client()
    from terminus.models.progress import terminal_progress
    from terminus.p2p.pull import pull_from_peers

    started = time.monotonic()
    card, files, source = pull_from_peers(
        client.catalog,
        client.cache,
        reference,
        model=model,
        progress=terminal_progress(),
        public=public,
    )
    report = source.last_report
    if as_json:
        row = {
            "id": card.id,
            "files": {name: str(path) for name, path in files.paths.items()},
            "size": card.size,
            "seconds": round(time.monotonic() - started, 3),
            "resumed_bytes": report.resumed_bytes if report else 0,
            "bad_pieces": report.hash_failures if report else 0,
            "banned_peers": list(report.banned_peers) if report else [],
        }
        click.echo(json.dumps([row], indent=2))
        return
    detail = ""
    if report is not None:
        detail = f" in {time.monotonic() - started:.1f}s"
        if report.resumed_bytes:
            detail += f"; resumed with {report.resumed_bytes} verified bytes already staged"
        if report.hash_failures:
            detail += f"; {report.hash_failures} bad piece(s) rejected"
        if report.banned_peers:
            detail += f", banned {', '.join(report.banned_peers)}"
    click.echo(f"{card.id} is cached and verified ({files.main}){detail}")
