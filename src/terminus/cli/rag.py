"""``terminus rag``: ingest documents into workspaces, search them, ask cited questions."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any

import click

from terminus.cli.context import CliState, pass_state
from terminus.cli.render import render_events


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=flag)
        pairs[key.strip()] = rest
    return pairs


def _workspace(state: CliState, name: str, model: str | None = None, create: bool = False) -> Any:
    from terminus.rag import Workspace

    return Workspace(state.client(), name, model=model, create=create)


class _LogLines:
    """Progress for a stderr that is not a terminal (a log file, a pipe): one line per
    stage once it has run for ``first_s``, then one every ``every_s``; quick work prints
    nothing."""

    first_s = 5.0
    every_s = 30.0

    def __init__(self) -> None:
        self._stage = ""
        self._started = self._last = 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._started, self._last = stage, now, 0.0
            return
        if now - self._started < self.first_s or now - self._last < self.every_s:
            return
        self._last = now
        of = f" of {total:,} ({100 * done / total:.0f} %)" if total else ""
        click.echo(f"{stage}: {done:,}{of}, {now - self._started:.0f} s", err=True)


def _progress() -> Any:
    """A bar on a terminal, log lines otherwise."""
    return True if sys.stderr.isatty() else _LogLines()


chunking_option = click.option(
    "--chunking",
    type=click.Choice(["auto", "tokens", "sentences", "markdown"]),
    default="auto",
    show_default=True,
    help="How documents are cut: word windows, packed sentences, or Markdown sections "
    "(auto: markdown for .md/.html, sentences otherwise).",
)


@click.group()
def rag() -> None:
    """Search your documents and get answers that cite them.

    \b
    Examples:
      terminus rag ingest notes ~/notes/ --meta project=apollo
      terminus rag search notes "launch window" -k 3 --filter project=apollo
      terminus rag ask notes "When is the launch window?" -m qwen
      terminus rag ls                  workspaces;  terminus rag ls notes: documents
      terminus rag rm notes --doc 3f2a
    """


@rag.command()
@click.argument("workspace")
@click.argument("paths", nargs=-1, required=True, type=click.Path(), metavar="PATH...")
@click.option("--model", metavar="MODEL", help="Embedding model of a new workspace.")
@chunking_option
@click.option("--chunk-size", type=int, metavar="WORDS", help="Words per chunk [default 160].")
@click.option("--overlap", type=int, metavar="WORDS", help="Words shared by chunks [32].")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@pass_state
def ingest(
    state: CliState,
    workspace: str,
    paths: tuple[str, ...],
    model: str | None,
    chunking: str,
    chunk_size: int | None,
    overlap: int | None,
    meta: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add files (or directories of them) to WORKSPACE, creating it if needed.

    Reads .txt .md .html .pdf (and a few text types). Every file is read first, so a
    bad one stops the command with nothing added; re-adding unchanged content is a
    no-op, and a changed file replaces its previous version.
    """
    metadata = _pairs(meta, "--meta")
    with _workspace(state, workspace, model, create=True) as ws:
        results = ws.ingest_files(
            paths,
            metadata=metadata,
            chunking=chunking,
            chunk_size=chunk_size,
            overlap=overlap,
            progress=_progress(),
        )
        info = ws.info()
    if as_json:
        click.echo(json.dumps([r.model_dump() for r in results], indent=2))
        return
    for r in results:
        detail = f"{r.chunks} chunks" if r.status != "skipped" else "already there"
        click.echo(f"{r.status:<8} {r.document_id}  {r.source}  ({detail})")
    click.echo(
        f"{info.name}: {info.documents} documents, {info.chunks} chunks ({info.model})", err=True
    )


