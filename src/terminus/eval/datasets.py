"""Which benchmarks exist, where their files come from, and how a run finds them.

A run reads a benchmark from ``--data-dir`` when the directory holds one of its
file names; otherwise it fetches the published file into the Terminus home
(written to a temporary name, hashed, then renamed). A file with a sha256 in
this table must match it; for the others the hash of the first download is
recorded in ``eval/data/pins.json`` and every later copy must match it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from terminus.errors import (
    BenchmarkDataError,
    ChecksumMismatchError,
    InvalidParameterError,
    SourceUnavailableError,
)
from terminus.eval.items import McqItem
from terminus.eval.loaders import items_from_records, read_records, restrict_pubmedqa


@dataclass(frozen=True)
class Published:
    url: str
    sha256: str | None = None  # None: pinned on first download


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    #: File names looked for in ``--data-dir``, in order; the first present is read.
    files: tuple[str, ...]
    published: Published | None
    keep: Callable[[dict[str, object]], bool] | None = None


MMLU_MEDICAL_SUBJECTS = frozenset(
    {
        "anatomy",
        "clinical_knowledge",
        "college_biology",
        "college_medicine",
        "medical_genetics",
        "professional_medicine",
    }
)

_HF = "https://huggingface.co/datasets"
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "medqa",
            "MedQA-USMLE (4 options)",
            ("medqa_usmle_4opt_test.jsonl", "medqa_test.jsonl"),
            Published(f"{_HF}/GBaker/MedQA-USMLE-4-options/resolve/main/test.jsonl"),
        ),
        Benchmark(
            "medmcqa",
            "MedMCQA (validation)",
            ("medmcqa_dev.jsonl", "medmcqa_validation.jsonl", "dev.json"),
            Published(
                f"{_HF}/openlifescienceai/medmcqa/resolve/main/data/validation-00000-of-00001.parquet"
            ),
        ),
        Benchmark(
            "pubmedqa",
            "PubMedQA (PQA-L test, 500)",
            ("pubmedqa_pqal.json", "ori_pqal.json"),
            Published(
                "https://raw.githubusercontent.com/pubmedqa/pubmedqa/master/data/ori_pqal.json"
            ),
        ),
        Benchmark(
            "mmlu_medical",
            "MMLU medical subsets",
            ("mmlu_medical_test.jsonl",),
            None,
            keep=lambda r: str(r.get("subject", "")) in MMLU_MEDICAL_SUBJECTS or "subject" not in r,
        ),
        Benchmark(
            "mmlu_pro_health",
            "MMLU-Pro health",
            ("mmlu_pro_health.jsonl", "mmlu_pro_test.jsonl", "test-00000-of-00001.parquet"),
            Published(f"{_HF}/TIGER-Lab/MMLU-Pro/resolve/main/data/test-00000-of-00001.parquet"),
            keep=lambda r: str(r.get("category", "health")) == "health",
        ),
        Benchmark(
            "medxpertqa",
            "MedXpertQA (text)",
            ("medxpertqa_text_sampled.jsonl", "medxpertqa_text_test.jsonl"),
            Published(f"{_HF}/TsinghuaC3I/MedXpertQA/resolve/main/Text/test.jsonl"),
        ),
        Benchmark(
            "afrimedqa",
            "AfriMed-QA (MCQ)",
            ("afrimedqa_mcq.jsonl", "afrimedqa_v2.csv"),
            None,
            keep=lambda r: str(r.get("question_type", "mcq")).lower() == "mcq",
        ),
    )
}
PUBMEDQA_TEST_IDS = "pubmedqa_test_ground_truth.json"
PUBMEDQA_TEST_IDS_URL = (
    "https://raw.githubusercontent.com/pubmedqa/pubmedqa/master/data/test_ground_truth.json"
)
SEVEN = tuple(BENCHMARKS)


def benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown benchmark {name!r}", hint=f"one of: {', '.join(BENCHMARKS)}"
        ) from None


@dataclass(frozen=True)
class LoadedBenchmark:
    name: str
    items: list[McqItem]
    source: str  # path read
    sha256: str  # of that file


def load_benchmark(
    name: str,
    data_dir: Path | None,
    home: Path,
    *,
    allow_download: bool,
    file: Path | None = None,
) -> LoadedBenchmark:
    """``file`` (``--file BENCH=PATH``) is read whatever its name, and nothing is fetched;
    else ``data_dir`` is searched for the benchmark's file names, else the published
    file is fetched."""
    spec = benchmark(name)
    if file is not None and not file.is_file():
        raise BenchmarkDataError(f"--file {name}={file}: no such file")
    path = file or _local_file(spec, data_dir)
    if path is None:
        path = _fetched(spec, home, allow_download)
    items = items_from_records(read_records(path), name, spec.keep)
    if name == "pubmedqa":
        truth = path.parent / PUBMEDQA_TEST_IDS
        if not truth.is_file() and file is not None:
            raise BenchmarkDataError(
                f"--file pubmedqa={file}: {PUBMEDQA_TEST_IDS} must sit next to it",
                hint="it names the 500 test items that are scored",
            )
        if not truth.is_file():
            truth = fetch(Published(PUBMEDQA_TEST_IDS_URL), home, allow_download, PUBMEDQA_TEST_IDS)
        items = restrict_pubmedqa(items, truth)
    return LoadedBenchmark(name, items, str(path), file_sha256(path))


def parse_file_overrides(values: Iterable[str]) -> dict[str, Path]:
    """``BENCH=PATH`` pairs (``--file``) → benchmark name → path; names are checked."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InvalidParameterError(f"--file {value!r}: expected BENCH=PATH")
        out[benchmark(name.strip()).name] = Path(path.strip()).expanduser()
    return out


