"""Benchmark files → ``McqItem``s.

Two families of shapes are read: the question/label JSON lines of the medbench
bundle (the options written into the question after ``Answer Choices:``) and
the files as their authors publish them (PubMedQA's ``ori_pqal.json``, MedQA's
``options``/``answer_idx``, MedMCQA's ``opa``…``cop``, MMLU-Pro's ``options``/
``answer``, AfriMed-QA's CSV). The shape is recognised from the first record.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from terminus.errors import BenchmarkDataError
from terminus.eval.items import LETTERS, McqItem

_CHOICES_MARK = "Answer Choices:"
PUBMEDQA_OPTIONS = {"yes": "yes", "no": "no", "maybe": "maybe"}


def read_records(path: Path) -> list[dict[str, Any]]:
    """JSON lines, a JSON array or object of records, CSV, or Parquet (with pyarrow)."""
    if not path.is_file():
        raise BenchmarkDataError(f"benchmark file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return _read_parquet(path)
        text = path.read_text(encoding="utf-8")
        if suffix == ".csv":
            return list(csv.DictReader(text.splitlines()))
        stripped = text.lstrip()
        if stripped.startswith("[") or (stripped.startswith("{") and suffix == ".json"):
            data = json.loads(text)
            if isinstance(data, dict):  # {id: record}
                return [{"id": key, **value} for key, value in data.items()]
            return list(data)
        return _json_lines(text, path)
    except BenchmarkDataError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise BenchmarkDataError(f"{path.name} is not valid JSON/CSV: {exc}") from exc


def _json_lines(text: str, path: Path) -> list[dict[str, Any]]:
    """One JSON object per line; an error names the file, its line and which record."""
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}, line {number} (record {len(records)})"
        try:
            record = json.loads(line)
        except ValueError as exc:
            detail = (
                f"{exc.msg} at column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else str(exc)
            )
            raise BenchmarkDataError(
                f"{where} is not valid JSON: {detail}: {_excerpt(line)}"
            ) from exc
        if not isinstance(record, dict):
            raise BenchmarkDataError(f"{where} is not a JSON object: {_excerpt(line)}")
        records.append(record)
    return records


def _excerpt(line: str, width: int = 80) -> str:
    line = line.strip()
    return repr(line if len(line) <= width else line[: width - 1] + "…")


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise BenchmarkDataError(
            f"{path.name} is Parquet; reading it needs pyarrow", hint="pip install pyarrow"
        ) from exc
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def items_from_records(
    records: Iterable[dict[str, Any]],
    benchmark: str,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> list[McqItem]:
    """Recognise the shape of each record and convert it; ids are made stable if missing."""
    records = list(records)
    # MedMCQA's published JSON counts the right option from 1, its Hugging Face copy from 0.
    cop_base = 0 if any(str(r.get("cop", "")) == "0" for r in records) else 1
    items: list[McqItem] = []
    for index, record in enumerate(records):
        if keep is not None and not keep(record):
            continue
        try:
            item = _convert(record, benchmark, index, cop_base)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            named = f" (id {record['id']!r})" if isinstance(record, dict) and "id" in record else ""
            raise BenchmarkDataError(
                f"{benchmark}: record {index}{named} has an unexpected shape"
                f" ({type(exc).__name__}: {exc})"
            ) from exc
        items.append(item)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise BenchmarkDataError(f"{benchmark}: item ids are not unique")
    if not items:
        raise BenchmarkDataError(f"{benchmark}: no items found")
    return items


def _convert(record: dict[str, Any], benchmark: str, index: int, cop_base: int) -> McqItem:
    item_id = str(record.get("id") or record.get("question_id") or f"{benchmark}-{index:05d}")
    meta: dict[str, Any] = {
        k: record[k] for k in ("subject", "category", "medical_task") if k in record
    }
    if "QUESTION" in record:  # PubMedQA
        return McqItem(
            id=item_id,
            question=str(record["QUESTION"]),
            options=dict(PUBMEDQA_OPTIONS),
            answer=str(record["final_decision"]).strip().lower(),
            context=" ".join(record.get("CONTEXTS") or ()),
            meta=meta,
        )
    if "opa" in record:  # MedMCQA
        options = {letter: str(record[f"op{letter.lower()}"]) for letter in "ABCD"}
        answer = "ABCD"[int(record["cop"]) - cop_base]
        return McqItem(item_id, str(record["question"]), options, answer, meta=meta)
    if "answer_options" in record:  # AfriMed-QA CSV
        return _afrimedqa(record, item_id, meta)
    question = str(record["question"])
    options = _options(record.get("options"))
    if _CHOICES_MARK in question:
        question, written = split_choices(question)
        options = options or written
    if not options:
        raise ValueError("no answer options")
    answer = _answer(record, options)
    return McqItem(item_id, question.strip(), options, answer, meta=meta)


def _options(value: Any) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict):
        return {str(k).strip(): str(v) for k, v in value.items()}
    if value and isinstance(value[0], dict):  # [{"letter": "A", "content": ...}]
        return {str(o["letter"]): str(o["content"]) for o in value}
    return {LETTERS[i]: str(v) for i, v in enumerate(value)}  # MMLU-Pro: a plain list


def _answer(record: dict[str, Any], options: dict[str, str]) -> str:
    for key in ("label", "answer_idx", "answer"):
        value = record.get(key)
        if isinstance(value, list):
            value = value[0] if len(value) == 1 else None
        if isinstance(value, str) and value.strip() in options:
            return value.strip()
    if "answer_index" in record:
        return list(options)[int(record["answer_index"])]
    raise ValueError("no answer key that names one of the options")


def split_choices(question: str) -> tuple[str, dict[str, str]]:
    """``"… Answer Choices: (A) x (B) y"`` → ``("…", {"A": "x", "B": "y"})``."""
    stem, _, tail = question.rpartition(_CHOICES_MARK)
    options: dict[str, str] = {}
    position = 0
    for letter in LETTERS:
        marker = re.compile(rf"\({letter}\)\s")
        found = marker.search(tail, position)
        if found is None:
            break
        if options:
            previous = list(options)[-1]
            options[previous] = tail[position : found.start()].strip()
        options[letter] = ""
        position = found.end()
    if options:
        options[list(options)[-1]] = tail[position:].strip()
    return stem.strip(), options


def _afrimedqa(record: dict[str, Any], item_id: str, meta: dict[str, Any]) -> McqItem:
    raw = _options(record["answer_options"])
    options = {LETTERS[i]: text for i, text in enumerate(raw.values())}
    correct = str(record["correct_answer"]).strip()
    keys = list(raw)
    if correct in keys:
        answer = LETTERS[keys.index(correct)]
    elif correct in options:
        answer = correct
    else:
        raise ValueError(f"correct_answer {correct!r} names no option")
    return McqItem(item_id, str(record["question"]), options, answer, meta=meta)


def restrict_pubmedqa(items: list[McqItem], ground_truth: Path) -> list[McqItem]:
    """Keep the test split and take its labels (``{"pmid": "yes", …}``)."""
    try:
        labels = json.loads(ground_truth.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchmarkDataError(f"cannot read {ground_truth.name}: {exc}") from exc
    if not isinstance(labels, dict):
        raise BenchmarkDataError(f"{ground_truth.name} must map PubMed ids to yes/no/maybe")
    kept = [item for item in items if item.id in labels]
    if len(kept) != len(labels):
        raise BenchmarkDataError(
            f"{len(labels) - len(kept)} ground-truth ids are missing from the PubMedQA file"
        )
    return [
        McqItem(i.id, i.question, i.options, str(labels[i.id]), i.context, i.meta) for i in kept
    ]
