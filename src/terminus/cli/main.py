"""Entry point: global options, command groups, and error-to-exit-code mapping."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from terminus._version import __version__
from terminus.cli.context import CliState
from terminus.errors import TerminusError


class TerminusGroup(click.Group):
    """Turns Terminus errors into a one-line message and the error type's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TerminusError as exc:
            click.echo(f"error: {exc.one_line()}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=TerminusGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    envvar="TERMINUS_HOME",
    metavar="DIR",
    help="Where models and settings live [env TERMINUS_HOME; default ~/.cache/terminus].",
)
@click.option(
    "--offline",
    is_flag=True,
    envvar="TERMINUS_OFFLINE",
    help="Never download; use only what is cached or installed [env TERMINUS_OFFLINE].",
)
@click.option(
    "--memory-policy",
    type=click.Choice(["refuse", "warn", "off"]),
    envvar="TERMINUS_MEMORY_POLICY",
    help="What to do when a model may not fit in memory [default refuse].",
)
@click.option(
    "--memory-budget",
    metavar="SIZE",
    envvar="TERMINUS_MEMORY_BUDGET",
    help="Memory all loaded models may use, e.g. 4G [default 75% of RAM].",
)
@click.option(
    "--no-server",
    is_flag=True,
    envvar="TERMINUS_NO_SERVER",
    help="Run in this process even when a resident server (serve --detach) is running "
    "[env TERMINUS_NO_SERVER].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what Terminus does to stderr.")
@click.version_option(version=__version__, prog_name="terminus")
@click.pass_context
def cli(
    ctx: click.Context,
    home: str | None,
    offline: bool,
    memory_policy: str | None,
    memory_budget: str | None,
    no_server: bool,
    verbose: bool,
) -> None:
    """Terminus: run verified AI models on your own machine.

    \b
    Quick start:
      terminus run "Why is the sky blue?"      stream an answer from the default model
      terminus chat --model qwen               talk to a model; /help lists the commands
      terminus pull qwen                       fetch a model into the verified cache
      terminus models list                     what is available and what is cached
      terminus doctor                          what this machine can run, and why not
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    state = CliState(
        home=home,
        offline=offline,
        memory_policy=memory_policy,
        memory_budget=memory_budget,
        no_server=no_server,
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


def _register() -> None:
    from terminus.cli.adapt import compare, finetune, quantize
    from terminus.cli.chat import chat
    from terminus.cli.doctor import doctor
    from terminus.cli.embed import embed
    from terminus.cli.eval import eval_group
    from terminus.cli.generate import run
    from terminus.cli.image import image, image_models
    from terminus.cli.models import models
    from terminus.cli.rag import rag
    from terminus.cli.serve import serve
    from terminus.cli.speech import ocr, speak, transcribe, translate, translate_models

    for command in (run, chat, models, doctor, serve, embed, image, image_models):
        cli.add_command(command)
    cli.add_command(rag)
    cli.add_command(eval_group)
    for command in (transcribe, speak, ocr, translate, translate_models):
        cli.add_command(command)
    from terminus.cli.node import node, peers, provide
    from terminus.cli.share import pull, share

    for command in (share, pull, node, provide, peers):
        cli.add_command(command)
    from terminus.cli.rpc import rpc

    cli.add_command(rpc)

    for command in (finetune, quantize, compare):
        cli.add_command(command)

    from terminus.cli.agent import agent
    from terminus.cli.mcp import mcp

    for command in (agent, mcp):
        cli.add_command(command)

    from terminus.cli.lifecycle import ps, stop

    for command in (ps, stop):
        cli.add_command(command)

    from terminus.cli.create import create
    from terminus.cli.hub import pull_image_model, search, show

    cli.add_command(create)
    models.add_command(search)
    models.add_command(show)
    image_models.add_command(pull_image_model)


_register()


def main() -> None:
    cli(prog_name="terminus")


if __name__ == "__main__":
    main()
