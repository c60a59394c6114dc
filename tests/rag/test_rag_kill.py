"""SIGKILL mid-ingest: the workspace is exactly as it was before that document."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ragkit import FRUIT, GUIDE, TAX, fake_card, save_cards

from terminus.client.sync import Terminus
from terminus.rag import Workspace

WORKER = Path(__file__).with_name("ingest_worker.py")
CHUNKS = 4000  # 8 words each: 250 batches of 16
KILL_AFTER = 120  # batches embedded (so ~119 batches of rows are in the open transaction)
QUERIES = ("apples", "tax returns", "install terminus", "word1234 word77")


def _observe(ws: Workspace) -> tuple[Any, ...]:
    searches = [
        [(r.chunk_id, r.document_id, round(r.score, 6)) for r in ws.search(q, top_k=8)]
        for q in QUERIES
    ]
    documents = [(d.id, d.source, d.chunks) for d in ws.documents()]
    return ws.store.counts(), documents, searches


def _wait_for(progress: Path, process: subprocess.Popen[bytes], batches: int, err: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, err.read_text()
        text = progress.read_text() if progress.exists() else ""
        assert text != "done", "the worker finished before it could be killed"
        if text.isdigit() and int(text) >= batches:
            return int(text)
        time.sleep(0.005)
    raise AssertionError("the worker never got far enough")


def test_sigkill_mid_document_leaves_the_workspace_as_before(
    client: Terminus, isolated_home: Path, tmp_path: Path
) -> None:
    save_cards(isolated_home, [fake_card(tmp_path / "w", "fake-embed-384", capability="embed", dimensions=384)])  # fmt: skip
    client.catalog.register(client.catalog.get("fake-embed-384"))
    with Workspace(client, "kill", model="fake-embed-384") as ws:
        ws.ingest_text(FRUIT, source="fruit.txt")
        ws.ingest_text(TAX, source="tax.txt")
        ws.ingest_text(GUIDE, source="guide.md", kind="markdown")
        before = _observe(ws)
    wal = isolated_home / "rag" / "kill" / "workspace.sqlite3-wal"
    wal_before = wal.stat().st_size if wal.exists() else 0

    big = tmp_path / "big.txt"
    big.write_text(" ".join(f"word{i}" for i in range(CHUNKS * 8)))
    progress, err = tmp_path / "progress", tmp_path / "worker.err"
    with err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(WORKER), str(big), str(progress)],
            env={**os.environ, "RAG_TEST_EMBED_DELAY": "0.01"},
            stderr=stderr,
        )
    try:
        reached = _wait_for(progress, process, KILL_AFTER, err)
        # Pages of the open transaction have spilled into the WAL: the kill lands mid-write.
        assert wal.stat().st_size > wal_before + 1_000_000
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert KILL_AFTER <= reached < CHUNKS // 16

    with Workspace(client, "kill") as ws:
        assert _observe(ws) == before
        db = sqlite3.connect(ws.store.path)  # type: ignore[attr-defined]
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("INSERT INTO chunk_fts(chunk_fts) VALUES ('integrity-check')")
        db.close()
        # No trace of the killed document: ingesting it again adds it whole.
        result = ws.ingest_text(
            big.read_text(), source="big.txt", chunking="tokens", chunk_size=8, overlap=0
        )
        assert (result.status, result.chunks) == ("added", CHUNKS)
        assert ws.store.counts() == (before[0][0] + 1, before[0][1] + CHUNKS)
