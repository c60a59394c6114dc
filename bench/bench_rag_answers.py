"""Cited RAG answers on the shipped chat models, over the project's own docs.

Ingests docs/*.md into a fresh workspace (all-MiniLM-L6-v2), asks the 20 questions of
bench/data/rag_doc_questions.json (each with a known fact and the doc it is in), and
scores every answer:

- fact:   the answer contains the fact (case and spaces ignored)
- cited:  the answer cites [n] and some cited source is the right doc
- both:   fact and cited — a correct, correctly cited answer
- none:   the answer cites nothing (``Answer.citations`` is empty: the honest path)
- wrong:  it cites only sources from other docs

``--prompt before`` scores the prompt this project shipped before (its example sentence,
"Cats purr [1].", was copied by the 0.5B model), in the same run, for comparison.

    TERMINUS_THREADS=1 python bench/bench_rag_answers.py -m qwen -m smollm2 --prompt both
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from terminus import Terminus
from terminus.rag import Workspace
from terminus.rag import answer as rag_answer
from terminus.rag.answer import Answer

ROOT = Path(__file__).resolve().parents[1]
BEFORE_CONTEXT_WORDS = 900  # the context budget shipped with the old prompt
QUESTIONS = Path(__file__).resolve().parent / "data" / "rag_doc_questions.json"


def _squash(text: str) -> str:
    return "".join(text.lower().split())


def score(answer: Answer, text: str, item: dict[str, Any]) -> dict[str, Any]:
    fact = any(_squash(f) in _squash(text) for f in item["facts"])
    cited_sources = [Path(c.result.source).name for c in answer.citations]
    cited = item["source"] in cited_sources
    given = [Path(c.result.source).name for c in answer.sources]
    return {
        "question": item["q"],
        "answer": text.strip(),
        "fact": fact,
        "cited": cited,
        "both": fact and cited,
        "none": not cited_sources,
        "wrong": bool(cited_sources) and not cited,
        "retrieved": item["source"] in given,
    }


def _before_messages(question: str, results: Any, context_words: int) -> Any:
    """The prompt as shipped before: sources, question, then an example sentence."""
    messages, sources = rag_answer.build_messages(question, results, context_words)
    numbered = messages[1]["content"].split(f"\n\n{rag_answer.QUESTION_PREFIX}")[0]
    user = (
        f"{numbered}\n\nQuestion: {question}\n\n"
        "Answer in one or two sentences. After each sentence, write the number of the source "
        'it comes from in brackets, for example: "Cats purr [1]."'
    )
    system = (
        "You answer questions using only the numbered sources the user gives you. "
        "Cite the sources you use by their number in square brackets, like [1] or [2]. "
        "If the sources do not contain the answer, say that you do not know."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], sources


def run(
    t: Terminus,
    ws: Workspace,
    model: str,
    prompt: str,
    items: list[dict[str, Any]],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """``Workspace.ask`` step by step, so the prompt builder can be swapped."""
    build = _before_messages if prompt == "before" else rag_answer.build_messages
    rows = []
    for item in items:
        started = time.perf_counter()
        results = ws.search(item["q"], args.top_k)
        words = BEFORE_CONTEXT_WORDS if prompt == "before" else args.context_words
        messages, sources = build(item["q"], results, words)
        stream = t.completion(messages, model=model, temperature=0.0, max_tokens=96)
        answer = Answer(stream, item["q"], sources)
        row = score(answer, answer.text, item)
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        if args.verbose:
            flags = "".join(k[0].upper() if row[k] else "." for k in ("fact", "cited", "none"))
            print(f"  {flags} {item['q'][:50]:50} → {row['answer'][:90]!r}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", action="append", help="chat model(s) [qwen]")
    parser.add_argument("--prompt", choices=("after", "before", "both"), default="after")
    parser.add_argument("-k", "--top-k", type=int, default=5)  # as Workspace.ask
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--context-words", type=int, default=rag_answer.DEFAULT_CONTEXT_WORDS, help="as ask()"
    )
    parser.add_argument("--json", type=Path, help="write every answer and score here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    models = args.model or ["qwen"]
    prompts = ["before", "after"] if args.prompt == "both" else [args.prompt]
    items = json.loads(QUESTIONS.read_text())[: args.limit]
    threads = int(os.environ.get("TERMINUS_THREADS", "1"))
    print(f"load average {os.getloadavg()[0]:.1f}, {len(items)} questions, top_k {args.top_k}")

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home, Terminus(home=home) as t:
        for model in models:
            t.load_model(model, threads=threads, parallel=1, context_length=4096)
        with Workspace(t, "docs", model="minilm") as ws:
            ws.ingest_files(sorted((ROOT / "docs").glob("*.md")))
            for model in models:
                for prompt in prompts:
                    print(f"{model}, prompt {prompt}:", flush=True)
                    rows = run(t, ws, model, prompt, items, args)
                    n = len(rows)
                    totals = {
                        k: sum(r[k] for r in rows) for k in rows[0] if isinstance(rows[0][k], bool)
                    }
                    secs = sum(r["seconds"] for r in rows) / n
                    print(
                        f"  {model:8} {prompt:6} fact {totals['fact']}/{n}  cited right "
                        f"{totals['cited']}/{n}  both {totals['both']}/{n}  none cited "
                        f"{totals['none']}/{n}  cited wrong {totals['wrong']}/{n}  "
                        f"(retrieved {totals['retrieved']}/{n}; {secs:.1f} s/answer)",
                        flush=True,
                    )
                    results[f"{model}/{prompt}"] = {"totals": totals, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
