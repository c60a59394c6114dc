"""``terminus quantize`` on the real SmolLM2: a progress bar on a terminal, one line in a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.real

TERMINUS = [sys.executable, "-m", "terminus.cli.main", "--offline"]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "TERMINUS_HOME": str(home), "TERMINUS_THREADS": "1", "TERM": "dumb"}


def test_quantize_in_a_pipe_prints_phases_and_json(adapt_home: Path) -> None:
    result = subprocess.run(
        [*TERMINUS, "quantize", "smollm2", "--type", "Q8_0", "--id", "smol-cli-q8", "--json"],
        capture_output=True,
        text=True,
        env=_env(adapt_home),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["id"] == "smol-cli-q8" and card["type"] == "Q8_0"
    assert card["base_model"] == "smollm2-135m-instruct" and card["size"] > 100_000_000
    phases = result.stderr.splitlines()
    assert any(line.startswith("quantizing to Q8_0 (") for line in phases), result.stderr
    assert "\r" not in result.stderr  # no bar redrawn into a log


def test_quantize_on_a_terminal_draws_a_bar(adapt_home: Path) -> None:
    args = [*TERMINUS, "quantize", "smollm2", "-q", "Q8_0", "--id", "smol-tty-q8"]
    child = pexpect.spawn(args[0], args[1:], env=_env(adapt_home), encoding="utf-8", timeout=300)
    child.expect(r"quantizing to Q8_0: +\d+%")  # tqdm's bar, redrawn as tensors are written
    child.expect_exact("quantizing to Q8_0: 100%")
    child.expect_exact("smol-tty-q8: smollm2-135m-instruct as Q8_0")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
