"""Neural machine translation with CTranslate2 (Marian / OPUS-MT style models).

A model folder holds ``model.bin`` + ``config.json`` + the vocabularies CTranslate2
wrote (``shared_vocabulary.json`` or ``source_/target_vocabulary.json``) and the
SentencePiece models ``source.spm`` / ``target.spm`` the original Marian model
tokenizes with. The card's ``defaults`` name the language pair(s):

    source = "en"
    targets = ["fr"]                  # one target: a bilingual model
    target_token = ">>{target}<<"     # multi-target models (opus-mt-en-ROMANCE) only

Text is split into sentences (Marian models are trained on sentences) and each
sentence streams out as a content delta as soon as it is translated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.engines.llamacpp import default_threads
from terminus.engines.speech_base import check_loadable, probe_modules
from terminus.engines.text_split import split_sentences
from terminus.errors import EngineError
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types import CancelToken, ChatEvent, ContentDelta, Done, Stats
from terminus.types.common import Capability
from terminus.types.speech import TranslateRequest

#: Sentences longer than this (in characters) are cut at clause marks first.
MAX_SENTENCE_CHARS = 600
DEFAULT_MAX_TOKENS = 512
_WORKING_BYTES = 64 * 1024 * 1024


class CTranslate2NmtEngine:
    name: ClassVar[str] = "nmt-ct2"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TRANSLATE})

    @classmethod
    def probe(cls) -> Availability:
        return probe_modules(
            ("ctranslate2", "sentencepiece"),
            "ctranslate2",
            "Marian/OPUS-MT models on CTranslate2",
            "translate",
        )

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        return sum(p.stat().st_size for p in files.paths.values()) + _WORKING_BYTES

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> NmtModel:
        check_loadable(self.name, self.probe(), card, Capability.TRANSLATE)
        import ctranslate2
        import sentencepiece

        source = card.defaults.get("source")
        targets = card.defaults.get("targets") or card.defaults.get("target")
        if not source or not targets:
            raise EngineError(f"{card.id}: the card's defaults must name source and targets")
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
        for name in ("model.bin", "source.spm", "target.spm"):
            if name not in files.paths:
                raise EngineError(f"{card.id}: a CTranslate2 NMT model needs {name}")
        try:
            translator = ctranslate2.Translator(
                str(files.paths["model.bin"].parent),
                device="cpu",
                compute_type=str(card.defaults.get("compute_type", "default")),
                intra_threads=options.threads or default_threads(),
                inter_threads=1,
            )
            source_sp = sentencepiece.SentencePieceProcessor(
                model_file=str(files.paths["source.spm"])
            )
            target_sp = sentencepiece.SentencePieceProcessor(
                model_file=str(files.paths["target.spm"])
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(f"could not load {card.id}: {exc}") from exc
        return NmtModel(
            card,
            translator,
            source_sp,
            target_sp,
            pairs=tuple((str(source), str(t)) for t in targets),
            target_token=card.defaults.get("target_token") if len(targets) > 1 else None,
            memory_bytes=self.estimate_memory(card, files, options),
        )


class NmtModel:
    def __init__(
        self,
        card: ModelCard,
        translator: Any,
        source_sp: Any,
        target_sp: Any,
        *,
        pairs: tuple[tuple[str, str], ...],
        target_token: str | None,
        memory_bytes: int,
    ) -> None:
        self.card = card
        self.translator = translator
        self.source_sp = source_sp
        self.target_sp = target_sp
        self.pairs = pairs
        self.target_token = target_token
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()

    def close(self) -> None:
        self.translator = None

    def languages(self) -> tuple[tuple[str, str], ...]:
        return self.pairs

    def translate(self, request: TranslateRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        started = time.perf_counter()
        max_tokens = request.max_tokens or int(
            self.card.defaults.get("max_tokens", DEFAULT_MAX_TOKENS)
        )
        prompt_tokens = completion_tokens = 0
        first_delta: float | None = None
        for i, sentence in enumerate(split_sentences(request.text, MAX_SENTENCE_CHARS)):
            if cancel.cancelled:
                yield Done(stop_reason="cancelled")
                return
            tokens = self.source_sp.encode(sentence, out_type=str)
            if self.target_token:
                tokens = [self.target_token.format(target=request.target), *tokens]
            tokens.append("</s>")
            with self._lock:
                if self.translator is None:
                    raise EngineError(f"{self.card.id} was unloaded")
                try:
                    result = self.translator.translate_batch(
                        [tokens],
                        beam_size=int(self.card.defaults.get("beam_size", 4)),
                        max_decoding_length=max_tokens,
                    )[0]
                except (RuntimeError, ValueError) as exc:
                    raise EngineError(f"{self.card.id} failed to translate: {exc}") from exc
            output = result.hypotheses[0]
            prompt_tokens += len(tokens)
            completion_tokens += len(output)
            text = self.target_sp.decode(output).strip()
            if first_delta is None:
                first_delta = time.perf_counter() - started
            yield ContentDelta(text=text if i == 0 else " " + text)
        total = time.perf_counter() - started
        yield Stats(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            time_to_first_token_s=first_delta,
            tokens_per_second=completion_tokens / total if total > 0 else None,
            total_s=total,
        )
        yield Done(stop_reason="stop")
