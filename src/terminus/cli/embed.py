"""``terminus embed``: sentence vectors from an embedding model."""

from __future__ import annotations

import json
import sys

import click

from terminus.cli.context import CliState, pass_state

SHOWN_VALUES = 6


@click.command()
@click.argument("texts", nargs=-1, metavar="[TEXT]...")
@click.option(
    "-m",
    "--model",
    metavar="MODEL",
    help="Embedding model id or alias [default: all-minilm-l6-v2, env TERMINUS_EMBED_MODEL].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the vectors as JSON.")
@click.option("--no-normalize", is_flag=True, help="Keep the raw vectors (no L2 normalization).")
@pass_state
def embed(
    state: CliState, texts: tuple[str, ...], model: str | None, as_json: bool, no_normalize: bool
) -> None:
    """Embed each TEXT (or each line of stdin) and show its vector.

    \b
    Examples:
      terminus embed "The cat sat on the mat." "A cat was on a rug."
      terminus embed --json -m all-minilm "hello" > vectors.json
      cat lines.txt | terminus embed --json
    """
    inputs = list(texts) or _stdin_lines()
    result = state.client().embed(inputs, model=model, normalize=not no_normalize)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": result.model,
                    "dimensions": result.dimensions,
                    "prompt_tokens": result.prompt_tokens,
                    "data": [
                        {"index": i, "text": text, "embedding": vector.tolist()}
                        for i, (text, vector) in enumerate(zip(inputs, result.vectors, strict=True))
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    click.echo(
        f"{result.model}: {len(result)} vector{'s' if len(result) != 1 else ''} of "
        f"{result.dimensions} dimensions, {result.prompt_tokens} tokens, "
        f"{result.total_s * 1000:.0f} ms"
    )
    for i, (text, vector) in enumerate(zip(inputs, result.vectors, strict=True)):
        values = " ".join(f"{v:+.4f}" for v in vector[:SHOWN_VALUES])
        more = " …" if len(vector) > SHOWN_VALUES else ""
        click.echo(f"[{i}] {values}{more}  {_preview(text)}")


def _stdin_lines() -> list[str]:
    if sys.stdin.isatty():
        raise click.UsageError("give TEXT arguments or pipe lines on stdin")
    lines = [line.rstrip("\r\n") for line in sys.stdin]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise click.UsageError("nothing to embed: stdin had no non-empty lines")
    return lines


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
