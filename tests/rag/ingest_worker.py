"""Ingest one big document slowly; ``test_rag_kill`` runs this in a subprocess and kills it.

Usage: python ingest_worker.py DOCUMENT PROGRESS_FILE. The embedding calls go through a
client wrapper that sleeps ``RAG_TEST_EMBED_DELAY`` seconds after each batch and writes
how many batches it has embedded to PROGRESS_FILE, so the test knows when the document's
transaction is open with rows written.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from terminus.client.sync import Terminus
from terminus.rag import Workspace


class SlowClient:
    def __init__(self, client: Terminus, delay: float, progress: Path) -> None:
        self.client, self.home, self.catalog = client, client.home, client.catalog
        self.delay, self.progress, self.calls = delay, progress, 0

    def embed(self, texts: Any, **kwargs: Any) -> Any:
        out = self.client.embed(texts, **kwargs)
        self.calls += 1
        self.progress.write_text(str(self.calls))
        time.sleep(self.delay)
        return out

    def completion(self, messages: Any, **kwargs: Any) -> Any:
        return self.client.completion(messages, **kwargs)


def main() -> None:
    document, progress = Path(sys.argv[1]), Path(sys.argv[2])
    delay = float(os.environ.get("RAG_TEST_EMBED_DELAY", "0.01"))
    with Terminus(memory_budget="1G") as client:
        ws = Workspace(SlowClient(client, delay, progress), "kill", batch_size=16)
        ws.ingest_text(
            document.read_text(), source="big.txt", chunking="tokens", chunk_size=8, overlap=0
        )
    progress.write_text("done")


if __name__ == "__main__":
    main()
