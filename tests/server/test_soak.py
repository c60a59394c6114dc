"""A short soak of a live server (bench/soak_server.py): mixed traffic, then no leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.real, pytest.mark.slow]

SOAK = Path(__file__).parents[2] / "bench" / "soak_server.py"


def test_short_soak_has_no_errors_and_no_leaks(tmp_path: Path, smollm2_gguf: Path) -> None:
    summary_path = tmp_path / "summary.json"
    command = [
        sys.executable, str(SOAK), "--duration", "25", "--clients", "3", "--tokens", "16",
        "--sample-every", "5", "--warmup", "5", "--json", str(summary_path),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert summary_path.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["unexpected"] == 0, summary["unexpected_samples"]
    assert summary["leaks"] == [], summary["leaks"]
    assert run.returncode == 0, run.stderr[-3000:]
    # every kind of traffic really ran, bad requests answered as they must
    assert set(summary["requests"]) >= {"stream", "chat", "embed", "bad"}, summary["requests"]
    assert summary["health_after"]["requests_in_flight"] == 0
    assert summary["busy_slots_after"] == 0
    assert summary["server_exit"] == 0
    assert len(summary["rss_samples"]) >= 5
    assert all(s["server_mb"] > 50 for s in summary["rss_samples"])
