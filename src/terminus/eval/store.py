"""Per-item results, appended as JSON lines and fsynced, so an interrupted run resumes.

Every line carries the key of the run configuration it belongs to; a run skips
the items already stored under its own key and ignores lines from other configs.
A torn last line (a crash mid-write) is ignored on reading.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"


def config_key(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class ResultStore:
    def __init__(self, run_dir: Path, key: str, filename: str = RESULTS_FILE) -> None:
        self.path = run_dir / filename
        self.key = key
        self._lock = threading.Lock()
        run_dir.mkdir(parents=True, exist_ok=True)

    def done(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(benchmark, item id) → stored result, for this configuration."""
        return {
            (r["benchmark"], r["id"]): r for r in read_results(self.path) if r["key"] == self.key
        }

    def append(self, result: dict[str, Any]) -> None:
        line = json.dumps({"key": self.key, **result}, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a+b") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a torn line from a crash: end it, don't extend it
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line torn by a crash: that item simply runs again
    return rows
