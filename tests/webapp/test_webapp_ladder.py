"""A ladder written under the server's home shows on the Evaluation page in Chromium:
its table, paired deltas and baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakecards import fake_card
from webkit import LiveServer, shot

from terminus import Terminus
from terminus.eval.ladder import ladders_root, run_ladder
from terminus.eval.runner import RunConfig

pytestmark = pytest.mark.real
DATA = Path(__file__).parents[1] / "data" / "medbench"


def test_a_ladder_shows_on_the_evaluation_page(
    page: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    with Terminus(home=tmp_path / "home", memory_budget="1G", allow_download=False) as client:
        for name, reply in (("answers-a", "Answer: A"), ("answers-a-q4-0", "Answer: B")):
            client.catalog.register(fake_card(tmp_path / "w", name, replies=[reply]))
        config = RunConfig(("medqa", "mmlu_medical"), mode="generative", limit=6, max_tokens=8)
        run_ladder(client, ["answers-a"], ["Q4_0"], config,
                   ladders_root(live_server.home) / "browser-demo", data_dir=DATA, parallel=1)  # fmt: skip
    page.goto(live_server.url + "/#eval")
    page.locator("[data-ladder='browser-demo']").click()
    table = page.locator("#eval-ladder #ladder-table")
    table.wait_for()
    header = table.locator("th").all_inner_texts()
    assert header[:5] == ["model", "parameters", "quantization", "medqa", "mmlu_medical"]
    assert "answers-a-q4-0 − answers-a" in page.inner_text("#eval-ladder #ladder-deltas")
    assert "⚠ answered A on 6/6" in page.inner_text("#eval-ladder #ladder-baselines")
    shot(page, "eval-ladder")
