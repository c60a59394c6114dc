"""KV snapshots of a long shared prefix on disk, with real SmolLM2: a restarted model
restores the snapshot (counted, not timed) and answers the same; a tampered or
mismatched snapshot is refused and the answer is still right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from realmodel import GREEDY, MODEL, llama_threads, make_client

pytestmark = pytest.mark.real

FACTS = " ".join(f"Fact {i}: the code word for item {i} is w{i * 7 % 101}." for i in range(40))
SYSTEM = "You answer from these facts only.\n" + FACTS  # ~700 tokens, over MIN_PROMPT_TOKENS


def _ask(home: Path, question: str, times: int = 1) -> tuple[list[str], dict[str, int], list[Path]]:
    """``times`` answers in one process, the snapshot counters, the snapshots' metadata."""
    with make_client(home) as client:
        client.load_model(
            MODEL, context_length=2048, parallel=1, threads=llama_threads(), kv_disk_cache=True
        )
        texts = []
        for _ in range(times):
            result = client.completion(
                question, model=MODEL, system=SYSTEM, max_tokens=16, **GREEDY
            )
            texts.append(result.result().text)
        with client.manager.use(MODEL) as model:
            cache: Any = model.kv_cache  # type: ignore[attr-defined]
            stats = dict(cache.stats)
            metas = sorted(cache.folder.glob("*.json"))
    return texts, stats, metas


QUESTION = "What is the code word for item 5?"


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, list[Path]]:
    """A model asked twice: cold, then from llama.cpp's in-memory state of the first."""
    home = tmp_path_factory.mktemp("terminus-kv")
    (cold, warm), stats, metas = _ask(home, QUESTION, times=2)
    assert stats["saved"] == 1 and stats["restored"] == 0  # saved after the first request
    assert len(metas) == 1
    return home, cold, warm, metas


def test_a_restarted_model_restores_the_prefix(
    first: tuple[Path, str, str, list[Path]],
) -> None:
    """The restored state is the one the first process held: the same greedy answer as a
    second request there (a cached prompt is not bit-identical to a cold one in llama.cpp:
    the tail runs in a smaller batch)."""
    home, cold, warm, _ = first
    (again,), stats, _ = _ask(home, QUESTION)
    assert stats["restored"] == 1 and stats["refused"] == 0 and stats["saved"] == 0
    assert again == warm


def test_a_tampered_snapshot_is_refused(first: tuple[Path, str, str, list[Path]]) -> None:
    home, text, _, metas = first
    meta = json.loads(metas[0].read_text())
    data = metas[0].parent / meta["file"]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte in the KV state
    data.write_bytes(bytes(raw))
    (again,), stats, metas_after = _ask(home, QUESTION)
    assert stats["refused"] == 1 and stats["restored"] == 0
    assert stats["saved"] == 1 and len(metas_after) == 1  # computed afresh, saved again
    assert again == text


def test_a_snapshot_of_another_model_is_refused(
    first: tuple[Path, str, str, list[Path]],
) -> None:
    home, text, _, _ = first
    folder = next((home / "kv").iterdir())  # the tampered test left a fresh valid snapshot
    meta_path = next(folder.glob("*.json"))
    meta = json.loads(meta_path.read_text())
    meta["model_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    (again,), stats, _ = _ask(home, QUESTION)
    assert stats["refused"] == 1 and stats["restored"] == 0
    assert again == text
