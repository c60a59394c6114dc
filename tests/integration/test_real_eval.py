"""The evaluation harness on the real SmolLM2: every local benchmark, both scoring modes.

SmolLM2-135M scores near chance on these exams; the tests check that runs complete,
that every number in the report is derived from real model output, and that the
log-probabilities the harness reads are llama.cpp's own.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from realmodel import MODEL

from terminus import Terminus
from terminus.cli.main import cli
from terminus.eval.api import evaluate
from terminus.eval.backends import ClientBackend, Generation
from terminus.eval.datasets import load_benchmark
from terminus.eval.prompts import loglikelihood_prompt
from terminus.eval.runner import RunConfig

pytestmark = pytest.mark.real
DATA = Path(__file__).parents[1] / "data" / "medbench"
LOCAL = ("medqa", "pubmedqa", "mmlu_medical", "medxpertqa")


def test_loglikelihood_run_on_every_local_benchmark(client: Terminus, tmp_path: Path) -> None:
    config = RunConfig(LOCAL, mode="loglikelihood", limit=3, seed=0)
    backend = ClientBackend(client, MODEL, parallel=4)
    run_dir, summary = evaluate(
        client, MODEL, config, data_dir=DATA, run_dir=tmp_path, backend=backend
    )
    assert (
        summary["model"]["sha256"]
        == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    )
    assert summary["model"]["quantization"] == "Q4_1"
    for name in LOCAL:
        bench = summary["benchmarks"][name]
        assert bench["n"] == 3 and bench["prompt_tokens"] > 3 * 20
        assert 0.0 <= bench["accuracy"] <= 1.0 and bench["ci95"][0] <= bench["accuracy"]
    from terminus.eval.report import load_run

    for name, rows in load_run(run_dir).rows.items():
        for row in rows.values():
            logprobs = row["logprobs"]
            if name != "pubmedqa":  # option letters are always among the 100 most likely
                assert row["parsed"] and len(logprobs) >= 1
            assert all(v <= 0 for v in logprobs.values())
            assert sum(math.exp(v) for v in logprobs.values()) <= 1.0 + 1e-6
            if logprobs:
                assert row["predicted"] == max(logprobs, key=logprobs.get)
    assert summary["mean_accuracy"] == pytest.approx(
        sum(summary["benchmarks"][n]["accuracy"] for n in LOCAL) / 4
    )
    assert (run_dir / "report.png").stat().st_size > 1000


def test_option_logprobs_are_llama_cpps_own(client: Terminus, tmp_path: Path) -> None:
    """One at a time, each item gets exactly the numbers a lone fresh llama.cpp request gets.

    (With several items in flight, llama.cpp's batched prompt processing moves them by up to
    ~0.4 nats on this model, raw llama.cpp alike: docs/eval.md.)
    """
    config = RunConfig(("medqa",), mode="loglikelihood", limit=4, seed=1)
    evaluate(client, MODEL, config, data_dir=DATA, run_dir=tmp_path,
             backend=ClientBackend(client, MODEL, parallel=1))  # fmt: skip
    from terminus.eval.report import load_run

    items = {i.id: i for i in load_benchmark("medqa", DATA, DATA, allow_download=False).items}
    for row in load_run(tmp_path).rows["medqa"].values():
        prompt = loglikelihood_prompt("medqa", items[row["id"]])
        with client.manager.use(MODEL) as model:
            raw = model.server.handle_completions(  # type: ignore[attr-defined]
                {"prompt": prompt, "max_tokens": 1, "temperature": 0, "n_probs": 100,
                 "cache_prompt": False}
            )  # fmt: skip
        top = raw["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        expected = {
            t["token"].strip(): t["logprob"] for t in top if t["token"] in (" A", " B", " C", " D")
        }
        assert row["logprobs"].keys() == expected.keys()
        for letter, value in expected.items():
            assert row["logprobs"][letter] == pytest.approx(value, abs=1e-4)


def test_generative_run_extracts_or_counts_unparsed(client: Terminus, tmp_path: Path) -> None:
    config = RunConfig(LOCAL, mode="generative", limit=2, seed=0, max_tokens=12)
    _, summary = evaluate(
        client, MODEL, config, data_dir=DATA, run_dir=tmp_path, backend=ClientBackend(client, MODEL)
    )
    from terminus.eval.report import load_run

    for name in LOCAL:
        bench = summary["benchmarks"][name]
        assert bench["n"] == 2 and 0 < bench["completion_tokens"] <= 2 * 12
        assert bench["correct"] + bench["unparsed"] <= 2
    rows = [r for rows in load_run(tmp_path).rows.values() for r in rows.values()]
    assert all(r["response"] for r in rows)  # real answers were stored for reading later
    assert all((r["predicted"] is None) == (not r["parsed"]) for r in rows)


def test_cli_eval_run(real_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERMINUS_HOME", str(real_home))
    runner = CliRunner()
    out = runner.invoke(
        cli,
        ["--offline", "--memory-budget", "2G", "eval", "run", "-m", MODEL, "-b", "medqa,pubmedqa",
         "--data-dir", str(DATA), "--limit", "1", "--parallel", "2", "--threads", "1",
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "| medqa |" in out.output and "| pubmedqa |" in out.output
    assert (tmp_path / "run" / "report.md").read_text().count("| medqa |") == 1


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_openai_compatible_endpoint(real_home: Path, tmp_path: Path) -> None:
    """`terminus serve` stands in for any OpenAI-compatible server on 127.0.0.1."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from terminus.eval.backends import OpenAIBackend

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=str(real_home), TERMINUS_OFFLINE="1", TERMINUS_MEMORY_BUDGET="2G")
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port), "--model", MODEL,
         "--context-length", "1024", "--parallel", "2", "--threads", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        backend = OpenAIBackend(f"{url}/v1", MODEL, parallel=2)
        config = RunConfig(("medqa",), mode="generative", limit=2, max_tokens=12)
        with Terminus(home=real_home, allow_download=False) as client:
            _, summary = evaluate(
                client, MODEL, config, data_dir=DATA, run_dir=tmp_path / "run", backend=backend
            )
        medqa = summary["benchmarks"]["medqa"]
        assert (
            medqa["n"] == 2
            and 0 < medqa["completion_tokens"] <= 24
            and medqa["prompt_tokens"] > 100
        )
        assert summary["model"] == {"model": MODEL, "backend": "openai", "base_url": f"{url}/v1"}
        # terminus serve returns log-probabilities: a model behind it can be scored that way
        scored = backend.next_token("Question: 2+2?\nA. 4\nB. 5\nAnswer:", 5)
        assert 1 <= len(scored.top) <= 5 and scored.prompt_tokens > 5
        assert all(value <= 0 for value in scored.top.values())
        backend.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class _ThinksFirst(ClientBackend):
    """SmolLM2 made to reason first: a fresh answer starts inside ``<think>`` (an assistant
    prefill), as a thinking model's does; a continuation is passed through untouched."""

    def generate(self, messages, *, max_tokens, temperature, seed):  # type: ignore[no-untyped-def]
        if messages[-1]["role"] == "assistant":
            return super().generate(
                messages, max_tokens=max_tokens, temperature=temperature, seed=seed
            )
        opened = [
            *messages,
            {"role": "assistant", "content": "<think>\nLet me think step by step."},
        ]
        out = super().generate(opened, max_tokens=max_tokens, temperature=temperature, seed=seed)
        return Generation(
            "<think>\nLet me think step by step." + out.text,
            out.thinking,
            out.prompt_tokens,
            out.completion_tokens,
        )


