"""``terminus agent`` and ``terminus mcp``: bad input gives a message and an exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from terminus.cli.main import cli
from terminus.errors import InvalidParameterError, ToolServerError


def test_a_bad_tool_spec_is_refused() -> None:
    out = CliRunner().invoke(cli, ["agent", "hi", "--tool", "no_colon_here"])
    assert out.exit_code == InvalidParameterError.exit_code
    assert "module:function" in out.stderr


def test_a_missing_tool_module_is_refused() -> None:
    out = CliRunner().invoke(cli, ["agent", "hi", "--tool", "no_such_module_xyz:f"])
    assert out.exit_code == InvalidParameterError.exit_code
    assert "cannot import no_such_module_xyz" in out.stderr


def test_an_mcp_server_that_cannot_start_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "dies.py"
    script.write_text("import sys; sys.exit('bad token')\n")
    out = CliRunner().invoke(cli, ["agent", "hi", "--mcp", f"{sys.executable} {script}"])
    assert out.exit_code == ToolServerError.exit_code
    assert "bad token" in out.stderr


def test_mcp_http_refuses_a_public_address() -> None:
    out = CliRunner().invoke(cli, ["mcp", "--transport", "http", "--host", "0.0.0.0"])
    assert out.exit_code == InvalidParameterError.exit_code
    assert "loopback only" in out.stderr


def test_provide_needs_something_named_and_someone_allowed(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    nothing = CliRunner().invoke(cli, [*home, "provide"])
    assert nothing.exit_code == 2 and "--model, --tool, --mcp or --rpc" in nothing.stderr
    nobody = CliRunner().invoke(cli, [*home, "provide", "--tool", "os:getcwd"])
    assert nobody.exit_code == 2 and "--allow KEY" in nobody.stderr


def test_serve_tool_servers_need_a_label(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["--home", str(tmp_path), "serve", "--mcp", "python x.py"])
    assert out.exit_code == 2 and "LABEL=COMMAND" in out.stderr