@rag.command()
@click.argument("workspace")
@click.argument("query")
@click.option("-k", "--top-k", default=5, show_default=True, help="How many chunks.")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE", help="Metadata equality.")
@click.option("--hybrid", is_flag=True, help="Fuse keyword (BM25) and vector rankings.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@pass_state
def search(
    state: CliState,
    workspace: str,
    query: str,
    top_k: int,
    filters: tuple[str, ...],
    hybrid: bool,
    as_json: bool,
) -> None:
    """Print the chunks of WORKSPACE most similar to QUERY."""
    where = _pairs(filters, "--filter")
    with _workspace(state, workspace) as ws:
        results = ws.search(query, top_k, where or None, hybrid=hybrid)
    if as_json:
        click.echo(json.dumps([r.model_dump() for r in results], indent=2))
        return
    if not results:
        click.echo("no results", err=True)
    for rank, r in enumerate(results, start=1):
        heading = f"  ({r.heading})" if r.heading else ""
        click.echo(f"{rank}. {r.score:.3f}  {r.label()}{heading}")
        text = " ".join(r.text.split())
        click.echo("   " + (text[:300] + " …" if len(text) > 300 else text))


@rag.command()
@click.argument("workspace")
@click.argument("question")
@click.option("-m", "--model", metavar="MODEL", help="Chat model [default: the default model].")
@click.option("-k", "--top-k", default=4, show_default=True, help="How many chunks to give it.")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE", help="Metadata equality.")
@click.option("--hybrid", is_flag=True, help="Fuse keyword (BM25) and vector rankings.")
@click.option("-t", "--temperature", type=float, help="0 is greedy.")
@click.option("-n", "--max-tokens", type=int, help="Stop after this many tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print events, then sources, as JSON lines.")
@pass_state
def ask(
    state: CliState,
    workspace: str,
    question: str,
    model: str | None,
    top_k: int,
    filters: tuple[str, ...],
    hybrid: bool,
    temperature: float | None,
    max_tokens: int | None,
    as_json: bool,
) -> None:
    """Stream an answer to QUESTION from WORKSPACE's documents, then list its sources."""
    params = {
        k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None
    }
    where = _pairs(filters, "--filter")
    with _workspace(state, workspace) as ws:
        answer = ws.ask(question, model, top_k, where or None, hybrid=hybrid, **params)
        try:
            done = render_events(answer, as_json=as_json, show_stats=False)
        except KeyboardInterrupt:
            answer.cancel()
            raise
    cited = answer.citations
    if as_json:
        click.echo(
            json.dumps(
                {
                    "type": "sources",
                    "cited": [c.number for c in cited],
                    # "matched": attributed to the answer's sentences; "model": its own [n]
                    "cited_how": cited[0].how if cited else None,
                    "sources": [c.model_dump() for c in answer.sources],
                }
            )
        )
    else:
        shown = cited or list(answer.sources)
        title = "Sources given (none cited):"
        if cited:
            matched = all(c.how == "matched" for c in cited)
            title = "Sources (matched to the answer):" if matched else "Sources:"
        if shown:
            click.echo("\n" + title)
        for c in shown:
            heading = f"  ({c.result.heading})" if c.result.heading else ""
            click.echo(f"[{c.number}] {c.result.label()}{heading}")
    if done is not None and done.stop_reason == "error":
        sys.exit(1)


@rag.command("index")
@click.argument("workspace")
@pass_state
def index_(state: CliState, workspace: str) -> None:
    """Build WORKSPACE's approximate search index now and save it (needs faiss:
    pip install 'terminus-sdk[ann]'); later searches of 200,000+ chunks load it."""
    from terminus.rag import Workspace

    started = time.monotonic()
    with Workspace(state.client(), workspace, create=False, index="ann") as ws:
        built = ws.build_index()
        chunks = ws.info().chunks
    if not built:
        click.echo(f"{workspace}: no chunks to index", err=True)
        return
    click.echo(f"{workspace}: indexed {chunks:,} chunks in {time.monotonic() - started:.1f} s")


@rag.command("ls")
@click.argument("workspace", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def list_(state: CliState, workspace: str | None, as_json: bool) -> None:
    """List workspaces, or the documents of WORKSPACE."""
    from terminus.rag import list_workspaces

    if workspace is None:
        infos = list_workspaces(state.client())
        if as_json:
            click.echo(json.dumps([i.model_dump() for i in infos], indent=2))
            return
        if not infos:
            click.echo("no workspaces (create one with `terminus rag ingest NAME PATH`)", err=True)
            return
        click.echo(f"{'WORKSPACE':<24} {'DOCS':>6} {'CHUNKS':>8}  MODEL")
        for i in infos:
            click.echo(f"{i.name:<24} {i.documents:>6} {i.chunks:>8}  {i.model} ({i.dimensions}d)")
        return
    with _workspace(state, workspace) as ws:
        documents = ws.documents()
    if as_json:
        click.echo(json.dumps([d.model_dump() for d in documents], indent=2))
        return
    click.echo(f"{'ID':<16}  {'CHUNKS':>6}  {'ADDED':<16}  SOURCE")
    for d in documents:
        added = datetime.fromtimestamp(d.added_at).strftime("%Y-%m-%d %H:%M")
        meta = "  " + " ".join(f"{k}={v}" for k, v in d.metadata.items()) if d.metadata else ""
        click.echo(f"{d.id:<16}  {d.chunks:>6}  {added:<16}  {d.source}{meta}")


@rag.command()
@click.argument("workspace")
@click.option(
    "--doc", "docs", multiple=True, metavar="ID", help="Remove only this document (id, prefix "
    "or source; repeatable) instead of the whole workspace.",
)  # fmt: skip
@pass_state
def rm(state: CliState, workspace: str, docs: tuple[str, ...]) -> None:
    """Delete WORKSPACE, or only some of its documents."""
    from terminus.rag import delete_workspace

    if not docs:
        delete_workspace(state.client(), workspace)
        click.echo(f"deleted workspace {workspace}")
        return
    with _workspace(state, workspace) as ws:
        for ref in docs:
            click.echo(f"deleted {ws.delete_document(ref)}")


@rag.command()
@click.argument("workspace")
@click.option("--model", metavar="MODEL", help="Bind the workspace to this embedding model.")
@chunking_option
@click.option("--chunk-size", type=int, metavar="WORDS", help="Words per chunk.")
@click.option("--overlap", type=int, metavar="WORDS", help="Words shared by chunks.")
@pass_state
def reindex(
    state: CliState,
    workspace: str,
    model: str | None,
    chunking: str,
    chunk_size: int | None,
    overlap: int | None,
) -> None:
    """Re-chunk and re-embed every document of WORKSPACE (atomically)."""
    with _workspace(state, workspace) as ws:
        changed = chunking != "auto" or chunk_size is not None or overlap is not None
        info = ws.reindex(
            model,
            chunking=chunking if changed else None,
            chunk_size=chunk_size,
            overlap=overlap,
            progress=_progress(),
        )
    click.echo(f"{info.name}: {info.documents} documents, {info.chunks} chunks ({info.model})")
