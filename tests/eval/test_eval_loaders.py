"""Benchmark files in the bundle's shape and in their publishers' shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminus.errors import BenchmarkDataError, InvalidParameterError, SourceUnavailableError
from terminus.eval.datasets import Published, fetch, load_benchmark
from terminus.eval.items import sample
from terminus.eval.loaders import items_from_records, read_records, split_choices

DATA = Path(__file__).parents[1] / "data" / "medbench"


@pytest.mark.parametrize(
    ("name", "options", "count"),
    [("medqa", 4, 40), ("mmlu_medical", 4, 40), ("medxpertqa", 10, 40), ("pubmedqa", 3, 40)],
)
def test_bundled_subsets_load(name: str, options: int, count: int, tmp_path: Path) -> None:
    loaded = load_benchmark(name, DATA, tmp_path, allow_download=False)
    assert len(loaded.items) == count
    assert all(len(item.options) == options for item in loaded.items)
    assert all(item.answer in item.options for item in loaded.items)
    assert all("Answer Choices" not in item.question for item in loaded.items)
    assert len(loaded.sha256) == 64


def test_pubmedqa_uses_the_ground_truth_split(tmp_path: Path) -> None:
    loaded = load_benchmark("pubmedqa", DATA, tmp_path, allow_download=False)
    truth = json.loads((DATA / "pubmedqa_test_ground_truth.json").read_text())
    assert {i.id: i.answer for i in loaded.items} == truth
    assert all(item.context for item in loaded.items)


def test_split_choices() -> None:
    stem, options = split_choices("Which? Answer Choices: (A) one (B) two (x) (C) three")
    assert stem == "Which?"
    assert options == {"A": "one", "B": "two (x)", "C": "three"}


def test_medmcqa_published_json_counts_from_one() -> None:
    rows = [
        {"id": "m1", "question": "Q1", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 1},
        {"id": "m2", "question": "Q2", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 4},
    ]
    assert [i.answer for i in items_from_records(rows, "medmcqa")] == ["A", "D"]
    rows[0]["cop"] = 0  # the Hugging Face copy counts from zero
    rows[1]["cop"] = 3
    assert [i.answer for i in items_from_records(rows, "medmcqa")] == ["A", "D"]


def test_mmlu_pro_and_medqa_published_shapes() -> None:
    pro = {"question_id": 7, "question": "Q", "options": ["w", "x", "y", "z", "v"], "answer": "E",
           "answer_index": 4, "category": "health"}  # fmt: skip
    item = items_from_records([pro], "mmlu_pro_health")[0]
    assert (item.id, item.answer, item.options["E"]) == ("7", "E", "v")
    medqa = {"question": "Q", "options": {"A": "x", "B": "y"}, "answer": "y", "answer_idx": "B"}
    assert items_from_records([medqa], "medqa")[0].answer == "B"


def test_afrimedqa_csv(tmp_path: Path) -> None:
    path = tmp_path / "afrimedqa_v2.csv"
    options = json.dumps({"option1": "malaria", "option2": "typhoid", "option3": "flu"})
    path.write_text(
        "sample_id,question_type,question,answer_options,correct_answer\n"
        f's1,mcq,Fever after travel?,"{options.replace(chr(34), chr(34) * 2)}",option2\n'
        "s2,saq,Explain.,,\n"
    )
    loaded = load_benchmark("afrimedqa", tmp_path, tmp_path, allow_download=False)
    assert len(loaded.items) == 1  # short-answer rows are not closed-ended
    assert loaded.items[0].answer == "B" and loaded.items[0].options["B"] == "typhoid"


def test_sampling_is_seeded_stable_and_nested() -> None:
    items = items_from_records(read_records(DATA / "medqa_usmle_4opt_test.jsonl"), "medqa")
    ten = sample(items, 10, seed=0)
    assert [i.id for i in ten] == [i.id for i in sample(list(reversed(items)), 10, seed=0)]
    assert {i.id for i in ten} <= {i.id for i in sample(items, 20, seed=0)}
    assert {i.id for i in ten} != {i.id for i in sample(items, 10, seed=1)}


def test_bad_inputs_are_typed_errors(tmp_path: Path) -> None:
    broken = tmp_path / "medqa_usmle_4opt_test.jsonl"
    broken.write_text('{"question": "no options here", "label": ["A"]}\n')
    with pytest.raises(BenchmarkDataError, match="record 0"):
        load_benchmark("medqa", tmp_path, tmp_path, allow_download=False)
    broken.write_text("{not json\n")
    with pytest.raises(BenchmarkDataError, match="not valid"):
        load_benchmark("medqa", tmp_path, tmp_path, allow_download=False)
    with pytest.raises(InvalidParameterError, match="unknown benchmark"):
        load_benchmark("medqa2", tmp_path, tmp_path, allow_download=False)
    with pytest.raises(BenchmarkDataError, match="no published copy"):
        load_benchmark("mmlu_medical", None, tmp_path, allow_download=False)


def test_offline_fetch_fails_clearly_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="downloads are off"):
        load_benchmark("medqa", None, tmp_path, allow_download=False)
    assert not any((tmp_path / "eval").rglob("*")) if (tmp_path / "eval").exists() else True


def test_fetch_from_a_local_server_pins_the_hash(tmp_path: Path) -> None:
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "data.jsonl").write_text(
        '{"question": "Q Answer Choices: (A) x (B) y", "label": ["B"]}\n'
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object) -> None:
            super().__init__(*args, directory=str(served))  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.jsonl"
        home = tmp_path / "home"
        first = fetch(Published(url), home, True, "data.jsonl")
        pins = json.loads((first.parent / "pins.json").read_text())
        assert len(pins[url]) == 64
        (served / "data.jsonl").write_text("changed upstream\n")
        first.unlink()  # the next fetch downloads again and must match the pin
        from terminus.errors import ChecksumMismatchError

        with pytest.raises(ChecksumMismatchError):
            fetch(Published(url), home, True, "data.jsonl")
        assert not first.exists() and not list(first.parent.glob("*.incomplete"))
    finally:
        server.shutdown()
        server.server_close()
