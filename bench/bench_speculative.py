"""Speculative decoding vs raw xllamacpp's plain decode on the same GGUF, in one run.

The model is Qwen2.5-Coder-1.5B; the proposers are the 0.5B as a draft model
(``--draft qwen``) and n-gram prompt lookup (``--speculative ngram``). The raw side
is an in-process ``xllamacpp.Server`` built from the very settings Terminus sends
its worker, less the speculative ones, and it gets the very request body Terminus
builds (greedy, fixed seed), so the sides differ by speculation (and Terminus's own
path). Three prompts: code (an edit that repeats the code), RAG-style (the answer
quotes the context) and chat (free text). Rounds alternate which side goes first;
each run prints as it ends, then per prompt the median ratio of decode speeds
(llama.cpp's own ``predicted_per_second`` on both sides) with its spread, the
share of drafted tokens kept, and whether the greedy texts are identical (they must
be). Not a test: nothing here asserts timings.

    python bench/bench_speculative.py [--modes draft,ngram] [--rounds 2] [--tokens 96]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

MODEL = "qwen2.5-coder-1.5b-instruct"
DRAFT = "qwen2.5-coder-0.5b-instruct"
# Each prompt computed afresh on both sides: a reused prefix runs in other batch shapes, and
# llama.cpp's sums then differ in the last bits, enough to flip a greedy near-tie.
SAMPLING: dict[str, Any] = {"temperature": 0.0, "seed": 1, "cache_prompt": False}

CODE = """def load_users(path):
    users = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, email, age = line.rstrip("\\n").split(",")
            users.append({"name": name, "email": email, "age": int(age)})
    return users


def adults(users):
    return [user for user in users if user["age"] >= 18]
"""
CONTEXT = (
    "The Harbor Line opened in 1911 and runs 14 kilometres from Central Station to the "
    "ferry terminal. Trains leave every 12 minutes on weekdays and every 20 minutes on "
    "Sundays. The line was electrified in 1958, and the last steam locomotive, number 47, "
    "is kept at the Maritime Museum. A single ticket costs 2.40 euros; children under six "
    "travel free."
)
PROMPTS = {
    "code": "Rename the variable `handle` to `source` in this code and return the whole "
    "code, nothing else.\n\n" + CODE,
    "rag": f"Context:\n{CONTEXT}\n\nUsing only the context, answer by quoting the sentences "
    "that say when the line opened, how often trains leave, and what a ticket costs.",
    "chat": "Give three tips for staying focused while studying, one sentence each.",
}


@dataclass(frozen=True)
class Run:
    decode: float  # tokens per second after the prompt, as llama.cpp measured it
    tokens: int
    text: str
    drafted: int | None = None
    kept: int | None = None


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def raw_run(server: Any, body: dict[str, Any]) -> Run:
    plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    result = server.handle_chat_completions(plain)
    timings = result["timings"]
    return Run(
        float(timings["predicted_per_second"]),
        int(timings["predicted_n"]),
        result["choices"][0]["message"]["content"],
        timings.get("draft_n"),
        timings.get("draft_n_accepted"),
    )


def our_run(client: Any, model: str, prompt: str, tokens: int) -> Run:
    result = client.completion(prompt, model=model, max_tokens=tokens, **SAMPLING).result()
    stats = result.stats
    return Run(
        float(stats.tokens_per_second or 0.0),
        stats.completion_tokens,
        result.text,
        stats.draft_tokens,
        stats.draft_accepted,
    )


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}..{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="draft,ngram", help="comma-separated: draft, ngram")
    parser.add_argument("--prompts", default="code,rag,chat")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--draft-max", type=int, default=8)
    args = parser.parse_args()
    print(f"bench_speculative: {load_average()}, {os.cpu_count()} CPUs", flush=True)

    from terminus import Terminus
    from terminus.engines.llamacpp_params import build_params

    home = tempfile.mkdtemp(prefix="terminus-bench-spec-")
    client = Terminus(home=home, memory_budget="8G")
    for name in (MODEL, DRAFT):
        client.models.pull(name)
    raw: Any = None
    prompts = [p for p in args.prompts.split(",") if p]
    summary: list[str] = []
    for mode in [m for m in args.modes.split(",") if m]:
        load: dict[str, Any] = {"speculative": mode, "draft_max": args.draft_max}
        if mode == "draft":
            load["draft_model"] = DRAFT
        started = time.perf_counter()
        info = client.load_model(
            MODEL, context_length=1024, parallel=1, threads=args.threads, **load
        )
        print(f"[{mode}] loaded in {time.perf_counter() - started:.1f} s, {load_average()}")
        with client.manager.use(info.id) as model:
            settings = model.server._assignments  # type: ignore[attr-defined]
            body_of = model.build_body  # type: ignore[attr-defined]
        if raw is None:
            import xllamacpp

            plain = [(k, v) for k, v in settings if not k.startswith("speculative.")]
            raw = xllamacpp.Server(build_params(plain))
        for name in prompts:
            prompt = PROMPTS[name]
            request = client.chat_request(prompt, model=info.id, max_tokens=args.tokens, **SAMPLING)
            body = body_of(request)[0]
            ratios: list[float] = []
            drafted = kept = 0
            same = True
            for round_ in range(args.rounds):
                runs: dict[str, Run] = {}
                order = ("raw", "spec") if round_ % 2 == 0 else ("spec", "raw")
                for side in order:
                    if side == "raw":
                        runs[side] = raw_run(raw, body)
                    else:
                        runs[side] = our_run(client, info.id, prompt, args.tokens)
                ours, base = runs["spec"], runs["raw"]
                ratio = ours.decode / base.decode if base.decode else 0.0
                ratios.append(ratio)
                drafted += ours.drafted or 0
                kept += ours.kept or 0
                same = same and ours.text == base.text and ours.tokens == base.tokens
                print(
                    f"[{mode}] {name} round {round_ + 1} ({order[0]} first): raw "
                    f"{base.decode:.2f} tok/s, speculative {ours.decode:.2f} tok/s = "
                    f"{ratio:.2f}x, kept {ours.kept}/{ours.drafted} drafted, "
                    f"{ours.tokens} tokens, same text: {ours.text == base.text}, "
                    f"{load_average()}",
                    flush=True,
                )
                if ours.text != base.text:
                    at = next(
                        (
                            i
                            for i, (a, b) in enumerate(zip(ours.text, base.text, strict=False))
                            if a != b
                        ),
                        min(len(ours.text), len(base.text)),
                    )
                    print(
                        f"  texts part at character {at}: raw {base.text[at : at + 40]!r}, "
                        f"speculative {ours.text[at : at + 40]!r}",
                        flush=True,
                    )
            rate = f"{kept / drafted:.0%}" if drafted else "n/a"
            line = (
                f"{mode:5} {name:4}: decode {spread(ratios)} raw, {rate} of {drafted} drafted "
                f"tokens kept, greedy text identical: {same}"
            )
            summary.append(line)
            print(line, flush=True)
        client.unload_model(info.id)
    print(f"\nsummary ({args.threads} thread(s), {args.tokens} tokens, {args.rounds} rounds):")
    for line in summary:
        print("  " + line)
    print(f"end: {load_average()}")
    client.close()


if __name__ == "__main__":
    main()
