"""Cancellation and concurrency on the real SmolLM2-135M: threads, slots and asyncio."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from realmodel import GREEDY, MODEL, wait_idle

from terminus import AsyncTerminus, Terminus
from terminus.types import ChatEvent, Completion, ContentDelta, Done

pytestmark = pytest.mark.real

#: Greedy SmolLM2 writes the full 400 tokens for this (checked in the tests).
STORY = "Write a long story about a dragon who learns to bake bread."
PROMPTS = [
    "What is the capital of Italy?",
    "What is the largest planet in the solar system?",
    "How many days are in a week?",
    "What color is the sky on a clear day?",
]


def test_story_runs_long_without_a_cancel(client: Terminus) -> None:
    """The control for the cancel tests: uncancelled, the story does not end early."""
    result = client.completion(STORY, model=MODEL, max_tokens=40, **GREEDY).result()
    assert result.stop_reason == "length"


def test_cancel_from_another_thread_stops_within_a_few_tokens(client: Terminus) -> None:
    stream = client.completion(STORY, model=MODEL, max_tokens=400, **GREEDY)
    events: list[ChatEvent] = []
    before = after = 0
    cancelled = False
    for event in stream:
        events.append(event)
        if not isinstance(event, ContentDelta):
            continue
        if cancelled:
            after += 1
            continue
        before += 1
        if before == 10:
            canceller = threading.Thread(target=stream.cancel)
            canceller.start()
            canceller.join()
            cancelled = True

    assert cancelled
    assert events[-1] == Done(stop_reason="cancelled")
    assert after <= 5, f"{after} content deltas arrived after cancel()"
    assert stream.cancelled
    assert stream.result().stop_reason == "cancelled"

    assert wait_idle(client)  # the slot was released...
    follow = client.completion("What is 2 plus 2?", model=MODEL, max_tokens=24, **GREEDY).result()
    assert follow.stop_reason in ("stop", "length")  # ...and the model serves again
    assert follow.text.strip()


def test_leaving_the_loop_early_cancels_and_frees_the_slot(client: Terminus) -> None:
    stream = client.completion(STORY, model=MODEL, max_tokens=400, **GREEDY)
    started = time.monotonic()
    for seen, _ in enumerate(stream):
        if seen == 5:
            break
    assert wait_idle(client, timeout=2.0)
    assert time.monotonic() - started < 3.0  # far less than 400 tokens take
    assert stream.cancelled


def test_stats_after_cancel_count_the_tokens(client: Terminus) -> None:
    stream = client.completion(STORY, model=MODEL, max_tokens=400, **GREEDY)
    deltas = 0
    for event in stream:
        if isinstance(event, ContentDelta):
            deltas += 1
            if deltas == 5:
                stream.cancel()
    result = stream.result()
    assert result.stop_reason == "cancelled"
    assert result.stats is not None  # llama.cpp sends no usage chunk when cancelled
    assert result.stats.prompt_tokens > 0
    assert deltas <= result.stats.completion_tokens <= deltas + 5


def test_concurrent_greedy_completions_equal_each_run_alone(
    fresh_client: Callable[[], Terminus],
) -> None:
    """Four requests batched together in one llama.cpp server give the texts each gives alone.

    Both clients start from fresh slots, so the prompts of the concurrent run are processed
    together in llama.cpp's batches and not reused from the sequential run.
    """
    together_client, alone_client = fresh_client(), fresh_client()
    spans: dict[str, tuple[float, float]] = {}
    barrier = threading.Barrier(len(PROMPTS))

    def run(terminus: Terminus, prompt: str) -> Completion:
        return terminus.completion(prompt, model=MODEL, max_tokens=48, **GREEDY).result()

    def run_together(prompt: str) -> Completion:
        barrier.wait()
        start = time.monotonic()
        result = run(together_client, prompt)
        spans[prompt] = (start, time.monotonic())
        return result

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(run_together, PROMPTS))
    alone = [run(alone_client, prompt) for prompt in PROMPTS]

    # All four were in flight at once.
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values())
    for prompt, batched, single in zip(PROMPTS, together, alone, strict=True):
        assert batched.stop_reason in ("stop", "length"), prompt
        assert batched.text.strip(), prompt
        assert batched.text == single.text, prompt
    assert len({r.text for r in together}) == len(PROMPTS)


async def test_async_gather_runs_four_completions(client: Terminus) -> None:
    aclient = AsyncTerminus(client)  # shares the loaded model; not closed here
    results = await asyncio.gather(
        *(aclient.completion(p, model=MODEL, max_tokens=32, **GREEDY).result() for p in PROMPTS)
    )
    for prompt, result in zip(PROMPTS, results, strict=True):
        assert result.stop_reason in ("stop", "length"), prompt
        assert result.text.strip(), prompt
        assert result.stats is not None and result.stats.completion_tokens > 0
    assert len({r.text for r in results}) == len(PROMPTS)


async def test_cancelling_the_consuming_task_cancels_generation(client: Terminus) -> None:
    aclient = AsyncTerminus(client)
    stream = aclient.completion(STORY, model=MODEL, max_tokens=400, **GREEDY)
    generating = asyncio.Event()
    seen = 0

    async def consume() -> None:
        nonlocal seen
        async for event in stream:
            if isinstance(event, ContentDelta):
                seen += 1
                if seen == 5:
                    generating.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(generating.wait(), timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # 400 tokens take seconds; a cancelled request frees its slot at once.
    assert await asyncio.to_thread(wait_idle, client, MODEL, 2.0)
    after = await aclient.completion(
        "What is 2 plus 2?", model=MODEL, max_tokens=24, **GREEDY
    ).result()
    assert after.stop_reason in ("stop", "length")
    assert after.text.strip()
