"""A malformed benchmark file is reported where it is wrong: file, line and record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminus.errors import BenchmarkDataError
from terminus.eval.loaders import items_from_records, read_records

GOOD = {
    "id": "q1",
    "question": "Which is a fruit?\nAnswer Choices: (A) apple (B) stone",
    "label": "A",
}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_broken_second_line_is_reported_as_line_2(tmp_path: Path) -> None:
    path = _write(tmp_path / "bench.jsonl", [json.dumps(GOOD), '{"id": "q2", "question": "x"'])
    with pytest.raises(BenchmarkDataError) as info:
        read_records(path)
    message = info.value.message
    assert "bench.jsonl, line 2 (record 1)" in message
    assert "line 1" not in message
    assert '"q2"' in message  # the text of the bad record is shown


def test_blank_lines_count_in_line_numbers_not_in_record_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.jsonl", [json.dumps(GOOD), "", "  ", "not json at all"])
    with pytest.raises(BenchmarkDataError, match=r"b\.jsonl, line 4 \(record 1\)"):
        read_records(path)


def test_a_line_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.jsonl", [json.dumps(GOOD), "[1, 2, 3]"])
    with pytest.raises(BenchmarkDataError, match=r"line 2 \(record 1\) is not a JSON object"):
        read_records(path)


def test_a_record_of_the_wrong_shape_is_named_by_its_id(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.jsonl", [json.dumps(GOOD), json.dumps({"id": "odd-one"})])
    records = read_records(path)
    with pytest.raises(BenchmarkDataError, match=r"record 1 \(id 'odd-one'\)"):
        items_from_records(records, "mybench")
