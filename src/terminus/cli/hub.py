"""``terminus models search`` / ``models show`` and ``terminus image-models pull``:
the Hub catalog from the shell."""

from __future__ import annotations

import json

import click

from terminus.cli.context import CliState, pass_state
from terminus.runtime.memory import format_size


@click.command("search")
@click.argument("words", nargs=-1)
@click.option("--kind", help="Only this kind: chat, vision, embed, embed-st, image, stt, tts.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def search(state: CliState, words: tuple[str, ...], kind: str | None, as_json: bool) -> None:
    """Well-known models on the Hugging Face Hub, by name (`models pull NAME` gets one).

    \b
    Examples:
      terminus models search qwen3
      terminus models search --kind image
      terminus models pull qwen3:1.7b
      terminus models pull hf://OWNER/REPO:Q4_K_M     any GGUF repository
    """
    entries = state.client().models.search(" ".join(words), kind=kind)
    pulled = {a for s in state.client().models.list() for a in s.card.names() if s.cached}
    if as_json:
        rows = [
            {
                "name": e.name,
                "id": e.id,
                "kind": e.kind,
                "repo": e.repo,
                "quant": e.quant,
                "size": e.size,
                "license": e.license,
                "description": e.description,
                "cached": e.name in pulled or e.id in pulled,
            }
            for e in entries
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if not entries:
        click.echo("no catalog model matches; any GGUF repository works: hf://OWNER/REPO")
        return
    width = max(len(e.name) for e in entries)
    for e in entries:
        mark = "cached" if (e.name in pulled or e.id in pulled) else ""
        click.echo(f"{e.name:<{width}}  {e.kind:<8} {e.size:<22} {e.repo}  {mark}".rstrip())


@click.command("show")
@click.argument("name", metavar="MODEL")
@click.option("--recipe", "as_recipe", is_flag=True, help="Print the recipe it was created from.")
@pass_state
def show(state: CliState, name: str, as_recipe: bool) -> None:
    """Print a model's card as TOML (or, with --recipe, its recipe)."""
    from terminus.models.card import dump_card_toml

    models = state.client().models
    if as_recipe:
        click.echo(models.recipe(name), nl=False)
        return
    click.echo(dump_card_toml(models.get(name)), nl=False)


@click.command("pull")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@pass_state
def pull_image_model(state: CliState, names: tuple[str, ...]) -> None:
    """Fetch an image model from the Hub (sd-turbo, sdxs), verified against its sha256."""
    from terminus.models.hub_catalog import require_entry
    from terminus.models.hub_ref import is_hub_ref

    client = state.client()
    for name in names:
        if not is_hub_ref(name):
            require_entry(name, kind="image")
        files = client.models.pull(name, kind="image")
        card = client.models.get(name)
        click.echo(
            f"{card.id}: {len(files.paths)} file(s) verified, {format_size(card.size)}; "
            f'try: terminus image "a red fox" -m {card.id}'
        )
