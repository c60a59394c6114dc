"""``terminus models``: list, pull, rm, verify, info and add models in the verified cache."""

from __future__ import annotations

import json
import sys

import click

from terminus.cli.context import CliState, pass_state
from terminus.models.card import ModelCard
from terminus.runtime.memory import format_size


@click.group()
def models() -> None:
    """Manage models: every file is pinned by sha256 and verified before use."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--cached", is_flag=True, help="Only models already in the cache.")
@pass_state
def list_models(state: CliState, as_json: bool, cached: bool) -> None:
    """List known models and whether each is cached."""
    rows = [s for s in state.client().models.list() if s.cached or not cached]
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": s.card.id,
                        "aliases": list(s.card.aliases),
                        "capability": s.card.capability.value,
                        "capabilities": [c.value for c in s.card.capabilities],
                        "engine": s.card.engine,
                        "size": s.card.size,
                        "cached": s.cached,
                        "partial_bytes": s.partial_bytes,
                        "loaded": s.loaded,
                    }
                    for s in rows
                ],
                indent=2,
            )
        )
        return
    # shortest first: the names people type ("qwen") lead
    aliases = [", ".join(sorted(s.card.aliases, key=len)) or "-" for s in rows]
    width = max([len("MODEL"), *(len(s.card.id) for s in rows)])  # never cut a name: users copy it
    alias_width = max([len("ALIASES"), *map(len, aliases)])
    click.echo(
        f"{'MODEL':<{width}} {'ALIASES':<{alias_width}} {'CAPABILITY':<11} {'ENGINE':<15} "
        f"{'SIZE':>10}  STATUS"
    )
    for s, alias in zip(rows, aliases, strict=True):
        status = (
            "cached"
            if s.cached
            else (f"partial {format_size(s.partial_bytes)}" if s.partial_bytes else "-")
        )
        click.echo(
            f"{s.card.id:<{width}} {alias:<{alias_width}} {_capability(s.card):<11} "
            f"{s.card.engine:<15} {format_size(s.card.size):>10}  {status}"
        )


@models.command()
@click.argument("names", nargs=-1, required=True, metavar="MODEL...")
@click.option("--json", "as_json", is_flag=True, help="Print what was fetched as JSON.")
@click.option(
    "--kind", help="What an hf:// repository holds if not GGUF: stt, tts, image, embed-st."
)
@pass_state
def pull(state: CliState, names: tuple[str, ...], as_json: bool, kind: str | None) -> None:
    """Fetch models into the cache, verifying every file's sha256 (same as `terminus pull`).

    MODEL is a model id, a catalog name (`models search`) or hf://OWNER/REPO[:QUANT|/FILE].
    """
    pull_from_catalog(state, names, as_json=as_json, kind=kind)


def pull_from_catalog(
    state: CliState, names: tuple[str, ...], *, as_json: bool = False, kind: str | None = None
) -> None:
    """What `terminus pull` and `terminus models pull` both do for catalog and Hub models."""
    client = state.client()
    rows = []
    for name in names:
        files = client.models.pull(name, kind=kind)  # a Hub name gets its card on first pull
        card = client.models.get(name)
        rows.append(
            {
                "id": card.id,
                "files": {file: str(path) for file, path in files.paths.items()},
                "size": card.size,
            }
        )
        if not as_json:
            click.echo(
                f"{card.id}: {len(files.paths)} file(s) verified, "
                f"{format_size(card.size)} in {files.root}"
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))


@models.command()
@click.argument("names", nargs=-1, required=True, metavar="MODEL...")
@click.option("--forget", is_flag=True, help="Also delete the card of a model you added.")
@pass_state
def rm(state: CliState, names: tuple[str, ...], forget: bool) -> None:
    """Remove models from the cache (files another cached model shares are kept)."""
    client = state.client()
    for name in names:
        card = client.models.get(name)
        freed = client.models.remove(name, forget=forget)
        click.echo(f"{card.id}: removed, {format_size(freed)} freed")


@models.command()
@click.argument("name", required=False, metavar="[MODEL]")
@click.option("--json", "as_json", is_flag=True, help="Print one object per file as JSON.")
@pass_state
def verify(state: CliState, name: str | None, as_json: bool) -> None:
    """Re-hash cached files; corrupt files are deleted so they are never loaded.

    Exits with status 5 when any file is corrupt or missing.
    """
    report = state.client().models.verify(name)
    rows = [
        {"model": model_id, "file": r.name, "ok": r.ok, "detail": r.detail}
        for model_id, results in report.items()
        for r in results
    ]
    bad = sum(not row["ok"] for row in rows)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            mark = "ok " if row["ok"] else "BAD"
            click.echo(f"{mark} {row['model']}/{row['file']}  {row['detail']}")
        if not report:
            click.echo("nothing cached to verify")
    if bad:
        click.echo(f"error: {bad} file(s) failed verification; pull again to restore", err=True)
        sys.exit(5)


@models.command()
@click.argument("name", metavar="MODEL")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def info(state: CliState, name: str, as_json: bool) -> None:
    """Show a model's card, sources and (when cached) what its file says about itself."""
    data = state.client().models.info(name)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['id']}  {data.get('name', '')}")
    rows: list[tuple[str, str]] = []
    for key in (
        "aliases",
        "capability",
        "engine",
        "format",
        "architecture",
        "license",
        "description",
        "cached",
    ):
        if key in data:
            value = ", ".join(data[key]) if isinstance(data[key], list) else data[key]
            rows.append((key, str(value)))
    for f in data["files"]:
        size = format_size(f.get("size") or 0)
        rows.append(("file", f"{f['name']}  {size}  sha256 {f['sha256']}"))
    for s in data.get("sources", []):
        where = s.get("packages") or list((s.get("urls") or s.get("paths") or {}).values())
        rows.append(("source", f"{s['type']}: {' '.join(where)}"))
    for key, value in (data.get("gguf") or {}).items():
        rows.append((f"gguf.{key}", str(value)))
    width = max(len(label) for label, _ in rows)  # every value starts in one column
    for label, value in rows:
        click.echo(f"  {label:<{width}}  {value}")


@models.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--id", "model_id", metavar="ID", help="Id to give it [default: from the file name].")
@click.option(
    "--mmproj",
    type=click.Path(exists=True, dir_okay=False),
    help="Its vision projector GGUF: the model then reads images (see docs/vision.md).",
)
@pass_state
def add(state: CliState, path: str, model_id: str | None, mmproj: str | None) -> None:
    """Add your own GGUF model file; it is validated, hashed and cached.

    GGUF has no checksum for its tensor data: the header and the tensor extents are
    validated, and a sample of every tensor is checked for NaN/Inf and blank data.
    """
    card = state.client().models.add(path, model_id=model_id, mmproj=mmproj)
    click.echo(
        f"added {card.id} ({card.architecture or 'unknown architecture'}, "
        f"{format_size(card.size)}, sha256 {card.main_file.sha256[:16]}…)"
    )
    if mmproj:
        click.echo(f"vision projector {card.files[1].name}, sha256 {card.files[1].sha256[:16]}…")
    click.echo(
        "note: GGUF has no checksum for tensor data; header, extents and a sample of every "
        "tensor were checked. The sha256 above now pins these bytes in the cache.",
        err=True,
    )


def _capability(card: ModelCard) -> str:
    """``chat+vision`` for a chat model that reads images."""
    return "+".join(c.value for c in card.capabilities)
