"""``terminus rpc build`` and ``terminus run --split``: one model over several machines."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from terminus.cli.context import CliState, pass_state


@click.group()
def rpc() -> None:
    """llama.cpp's RPC backend: split one model's layers over trusted machines."""


@rpc.command("build")
@click.option("--jobs", type=int, help="Compiler jobs [default: every core].")
@pass_state
def build_command(state: CliState, jobs: int | None) -> None:
    """Compile llama.cpp's rpc-server and Terminus's split host from the PyPI sdist.

    Needs cmake, ninja and a C++ compiler; takes minutes (measured: docs/p2p.md).
    """
    from terminus.p2p.rpc_binaries import SDIST, build

    started = time.monotonic()
    click.echo(f"building {SDIST} with GGML_RPC=ON…", err=True)
    out = build(state.client().home, jobs)
    click.echo(f"built into {out} in {time.monotonic() - started:.0f} s")


def run_split(
    state: CliState,
    model: str,
    prompt: str,
    workers: str,
    *,
    max_tokens: int,
    raw: bool,
    context_length: int | None,
    threads: int | None,
    tensor_split: str | None,
) -> None:
    """Greedy decoding with the model's layers spread over this machine and ``workers``."""
    from terminus.p2p.identity import load_or_create_identity
    from terminus.p2p.node import parse_node_ref
    from terminus.p2p.peers import PeerBook
    from terminus.p2p.split import SplitModel, SplitToken

    client = state.client()
    card = client.models.get(model)
    if card.format != "gguf":
        raise click.UsageError(f"--split needs a GGUF model; {card.id} is {card.format}")
    book = PeerBook(client.home)
    refs = [book.resolve(parse_node_ref(r)) for r in workers.split(",") if r.strip()]
    shares = [float(s) for s in tensor_split.split(",")] if tensor_split else None
    path = client.manager.ensure_files(card).main
    split = SplitModel(
        path,
        refs,
        load_or_create_identity(client.home),
        client.home,
        threads=threads or 1,
        context_length=context_length or 2048,
        tensor_split=shares,
    )
    with split.start():
        click.echo(
            f"{card.id}: {split.remote_layers} of {split.layers} layers on {len(refs)} worker(s)",
            err=True,
        )
        for event in split.generate(prompt, max_tokens, chat=not raw):
            if isinstance(event, SplitToken):
                sys.stdout.write(event.text)
                sys.stdout.flush()
        sys.stdout.write("\n")


def split_options(command: Any) -> Any:
    options = [
        click.option(
            "--split",
            metavar="REF,REF…",
            help="Spread the model's layers over this machine and these `terminus provide "
            "--rpc` workers (greedy decoding; needs `terminus rpc build`).",
        ),
        click.option(
            "--tensor-split",
            metavar="W1,W2…",
            help="With --split: the workers' relative shares [default: by free memory].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
