"""``terminus create NAME -f RECIPE.toml``: a new model from a base and a recipe."""

from __future__ import annotations

from pathlib import Path

import click

from terminus.cli.context import CliState, pass_state


@click.command()
@click.argument("name", metavar="NAME")
@click.option(
    "-f",
    "--file",
    "recipe",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The recipe (TOML): from, system, template, adapter, [parameters].",
)
@pass_state
def create(state: CliState, name: str, recipe: Path) -> None:
    """Create model NAME from a recipe, like Ollama's Modelfile.

    \b
    pirate.toml:
      from = "smollm2"
      system = "You are a pirate. Answer like one."
      [parameters]
      temperature = 0.7
    \b
      terminus create pirate -f pirate.toml
      terminus run -m pirate "Where is the treasure?"
      terminus models show pirate --recipe
    """
    card = state.client().models.create(name, recipe)
    extra = (
        f" + adapter {card.defaults['lora_adapter']}" if card.defaults.get("lora_adapter") else ""
    )
    click.echo(f"created {card.id} from {card.base_model}{extra}")
