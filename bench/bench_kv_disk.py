"""Time to first token with a ~1,000-token prefix restored from disk vs raw xllamacpp cold.

A first Terminus process answers one question after a long system prompt (a RAG-style
context) with ``kv_disk_cache`` on, which snapshots the prefix's KV state to disk, and
closes. Each round then starts a fresh Terminus client (a new worker process, as after
a restart) and asks a new question after the same prefix: the snapshot is verified and
restored, and only the question is computed. The raw side is an in-process
``xllamacpp.Server`` built from the very settings Terminus sends its worker, given the
very request body Terminus builds, with ``cache_prompt`` off so that it computes the
whole prompt, as a cold start must. Rounds alternate which side goes first; each
prints as it ends (the first within the first minute on a quiet machine), then the
median ratio with its spread. Goal: restored <= 15 % of cold. Nothing asserts timings.

    python bench/bench_kv_disk.py [--model smollm2] [--rounds 3] [--facts 70]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

SAMPLING: dict[str, Any] = {"temperature": 0.0, "seed": 1, "max_tokens": 8}


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def raw_ttft(server: Any, body: dict[str, Any]) -> tuple[float, int]:
    """Seconds to the first content chunk, and the prompt tokens llama.cpp computed."""
    first: list[float] = []
    timings: dict[str, Any] = {}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        for choice in chunk.get("choices") or ():
            if (choice.get("delta") or {}).get("content") and not first:
                first.append(time.perf_counter())
        timings.update(chunk.get("timings") or {})
        return False

    started = time.perf_counter()
    server.handle_chat_completions({**body, "cache_prompt": False}, on_chunk)
    return first[0] - started, int(timings.get("prompt_n", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--facts", type=int, default=70, help="context size (~14 tokens each)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"bench_kv_disk: {load_average()}, {os.cpu_count()} CPUs", flush=True)

    from terminus import Terminus
    from terminus.engines.llamacpp_params import build_params
    from terminus.types import ContentDelta

    facts = " ".join(
        f"Fact {i}: the code word for item {i} is w{i * 7 % 101}." for i in range(args.facts)
    )
    system = "You answer from these facts only.\n" + facts
    home = tempfile.mkdtemp(prefix="terminus-bench-kv-")
    load = {"context_length": 2048, "parallel": 1, "threads": args.threads, "kv_disk_cache": True}

    def client() -> Any:
        made = Terminus(home=home)
        made.load_model(args.model, **load)
        return made

    first = client()
    model_id = first.models.get(args.model).id
    started = time.perf_counter()
    result = first.completion("What is item 0?", model=model_id, system=system, **SAMPLING)
    stats = result.result().stats
    assert stats is not None
    with first.manager.use(model_id) as model:
        settings = [
            (k, v)
            for k, v in model.server._assignments  # type: ignore[attr-defined]
            if k != "slot_save_path"
        ]
        body_of = model.build_body  # type: ignore[attr-defined]
        saved = model.kv_cache.stats["saved"]  # type: ignore[attr-defined]
    print(
        f"model {model_id}, prefix + question {stats.prompt_tokens} tokens, first answer "
        f"{time.perf_counter() - started:.1f} s, snapshots saved: {saved}",
        flush=True,
    )
    first.close()

    import xllamacpp

    raw = xllamacpp.Server(build_params(settings))
    ratios: list[float] = []
    for round_ in range(args.rounds):
        question = f"What is the code word for item {round_ + 1}?"
        body = body_of(first.chat_request(question, model=model_id, system=system, **SAMPLING))[0]
        order = ("raw", "ours") if round_ % 2 == 0 else ("ours", "raw")
        ttft: dict[str, float] = {}
        restored = 0
        for side in order:
            if side == "raw":
                ttft["raw"], cold_tokens = raw_ttft(raw, body)
                continue
            ours = client()  # a new worker process: nothing of the prefix in memory
            asked = time.perf_counter()  # from the call: the restore and its check count
            for event in ours.completion(question, model=model_id, system=system, **SAMPLING):
                if isinstance(event, ContentDelta) and "ours" not in ttft:
                    ttft["ours"] = time.perf_counter() - asked
            with ours.manager.use(model_id) as model:
                restored = model.kv_cache.stats["restored"]  # type: ignore[attr-defined]
            ours.close()
        ratio = ttft["ours"] / ttft["raw"]
        ratios.append(ratio)
        print(
            f"round {round_ + 1} ({order[0]} first): raw cold {ttft['raw'] * 1000:.0f} ms "
            f"({cold_tokens} prompt tokens computed), restored from disk "
            f"{ttft['ours'] * 1000:.0f} ms (restores: {restored}) = {ratio:.1%} of cold, "
            f"{load_average()}",
            flush=True,
        )
    print(
        f"time to first token, restored / cold: median {statistics.median(ratios):.1%} "
        f"({min(ratios):.1%}..{max(ratios):.1%}), {args.rounds} rounds, {args.threads} "
        f"thread(s); end: {load_average()}"
    )


if __name__ == "__main__":
    main()
