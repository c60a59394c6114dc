"""OCR with RapidOCR: PaddleOCR detection, angle classification and recognition on ONNX Runtime.

The card's three ONNX files are handed to RapidOCR by path, so it never downloads
anything; blocks come back in reading order (see ``types.reading_order``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.engines.images import decode_image
from terminus.engines.llamacpp import default_threads
from terminus.engines.speech_base import check_loadable, probe_modules
from terminus.errors import EngineError
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types.common import Capability
from terminus.types.reading_order import reading_order
from terminus.types.speech import OcrBlock, OcrRequest, OcrResult

#: ONNX Runtime sessions and the detection maps of a ~2000 px image, beyond the weights.
_WORKING_BYTES = 250 * 1024 * 1024


class RapidOcrEngine:
    name: ClassVar[str] = "rapidocr"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.OCR})

    @classmethod
    def probe(cls) -> Availability:
        return probe_modules(
            ("rapidocr", "onnxruntime", "PIL"),
            "rapidocr",
            "PP-OCR on ONNX Runtime (RapidOCR)",
            "ocr",
        )

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        return sum(p.stat().st_size for p in files.paths.values()) + _WORKING_BYTES

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> RapidOcrModel:
        check_loadable(self.name, self.probe(), card, Capability.OCR)
        from rapidocr import RapidOCR

        defaults = card.defaults
        threads = options.threads or default_threads()
        try:
            params = {
                "Global.log_level": "error",
                "Global.use_cls": bool(defaults.get("use_cls", True)),
                "Global.text_score": float(defaults.get("text_score", 0.5)),
                # RapidOCR's default ("min" side >= 736) blows a one-line image up six
                # times: slow, and the detector then cuts words apart. "max" only
                # shrinks images larger than the limit.
                "Det.limit_type": str(defaults.get("det_limit_type", "max")),
                "Det.limit_side_len": int(defaults.get("det_limit_side_len", 2000)),
                "Det.model_path": str(files.paths[defaults.get("det_model", card.files[0].name)]),
                "Rec.model_path": str(files.paths[defaults.get("rec_model", card.files[1].name)]),
                "Cls.model_path": str(files.paths[defaults.get("cls_model", card.files[2].name)]),
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
            engine = RapidOCR(params=params)
        except (KeyError, IndexError, OSError, ValueError, RuntimeError) as exc:
            raise EngineError(f"could not load {card.id}: {exc}") from exc
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return RapidOcrModel(card, engine, self.estimate_memory(card, files, options))


class RapidOcrModel:
    def __init__(self, card: ModelCard, engine: Any, memory_bytes: int) -> None:
        self.card = card
        self.engine = engine
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()  # RapidOCR keeps per-call state on the instance

    def close(self) -> None:
        self.engine = None

    def ocr(self, request: OcrRequest) -> OcrResult:
        started = time.perf_counter()
        image = decode_image(request.image)
        with self._lock:
            if self.engine is None:
                raise EngineError(f"{self.card.id} was unloaded")
            try:
                output = self.engine(image, text_score=request.min_confidence)
            except Exception as exc:  # RapidOCR raises bare Exceptions of its own
                raise EngineError(f"{self.card.id} failed: {exc}") from exc
        blocks: list[OcrBlock] = []
        if output.boxes is not None and output.txts is not None:
            for box, text, score in zip(output.boxes, output.txts, output.scores, strict=True):
                points = tuple((float(x), float(y)) for x, y in box)
                blocks.append(OcrBlock(text=text, box=points, confidence=float(score)))  # type: ignore[arg-type]
        return OcrResult(
            model=self.card.id,
            blocks=tuple(reading_order(blocks)),
            width=image.width,
            height=image.height,
            total_s=time.perf_counter() - started,
        )
