"""Every README code block runs as printed, on the real models.

Python blocks run in a subprocess, bash blocks in ``bash -e``, each in a sandbox: its own
``TERMINUS_HOME``, ``HOME`` holding ``~/notes/`` (for the RAG examples) and a working
folder holding ``receipt.png`` (for OCR). ``pip install`` lines are left out (the test
environment has every extra; pip would need the network). A block that cannot run here is
marked in the README, just above it, with ``<!-- readme-test: skip: why -->``; a block
marked ``<!-- readme-test: server: MODEL... -->`` runs against ``terminus serve`` started
for it on a free port (the printed 8080 is swapped for that port).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.real

README = Path(__file__).resolve().parents[2] / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!-- readme-test: (skip|server): (.*) -->$")
BLOCK_TIMEOUT_S = 600
LAUNCH_NOTE = (
    "# Launch plan\n\nThe launch window opens on 14 March at 09:30 UTC and lasts 40 minutes.\n"
)


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    marker: str = ""  # "skip" or "server"
    detail: str = ""

    @property
    def name(self) -> str:
        return f"README.md:{self.line}-{self.language}"


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened or not opened.group(1):
            i += 1
            continue
        marker = _MARKER.match(lines[i - 1]) if i else None
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        blocks.append(
            Block(
                line=i + 1,
                language=opened.group(1),
                code="\n".join(lines[i + 1 : end]) + "\n",
                marker=marker.group(1) if marker else "",
                detail=marker.group(2) if marker else "",
            )
        )
        i = end + 1
    return blocks


BLOCKS = [b for b in readme_blocks(README.read_text()) if b.language in ("python", "bash")]


def test_the_readme_has_runnable_blocks_and_says_why_others_are_skipped() -> None:
    assert len([b for b in BLOCKS if b.marker != "skip"]) >= 6
    for block in BLOCKS:
        assert block.marker != "skip" or len(block.detail) > 10, block.name  # a reason


@dataclass(frozen=True)
class Sandbox:
    root: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    from PIL import Image, ImageDraw, ImageFont

    root = tmp_path_factory.mktemp("readme")
    (root / "home" / "notes").mkdir(parents=True)
    (root / "home" / "notes" / "launch.md").write_text(LAUNCH_NOTE)
    (root / "work").mkdir()
    face = ImageFont.load_default(size=40)
    image = Image.new("L", (640, 120), 255)
    ImageDraw.Draw(image).text((30, 30), "TOTAL 12.50 EUR", font=face, fill=0)
    image.save(root / "work" / "receipt.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        HOME=str(root / "home"),
        TERMINUS_HOME=str(root / "terminus-home"),  # shared: models are imported once
        TERMINUS_OFFLINE="1",
        TERMINUS_THREADS=os.environ.get("TERMINUS_TEST_THREADS", "1"),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )
    return Sandbox(root, env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_for(sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[int]:
    """``terminus serve`` with the block's models, on a free port; yields the port."""
    block: Block = request.param
    if block.marker != "server":
        yield 0
        return
    port = _free_port()
    models = [arg for name in block.detail.split() for arg in ("-m", name)]
    log = sandbox.root / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["terminus", "serve", "--port", str(port), *models],
            env=sandbox.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"not ready:\n{log.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _run(block: Block, sandbox: Sandbox, port: int) -> subprocess.CompletedProcess[str]:
    code = block.code.replace("127.0.0.1:8080", f"127.0.0.1:{port}") if port else block.code
    work = sandbox.root / "work"
    if block.language == "python":
        script = work / f"block_{block.line}.py"
        script.write_text(code)
        command = [sys.executable, str(script)]
    else:
        kept = [line for line in code.splitlines() if not line.startswith("pip install")]
        command = ["bash", "-euo", "pipefail", "-c", "\n".join(kept)]
    return subprocess.run(
        command,
        cwd=work,
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )


RUNNABLE = [b for b in BLOCKS if b.marker != "skip"]


@pytest.mark.parametrize("server_for", RUNNABLE, ids=[b.name for b in RUNNABLE], indirect=True)
def test_readme_block_runs_as_printed(sandbox: Sandbox, server_for: int, request: Any) -> None:
    block: Block = request.node.callspec.params["server_for"]
    if shutil.which("terminus", path=sandbox.env["PATH"]) is None:
        pytest.fail("the terminus command is not installed next to this Python")
    result = _run(block, sandbox, server_for)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.name} failed:\n{block.code}\n---\n{output}"
    assert result.stdout.strip(), f"{block.name} printed nothing:\n{output}"
    if "get_weather" in block.code:  # the tool round trip ends in words, not in a call
        assert '"name": "get_weather"' not in result.stdout, result.stdout
    if "rag ask" in block.code or "ws.ask" in block.code:
        assert any(fact in result.stdout for fact in ("09:30", "14 March", "40 minutes")), output
