"""Entry point: global options, command groups, and error-to-exit-code mapping."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from terminus._version import __version__
from terminus.cli.context import CliState
from terminus.errors import TerminusError


class TerminusGroup(click.Group):
    """Turns Terminus errors into a one-line message and the error type's exit code.

    Commands are imported when first asked for (see ``COMMANDS``).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            command = _lazy_command(cmd_name)
            if command is None:
                return None
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

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


#: Every command, imported only when invoked (or listed by --help): `terminus run` then loads
#: what it needs, not the server, RAG, evaluation and peer stacks (~0.2 s of start-up).
COMMANDS = {
    "run": "terminus.cli.generate:run",
    "chat": "terminus.cli.chat:chat",
    "models": "terminus.cli.models:models",
    "doctor": "terminus.cli.doctor:doctor",
    "serve": "terminus.cli.serve:serve",
    "embed": "terminus.cli.embed:embed",
    "image": "terminus.cli.image:image",
    "image-models": "terminus.cli.image:image_models",
    "rag": "terminus.cli.rag:rag",
    "eval": "terminus.cli.eval:eval_group",
    "transcribe": "terminus.cli.speech:transcribe",
    "speak": "terminus.cli.speech:speak",
    "ocr": "terminus.cli.speech:ocr",
    "translate": "terminus.cli.speech:translate",
    "translate-models": "terminus.cli.speech:translate_models",
    "share": "terminus.cli.share:share",
    "pull": "terminus.cli.share:pull",
    "node": "terminus.cli.node:node",
    "provide": "terminus.cli.node:provide",
    "peers": "terminus.cli.node:peers",
    "rpc": "terminus.cli.rpc:rpc",
    "finetune": "terminus.cli.adapt:finetune",
    "quantize": "terminus.cli.adapt:quantize",
    "compare": "terminus.cli.adapt:compare",
    "agent": "terminus.cli.agent:agent",
    "mcp": "terminus.cli.mcp:mcp",
    "ps": "terminus.cli.lifecycle:ps",
    "stop": "terminus.cli.lifecycle:stop",
    "create": "terminus.cli.create:create",
}
#: Subcommands that live in another module than their group.
SUBCOMMANDS = {
    "models": ("terminus.cli.hub:search", "terminus.cli.hub:show"),
    "image-models": ("terminus.cli.hub:pull_image_model",),
}


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _lazy_command(name: str) -> click.Command | None:
    target = COMMANDS.get(name)
    if target is None:
        return None
    command: click.Command = _resolve(target)
    if isinstance(command, click.Group):
        for sub in SUBCOMMANDS.get(name, ()):
            command.add_command(_resolve(sub))
    return command


def main() -> None:
    cli(prog_name="terminus")


if __name__ == "__main__":  # python -m terminus.cli.main, as the `terminus` command
    from terminus.cli.early import prestart_for

    prestart_for(sys.argv[1:])
    main()
