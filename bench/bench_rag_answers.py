"""Cited RAG answers on the shipped chat models, over the project's own docs.

Ingests docs/*.md into a fresh workspace (all-MiniLM-L6-v2), asks the 20 questions of
bench/data/rag_doc_questions.json (each with a known fact and the doc it is in), and
scores every answer:

- fact:   the answer contains the fact (case and spaces ignored; a number must not be part
          of a longer one: "16" is not found in "160")
- cited:  the answer cites [n] and some cited source is the right doc
- both:   fact and cited — a correct, correctly cited answer
- none:   the answer cites nothing (``Answer.citations`` is empty: the honest path)
- wrong:  it cites only sources from other docs

``--prompt after`` is ``Workspace.ask`` as shipped: the question's closest sentences of the
retrieved chunks, a one-sentence answer, and citations the model wrote or, failing that,
matched to the answer's sentences (terminus.rag.attribution). ``--prompt before`` scores
the previous prompt (whole chunks up to 400 words, the model asked to cite [n] itself,
only its own [n] counted), in the same run, for comparison.

    TERMINUS_THREADS=1 python bench/bench_rag_answers.py -m qwen -m smollm2 --prompt both -v
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
BEFORE_CONTEXT_WORDS = 400  # the context budget shipped with the previous prompt
QUESTIONS = Path(__file__).resolve().parent / "data" / "rag_doc_questions.json"


def has_fact(text: str, fact: str) -> bool:
    """``fact`` in ``text``, ignoring case and spaces, not inside a longer number."""
    pattern = r"\s*".join(re.escape(c) for c in fact if not c.isspace())
    if fact[0].isdigit():
        pattern = r"(?<![\d.])" + pattern
    if fact[-1].isdigit():
        pattern += r"(?![\d])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def score(answer: Answer, text: str, item: dict[str, Any]) -> dict[str, Any]:
    fact = any(has_fact(text, f) for f in item["facts"])
    cited_sources = [Path(c.result.source).name for c in answer.citations]
    cited = item["source"] in cited_sources
    given = [Path(c.result.source).name for c in answer.sources]
    return {
        "question": item["q"],
        "answer": text.strip(),
        "cited_text": answer.cited_text,
        "fact": fact,
        "cited": cited,
        "both": fact and cited,
        "none": not cited_sources,
        "wrong": bool(cited_sources) and not cited,
        "retrieved": item["source"] in given,
    }


BEFORE_SYSTEM = (
    "Answer the user's question using only the numbered sources. Write one or two sentences. "
    "End each sentence with the number of the source it comes from, in square brackets. "
    "If the sources do not contain the answer, say you do not know."
)
BEFORE_PREFIX = "Question (answer it, citing the source number in square brackets): "


def _before(t: Terminus, ws: Workspace, model: str, question: str, top_k: int) -> Answer:
    """The previous ``ask``: whole chunks, the model asked to cite, its own [n] only."""
    results = ws.search(question, top_k)
    messages, sources = rag_answer.build_messages(question, results, BEFORE_CONTEXT_WORDS)
    user = messages[1]["content"].replace(rag_answer.QUESTION_PREFIX, BEFORE_PREFIX)
    messages = [{"role": "system", "content": BEFORE_SYSTEM}, {"role": "user", "content": user}]
    stream = t.completion(messages, model=model, temperature=0.0, max_tokens=96)
    return Answer(stream, question, sources)


def run(
    t: Terminus,
    ws: Workspace,
    model: str,
    prompt: str,
    items: list[dict[str, Any]],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        started = time.perf_counter()
        if prompt == "before":
            answer = _before(t, ws, model, item["q"], args.top_k)
        else:
            answer = ws.ask(
                item["q"],
                model=model,
                top_k=args.top_k,
                focus_words=args.focus_words,
                temperature=0.0,
                max_tokens=96,
            )
        row = score(answer, str(answer.text), item)
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        if args.verbose:
            flags = "".join(k[0].upper() if row[k] else "." for k in ("fact", "cited", "none"))
            shown = row["cited_text"].replace("\n", " ")
            print(f"  {flags} {item['q'][:50]:50} → {shown[:100]!r}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", action="append", help="chat model(s) [qwen]")
    parser.add_argument("--prompt", choices=("after", "before", "both"), default="after")
    parser.add_argument("-k", "--top-k", type=int, default=5)  # as Workspace.ask
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--focus-words", type=int, default=rag_answer.FOCUSED_CONTEXT_WORDS, help="as ask()"
    )
    parser.add_argument("--json", type=Path, help="write every answer and score here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    models = args.model or ["qwen"]
    prompts = ["after", "before"] if args.prompt == "both" else [args.prompt]
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
