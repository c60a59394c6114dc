"""A pool of two SmolLM2 providers (each `terminus provide` in its own process on 127.0.0.1):
greedy answers and evaluation items come out exactly as on one machine."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from p2pkit import TERMINUS, Processes, wait_for_file

from terminus import Terminus
from terminus.cli.main import cli
from terminus.p2p.identity import load_or_create_identity
from terminus.transports.pool import PoolTransport

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))
from realmodel import GREEDY, MODEL, make_client  # noqa: E402

pytestmark = pytest.mark.real

CONTEXT = 1024
DATA = Path(__file__).parents[1] / "data" / "medbench"
PROMPTS = [
    "Name three colors of the rainbow.",
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Count from one to five.",
]


@pytest.fixture
def consumer_home(tmp_path: Path) -> Path:
    return tmp_path / "consumer"


@pytest.fixture
def pool_refs(
    procs: Processes, tmp_path: Path, consumer_home: Path, smollm2_gguf: Path
) -> Iterator[list[str]]:
    key = load_or_create_identity(consumer_home).node_id
    started = []
    for name in ("p1", "p2"):
        ref_file = tmp_path / f"{name}.ref"
        proc = procs.start(
            [*TERMINUS, "--offline", "provide", "--model", MODEL, "--allow", key,
             "--context-length", str(CONTEXT), "--parallel", "1",
             "--listen", "127.0.0.1:0", "--ref-file", str(ref_file)],
            tmp_path / name,
            name,
        )  # fmt: skip
        started.append((ref_file, proc))
    yield [wait_for_file(ref_file, proc, timeout=180) for ref_file, proc in started]


def _answer(client: Terminus, prompt: str) -> str:
    return client.completion(
        prompt, model=MODEL, max_tokens=16, cache_prompt=False, repeat_penalty=1.0, **GREEDY
    ).text


def test_pool_answers_equal_local_greedy_answers(
    pool_refs: list[str], consumer_home: Path, tmp_path: Path
) -> None:
    with make_client(tmp_path / "local") as local:
        local.load_model(MODEL, context_length=CONTEXT, parallel=1, threads=1)
        expected = [_answer(local, p) for p in PROMPTS]
    with Terminus(home=consumer_home, delegate=pool_refs) as pooled:
        with ThreadPoolExecutor(len(PROMPTS)) as workers:
            got = list(workers.map(lambda p: _answer(pooled, p), PROMPTS))
        pool = pooled.transport
        assert isinstance(pool, PoolTransport)
        assert all(m.routed >= 1 for m in pool.members)  # both providers took work
    assert got == expected
    assert all(text.strip() for text in got)


def test_eval_run_sharded_over_the_pool_scores_items_as_one_machine(
    pool_refs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loglikelihood items one at a time per provider: the same numbers as a local run."""
    common = ["eval", "run", "-m", MODEL, "-b", "medqa", "--mode", "loglikelihood",
              "--limit", "4", "--data-dir", str(DATA), "--parallel", "1", "--threads", "1"]  # fmt: skip
    runner = CliRunner()
    monkeypatch.setenv("TERMINUS_HOME", str(tmp_path / "local-home"))
    local = runner.invoke(cli, [*common, "--out", str(tmp_path / "local"), "--json"])
    assert local.exit_code == 0, local.output
    monkeypatch.setenv("TERMINUS_HOME", str(tmp_path / "consumer"))
    peers = [f"--peer={ref}" for ref in pool_refs]
    pooled = runner.invoke(cli, [*common, *peers, "--out", str(tmp_path / "pool"), "--json"])
    assert pooled.exit_code == 0, pooled.output
    assert json.loads(pooled.stdout)["benchmarks"]["medqa"]["n"] == 4

    from terminus.eval.report import load_run

    here = load_run(tmp_path / "local").rows["medqa"]
    there = load_run(tmp_path / "pool").rows["medqa"]
    assert here.keys() == there.keys() and len(here) == 4
    for item, row in here.items():
        assert there[item]["predicted"] == row["predicted"]
        assert there[item]["logprobs"].keys() == row["logprobs"].keys()
        for letter, value in row["logprobs"].items():
            assert there[item]["logprobs"][letter] == pytest.approx(value, abs=1e-4)
