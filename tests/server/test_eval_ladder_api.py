"""Ladders in the web app's API: listed, their tables as data, the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakecards import fake_card
from serverkit import assert_error, running

from terminus.client.sync import Terminus
from terminus.eval.ladder import ladders_root, run_ladder
from terminus.eval.runner import RunConfig

DATA = Path(__file__).parents[1] / "data" / "medbench"


async def test_a_ladder_is_listed_and_shown(
    fake_client: Terminus, make_app: Any, tmp_path: Path
) -> None:
    for name, reply in (("lad-a", "Answer: A"), ("lad-a-q4-0", "Answer: B")):
        fake_client.catalog.register(fake_card(tmp_path / "w", name, replies=[reply]))
    config = RunConfig(("medqa",), mode="generative", limit=5, max_tokens=8)
    out = ladders_root(fake_client.home) / "demo"
    run_ladder(fake_client, ["lad-a"], ["Q4_0"], config, out, data_dir=DATA, parallel=1)
    async with running(make_app()) as api:
        listed = (await api.get("/terminus/v1/eval/ladders")).json()["data"]
        assert [(row["name"], row["models"]) for row in listed] == [
            ("demo", ["lad-a", "lad-a-q4-0"])
        ]
        view = (await api.get("/terminus/v1/eval/ladders/demo")).json()
        tables = {section["id"]: section["rows"] for section in view["sections"]}
        assert tables["ladder-table"][0][:4] == ["model", "parameters", "quantization", "medqa"]
        assert [row[0] for row in tables["ladder-table"][1:]] == ["lad-a", "lad-a-q4-0"]
        assert tables["ladder-deltas"][1][0] == "lad-a-q4-0 − lad-a"
        page = await api.get("/terminus/v1/eval/ladders/demo/report.html")
        assert page.status_code == 200 and 'id="ladder-deltas"' in page.text
        assert "script-src 'none'" in page.headers["content-security-policy"]
        assert_error(await api.get("/terminus/v1/eval/ladders/nosuch"), 404)
        assert_error(await api.get("/terminus/v1/eval/ladders/..%2F..%2Fetc/report.html"), 404)