def _local_file(spec: Benchmark, data_dir: Path | None) -> Path | None:
    if data_dir is None:
        return None
    if not data_dir.is_dir():
        raise BenchmarkDataError(f"--data-dir {data_dir} is not a directory")
    return next((data_dir / f for f in spec.files if (data_dir / f).is_file()), None)


def _fetched(spec: Benchmark, home: Path, allow_download: bool) -> Path:
    if spec.published is None:
        raise BenchmarkDataError(
            f"{spec.name}: no file found and no published copy Terminus can fetch",
            hint=f"put one of {', '.join(spec.files)} in --data-dir",
        )
    name = spec.published.url.rsplit("/", 1)[-1]
    return fetch(spec.published, home, allow_download, f"{spec.name}-{name}")


def data_home(home: Path) -> Path:
    return home / "eval" / "data"


def fetch(source: Published, home: Path, allow_download: bool, filename: str) -> Path:
    """The cached copy, downloading it first if allowed; its hash checked either way."""
    folder = data_home(home)
    target = folder / filename
    pins = _read_pins(folder)
    expected = source.sha256 or pins.get(source.url)
    if target.is_file():
        _check(target, expected, source.url)
        return target
    if not allow_download:
        raise SourceUnavailableError(
            f"{filename} is not cached and downloads are off",
            hint="pass --data-dir with the benchmark files, or run online once",
        )
    import httpx

    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".incomplete")
    digest = hashlib.sha256()
    try:
        with (
            httpx.stream("GET", source.url, follow_redirects=True, timeout=60) as response,
            partial.open("wb") as out,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
                digest.update(chunk)
            out.flush()
            os.fsync(out.fileno())
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise SourceUnavailableError(
            f"could not fetch {source.url}: {exc}",
            hint="pass --data-dir with the benchmark files",
        ) from exc
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatchError(f"{source.url} has sha256 {actual}, expected {expected}")
    os.replace(partial, target)
    if expected is None:
        pins[source.url] = actual
        _write_pins(folder, pins)
    return target


def _check(path: Path, expected: str | None, url: str) -> None:
    if expected is not None and file_sha256(path) != expected:
        raise ChecksumMismatchError(
            f"cached {path.name} does not match the sha256 pinned for {url}",
            hint=f"delete {path} to fetch it again",
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_pins(folder: Path) -> dict[str, str]:
    path = folder / "pins.json"
    if not path.is_file():
        return {}
    pins: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return pins


def _write_pins(folder: Path, pins: dict[str, str]) -> None:
    path = folder / "pins.json"
    temporary = path.with_name("pins.json.tmp")
    temporary.write_text(json.dumps(pins, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
