"""The benches that compare Terminus with raw llama.cpp give both sides the same request:
the raw scripts' bodies are checked against the body Terminus builds for the same call."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from terminus import Terminus
from terminus.engines.llamacpp import LlamaCppChatModel

BENCH = Path(__file__).resolve().parents[2] / "bench"
SAMPLING_KEYS = ("temperature", "top_p", "repeat_penalty", "seed", "max_tokens")


@pytest.fixture
def bench_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


def terminus_body(home: Path, prompt: str, **kwargs: Any) -> dict[str, Any]:
    """The body `terminus run` / ``client.completion`` sends llama.cpp (no model loaded)."""
    with Terminus(home=home, allow_download=False) as client:
        card = client.models.get("smollm2")
        request = client.chat_request(prompt, model=card.id, **kwargs)
    model = LlamaCppChatModel(card, None, 2048, 1, 0)
    return model.build_body(request)[0]


def test_resident_bench_raw_body_matches_terminus_run(tmp_path: Path, bench_modules: None) -> None:
    import bench_resident

    with Terminus(home=tmp_path, allow_download=False) as client:
        card = client.models.get("smollm2")
    script = bench_resident.RAW.format(
        context=1024, threads=1, tokens=16, system=bench_resident.SYSTEM,
        prompt=bench_resident.PROMPT, top_p=card.defaults.get("top_p", 1.0),
        repeat_penalty=card.defaults.get("repeat_penalty", 1.0),
    )  # fmt: skip
    found = re.search(r"^body = (\{.*?\})$", script, re.S | re.M)
    assert found is not None
    raw = ast.literal_eval(found.group(1))
    ours = terminus_body(tmp_path, bench_resident.PROMPT, temperature=0, seed=1, max_tokens=16)
    assert {k: raw.get(k) for k in SAMPLING_KEYS} == {k: ours.get(k) for k in SAMPLING_KEYS}
    assert raw["messages"] == ours["messages"]


def test_llm_bench_cold_start_script_takes_the_terminus_body(bench_modules: None) -> None:
    import bench_llm

    # The raw cold-start script sends exactly the body it is given (built by Terminus).
    assert "handle_chat_completions(json.loads(sys.argv[3])" in bench_llm.RAW_COLD
