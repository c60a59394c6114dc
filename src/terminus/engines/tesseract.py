"""OCR with the Tesseract command-line program (a second OCR engine, when it is installed).

No Python binding: the image goes to ``tesseract - stdout tsv`` on stdin and the TSV's
word rows are grouped into lines (Tesseract's block/paragraph/line numbers). The card
pins the language data file (``eng.traineddata``) it reads, so the cache verifies it
like any model file; ``--tessdata-dir`` points Tesseract at the cached copy.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
from pathlib import Path
from typing import ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.engines.images import decode_image
from terminus.engines.speech_base import check_loadable
from terminus.errors import EngineError
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types.common import Capability
from terminus.types.reading_order import reading_order
from terminus.types.speech import OcrBlock, OcrRequest, OcrResult

TIMEOUT_S = 120.0
_WORKING_BYTES = 100 * 1024 * 1024  # one tesseract process per image


class TesseractEngine:
    name: ClassVar[str] = "tesseract"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.OCR})

    @classmethod
    def probe(cls) -> Availability:
        binary = shutil.which("tesseract")
        if binary is None:
            return Availability(
                False, "the tesseract program is not installed (apt install tesseract-ocr)"
            )
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Availability(False, f"tesseract does not run: {exc}")
        first = (out.stdout or out.stderr).splitlines()[:1]
        version = first[0].split()[-1] if first else None
        return Availability(True, "Tesseract OCR (command-line program)", version)

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        return sum(p.stat().st_size for p in files.paths.values()) + _WORKING_BYTES

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> TesseractModel:
        check_loadable(self.name, self.probe(), card, Capability.OCR)
        data = [p for n, p in files.paths.items() if n.endswith(".traineddata")]
        if not data:
            raise EngineError(f"{card.id}: the card names no .traineddata file")
        languages = "+".join(p.name.removesuffix(".traineddata") for p in data)
        return TesseractModel(
            card,
            tessdata=data[0].parent,
            languages=languages,
            # One OpenMP thread unless asked: with two on a busy machine a one-line
            # image took 2 s instead of 0.16 s (OpenMP's threads spin against the load).
            threads=options.threads or 1,
            memory_bytes=self.estimate_memory(card, files, options),
        )


class TesseractModel:
    def __init__(
        self, card: ModelCard, *, tessdata: Path, languages: str, threads: int, memory_bytes: int
    ) -> None:
        self.card = card
        self.tessdata = tessdata
        self.languages = languages
        self.threads = threads
        self.memory_bytes = memory_bytes

    def close(self) -> None:
        pass

    def ocr(self, request: OcrRequest) -> OcrResult:
        started = time.perf_counter()
        image = decode_image(request.image)
        png = io.BytesIO()
        image.save(png, format="PNG")
        command = [
            "tesseract", "-", "stdout", "--tessdata-dir", str(self.tessdata),
            "-l", self.languages, "--psm", str(self.card.defaults.get("psm", 3)),
            "-c", "tessedit_create_tsv=1",  # not the "tsv" config: it lives in the system tessdata
        ]  # fmt: skip
        try:
            out = subprocess.run(
                command,
                input=png.getvalue(),
                capture_output=True,
                timeout=TIMEOUT_S,
                env={"OMP_THREAD_LIMIT": str(self.threads), "PATH": _path_env()},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineError(f"tesseract failed: {exc}") from exc
        if out.returncode != 0:
            raise EngineError(f"tesseract failed: {out.stderr.decode(errors='replace').strip()}")
        minimum = 100 * (request.min_confidence or 0.0)
        blocks = _lines(out.stdout.decode("utf-8", errors="replace"), minimum)
        return OcrResult(
            model=self.card.id,
            blocks=tuple(reading_order(blocks)),
            width=image.width,
            height=image.height,
            total_s=time.perf_counter() - started,
        )


def _path_env() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")


def _lines(tsv: str, minimum: float) -> list[OcrBlock]:
    """Word rows (level 5) grouped by (block, paragraph, line) into one block per line."""
    lines: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if (
            row.get("level") == "5"
            and (row.get("text") or "").strip()
            and float(row["conf"]) >= minimum
        ):
            lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(row)
    blocks = []
    for words in lines.values():
        left = min(int(w["left"]) for w in words)
        top = min(int(w["top"]) for w in words)
        right = max(int(w["left"]) + int(w["width"]) for w in words)
        bottom = max(int(w["top"]) + int(w["height"]) for w in words)
        blocks.append(
            OcrBlock(
                text=" ".join(w["text"].strip() for w in words),
                box=((left, top), (right, top), (right, bottom), (left, bottom)),
                confidence=sum(float(w["conf"]) for w in words) / len(words) / 100,
            )
        )
    return blocks
