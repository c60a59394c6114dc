"""Commands are imported when invoked: `terminus run` does not load the other stacks."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from terminus.cli.main import COMMANDS, cli


def _python(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (nothing imported yet)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_every_lazy_command_is_named_as_it_is_registered() -> None:
    import click

    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


def test_help_lists_every_command_and_an_unknown_one_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("run", "serve", "rag", "eval", "image-models", "translate-models", "rpc"):
        assert f"  {name} " in result.output
    wrong = CliRunner().invoke(cli, ["rnu"])
    assert wrong.exit_code == 2 and "No such command 'rnu'" in wrong.output


def test_run_help_imports_none_of_the_other_stacks() -> None:
    code = (
        "import sys\n"
        "from terminus.cli.main import cli\n"
        "try:\n"
        "    cli(['run', '--help'], prog_name='terminus')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('terminus.server', 'terminus.rag',\n"
        "         'terminus.eval', 'terminus.p2p', 'terminus.agents.peer', 'numpy'))]\n"
        "print('HEAVY', heavy)\n"
    )
    assert "HEAVY []" in _python(code)


def test_lazy_agent_names_are_the_objects_whichever_is_imported_first() -> None:
    code = (
        "import terminus.agents.peer_client, terminus.agents.mcp_client, "
        "terminus.agents.peer_host\n"
        "from terminus.agents import PeerTools, peer_tools, McpServer, OfferedTools\n"
        "import types\n"
        "names = (PeerTools, peer_tools, McpServer, OfferedTools)\n"
        "print('MODULES', [n for n in names if isinstance(n, types.ModuleType)])\n"
    )
    assert "MODULES []" in _python(code)
