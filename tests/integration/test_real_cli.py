"""The CLI on the real SmolLM2, driven as a person would: a terminal for ``chat``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.real

TERMINUS = [sys.executable, "-m", "terminus.cli.main", "--offline"]
CHAT = [*TERMINUS, "chat", "-m", "smollm2", "-t", "0", "--seed", "42", "-n", "32"]
PROMPT = ">>> "


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TERMINUS_HOME": str(home), "TERMINUS_THREADS": "1", "TERM": "dumb"})
    return env


def spawn(home: Path, args: list[str]) -> pexpect.spawn:
    return pexpect.spawn(
        args[0], args[1:], env=env_for(home), encoding="utf-8", timeout=180, dimensions=(50, 200)
    )


def command(child: pexpect.spawn, line: str, *expected: str) -> str:
    """Send a line, wait for each expected text and the next prompt; what came before it."""
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect_exact(PROMPT)
    return str(child.before)


def test_chat_repl_in_a_terminal(real_home: Path) -> None:
    child = spawn(real_home, CHAT)
    child.expect_exact(PROMPT)
    command(child, "/help", "/save NAME", "/bye")
    command(child, "/what", "unknown command /what")
    command(child, "/set system You are a helpful assistant. Answer in one sentence.",
            "system prompt set")  # fmt: skip
    answer = command(child, "What is the capital of France?")
    assert "Paris" in answer
    command(child, "/show", "smollm2-135m-instruct", "llamacpp", "temperature", "0.0")
    command(child, "/save geography", "saved 2 message(s) as geography")
    child.sendline('"""Repeat after me:')
    child.expect_exact("... ")
    child.sendline('blue sky"""')
    child.expect_exact(PROMPT)
    command(child, "/clear", "conversation cleared")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (real_home / "chat_history").stat().st_mode & 0o077 == 0  # private to the user
    history = (real_home / "chat_history").read_text()
    assert "What is the capital of France?" in history

    # A new run continues the saved conversation, and remembers what was typed before.
    child = spawn(real_home, CHAT)
    child.expect_exact(PROMPT)
    command(child, "/load geography", "loaded geography: 2 message(s)")
    shown = command(child, "/show history")
    assert "user: What is the capital of France?" in shown and "Paris" in shown
    child.send("\x1b[A")  # the up arrow: the line typed last, in this run
    child.send("\r")
    child.expect_exact("user: What is the capital of France?")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = spawn(real_home, CHAT)
    child.expect_exact(PROMPT)
    for _ in range(2):  # back past "/show history" (kept once), to the last run's /load
        child.send("\x1b[A")
    child.send("\r")
    child.expect_exact("loaded geography: 2 message(s)")
    child.expect_exact(PROMPT)
    child.sendline("/bye")
    child.expect(pexpect.EOF)


def test_a_base_model_is_refused_before_it_loads(real_home: Path) -> None:
    result = subprocess.run(
        [*TERMINUS, "chat", "-m", "gemma-3-270m"],
        input="hello\n",
        capture_output=True,
        text=True,
        env=env_for(real_home),
        timeout=60,
        check=False,
    )
    assert result.returncode == 9
    assert "gemma-3-270m is a base model" in result.stderr
    assert 'terminus run -m gemma-3-270m "Once upon a time"' in result.stderr


def test_context_overflow_reports_the_context_asked_for(real_home: Path) -> None:
    prompt = "The quick brown fox jumps over the lazy dog. " * 30
    result = subprocess.run(
        [*TERMINUS, "run", "-m", "smollm2", "--context-length", "64", prompt],
        capture_output=True,
        text=True,
        env=env_for(real_home),
        timeout=120,
        check=False,
    )
    assert result.returncode == 8
    assert "the context is 64 tokens per request" in result.stderr
    assert "the context holds 256" not in result.stderr


def test_models_info_lines_up_on_a_real_gguf(real_home: Path) -> None:
    subprocess.run([*TERMINUS, "models", "pull", "smollm2"], env=env_for(real_home), check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    result = subprocess.run(
        [*TERMINUS, "models", "info", "smollm2"],
        capture_output=True,
        text=True,
        env=env_for(real_home),
        timeout=60,
        check=True,
    )
    rows = [re.match(r"^  (\S+)( +)(\S.*)$", row) for row in result.stdout.splitlines()[1:]]
    assert all(rows), result.stdout
    values = {m.group(1): m.group(3) for m in rows if m}
    assert values["gguf.architecture"] == "llama"  # not "gguf.architecturellama"
    assert values["gguf.has_chat_template"] == "True"
    starts = {m.start(3) for m in rows if m}
    assert len(starts) == 1, result.stdout  # every value starts in the same column


def test_ctrl_c_stops_the_answer_and_keeps_the_session(real_home: Path) -> None:
    child = spawn(real_home, [*TERMINUS, "chat", "-m", "smollm2", "-n", "400"])
    child.expect_exact(PROMPT)
    child.sendline("Write a very long story about a dragon and a knight.")
    child.expect_exact("knight.\r\n")  # the terminal's echo of the line
    child.expect(r"\w+ \w+ \w+")  # the answer has begun
    child.sendintr()
    child.expect_exact("[stopped]")
    child.expect_exact(PROMPT)
    shown = command(child, "/show history")
    assert "user: Write a very long story" in shown
    assert "\r\nassistant: " in shown  # the partial answer stays in the conversation
    child.sendintr()  # at the prompt: a fresh line, not the end
    child.expect_exact(PROMPT)
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_second_run_adopts_the_worker_that_began_loading_ahead(tmp_path: Path) -> None:
    """`terminus run` records its load; the next run of that model starts loading it before its
    own imports, and uses that worker only when the settings are exactly the same."""
    home = tmp_path / "home"
    terminus = [
        sys.executable,
        "-m",
        "terminus.cli.main",
        "-v",
        "--offline",
        "run",
        "-m",
        "smollm2",
    ]
    ask = ["-n", "6", "-t", "0", "What is the capital of France?"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*terminus, *extra, *ask], env=env_for(home), capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out

    first = run()
    assert "loading it ahead" not in first.stderr
    hint = (home / "cli" / "run-hint.json").read_text()
    assert "smollm2" in hint and "api_keys" not in hint  # the worker's key is never written
    second = run()
    assert "using the worker that began loading it ahead" in second.stderr
    assert second.stdout == first.stdout  # the same greedy answer
    # other settings for the same model: the early worker is discarded, the answer is the same
    third = run("--context-length", "512")
    assert "loading it ahead" not in third.stderr and third.stdout == first.stdout