def test_a_thinking_budget_closes_the_reasoning_and_the_model_answers(
    client: Terminus, tmp_path: Path
) -> None:
    """On llama.cpp: the budget stops the reasoning, the closing sentence and ``</think>`` are
    appended, and the server continues that assistant message with the answer."""
    config = RunConfig(("medqa",), mode="generative", limit=2, max_tokens=24, thinking_budget=6)
    backend = _ThinksFirst(client, MODEL, parallel=1)
    run_dir, summary = evaluate(
        client, MODEL, config, data_dir=DATA, run_dir=tmp_path, backend=backend
    )
    from terminus.eval.report import load_run

    rows = list(load_run(run_dir).rows["medqa"].values())
    assert len(rows) == 2
    for row in rows:
        assert row["thinking_truncated"] is True and row["thinking_tokens"] == 6
        assert "Let me think step by step." in row["thinking"]
        assert "limited time" in row["thinking"] and "<think>" not in row["response"]
        assert row["response"].strip()  # the model went on to answer after </think>
        assert row["completion_tokens"] > 6  # the answer came from a second, continued call
    assert summary["benchmarks"]["medqa"]["thinking_truncated"] == 2
    assert (
        "thinking budget closed the reasoning early in 2 of 2"
        in (run_dir / "report.md").read_text()
    )
