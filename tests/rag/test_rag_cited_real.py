"""Cited answers on Qwen2.5-Coder-0.5B: the answer states the fact and cites its source.

Asked to cite by number, this model answered "[1]" alone (or copied an example sentence);
now it answers in a sentence and each sentence is attributed to the source it restates.
bench/bench_rag_answers.py measures the same on 20 questions over the project's docs
(docs/rag.md, "Cited answers").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from terminus.client.sync import Terminus
from terminus.rag import TextDocument, Workspace

pytestmark = pytest.mark.real

QWEN = "qwen2.5-coder-0.5b-instruct"
DOCUMENTS = [
    (
        "launch.md",
        "# Launch\n\nThe launch window opens on 14 March at 09:30 UTC and lasts 40 minutes.",
    ),
    ("crew.md", "# Crew\n\nThe crew of the Apollo mission is three astronauts, led by Ada Reyes."),
    ("fuel.md", "# Fuel\n\nThe rocket burns liquid methane and liquid oxygen in its six engines."),
    ("food.md", "# Food\n\nThe crew eats freeze-dried meals; coffee is allowed twice a day."),
]
QUESTIONS = [
    ("When does the launch window open?", ("14 march", "09:30"), "launch.md"),
    ("Who leads the crew?", ("ada reyes",), "crew.md"),
    ("What fuel does the rocket burn?", ("methane",), "fuel.md"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    home = tmp_path_factory.mktemp("rag-cited")
    threads = int(os.environ.get("TERMINUS_TEST_THREADS", "1"))
    with Terminus(home=home, allow_download=False, memory_budget="2G") as client:
        client.load_model(QWEN, threads=threads, context_length=2048, parallel=1)
        with Workspace(client, "mission", model="minilm") as ws:
            ws.ingest([TextDocument(text, source=s, kind="markdown") for s, text in DOCUMENTS])
            yield ws
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize(("question", "facts", "source"), QUESTIONS, ids=[q[2] for q in QUESTIONS])
def test_qwen_answers_with_the_fact_and_cites_its_source(
    workspace: Workspace, question: str, facts: tuple[str, ...], source: str
) -> None:
    answer = workspace.ask(question, model=QWEN, top_k=3, temperature=0.0, max_tokens=64)
    text = answer.text
    assert any(fact in text.lower() for fact in facts), text
    assert text.strip() not in {"[1]", "[2]", "[3]"} and "purr" not in text.lower()
    assert answer.citations, f"no citation in {text!r}"
    assert [c.result.source for c in answer.citations] == [source], (text, answer.sources)
    assert all(c.how == "matched" for c in answer.citations)
    assert "[" in answer.cited_text


def test_qwen_cites_nothing_when_the_notes_do_not_hold_the_answer(workspace: Workspace) -> None:
    answer = workspace.ask(
        "What is the boiling point of liquid helium?",
        model=QWEN,
        top_k=3,
        temperature=0.0,
        max_tokens=64,
    )
    text = answer.text
    assert answer.citations == [], (text, answer.cited_text)
