"""Real SmolLM2 for fine-tuning and quantization tests: one home per session.

torch and llama.cpp each get at most two threads (the machine is shared).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminus import Terminus

THREADS = 2
DATA = Path(__file__).parent.parent / "data" / "pubmedqa_pqal_first200.json"


@pytest.fixture(scope="session")
def adapt_home(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("terminus-adapt")
    yield home
    shutil.rmtree(home, ignore_errors=True)  # F32 and quantized copies: ~1 GB


@pytest.fixture(scope="session")
def adapt_client(adapt_home: Path) -> Iterator[Terminus]:
    client = Terminus(home=adapt_home, allow_download=False, memory_budget="4G")
    yield client
    client.close()


def pubmed_text(first: int, last: int) -> str:
    """Abstract text (MIT-licensed PubMedQA sample kept in tests/data) for calibration/scoring."""
    items = list(json.loads(DATA.read_text(encoding="utf-8")).values())
    return "\n\n".join(" ".join(item["CONTEXTS"]) for item in items[first:last])
