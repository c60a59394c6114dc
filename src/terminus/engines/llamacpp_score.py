"""Prompt-token log-probabilities and the tokenizer of a GGUF, from llama.cpp itself.

llama.cpp's server returns probabilities only for the tokens it generates; scoring a
given text (OpenAI's ``echo`` with ``logprobs``, as lm-evaluation-harness asks for its
log-likelihood tasks) needs the log-softmax at every prompt position. A
:class:`PromptScorer` holds its own small llama.cpp context on the same file (the
weights are memory-mapped, so their pages are shared with the serving process) and
decodes the prompt in chunks, keeping one chunk's logits at a time.
"""

from __future__ import annotations

import ctypes as C
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from terminus.engines.llamacpp_native import LogitsModel, library
from terminus.errors import ContextLengthExceededError, InvalidParameterError

#: Positions decoded per call: llama.cpp's default physical batch, so a prompt this long is
#: computed in the same batch shape as its server computes prompts.
CHUNK = 512


@dataclass(frozen=True)
class TokenScore:
    """One prompt token: its text and (after the first) its log-probability given the rest."""

    id: int
    text: str
    logprob: float | None
    top: tuple[tuple[str, float], ...]  # the most likely tokens at this position, best first


@dataclass(frozen=True)
class PromptScores:
    tokens: tuple[TokenScore, ...]
    text: str  # the prompt as text (token-id prompts are detokenized)


_declared: set[int] = set()


def _declare(lib: C.CDLL) -> None:
    if id(lib) in _declared:
        return
    lib.llama_token_to_piece.argtypes = [
        C.c_void_p,
        C.c_int32,
        C.c_char_p,
        C.c_int32,
        C.c_int32,
        C.c_bool,
    ]
    lib.llama_token_to_piece.restype = C.c_int32
    lib.llama_vocab_bos.argtypes = [C.c_void_p]
    lib.llama_vocab_bos.restype = C.c_int32
    lib.llama_vocab_eos.argtypes = [C.c_void_p]
    lib.llama_vocab_eos.restype = C.c_int32
    lib.llama_vocab_get_add_bos.argtypes = [C.c_void_p]
    lib.llama_vocab_get_add_bos.restype = C.c_bool
    lib.llama_model_chat_template.argtypes = [C.c_void_p, C.c_char_p]
    lib.llama_model_chat_template.restype = C.c_char_p
    lib.llama_model_n_ctx_train.argtypes = [C.c_void_p]
    lib.llama_model_n_ctx_train.restype = C.c_int32
    _declared.add(id(lib))


class PromptScorer:
    """Tokenizer and prompt scorer for one GGUF; thread-safe (one call at a time)."""

    def __init__(self, path: Path, *, context: int = 4096, threads: int = 1) -> None:
        _declare(library())
        self._model = LogitsModel(path, context=context, batch=CHUNK, threads=threads)
        self._lib = self._model._lib
        self._vocab = self._model._vocab
        self._lock = threading.Lock()
        self.path = path
        self.context = context
        self.n_vocab = self._model.n_vocab
        self._pieces: dict[int, bytes] = {}
        self._options = _LastPrompt(self._top)

    # -- tokenizer --------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """llama.cpp's tokenization (special tokens written in the text are parsed, as its
        server does); ``add_special`` adds the BOS token where the model wants one."""
        with self._lock:
            return self._model.tokenize(text, add_bos=add_special, parse_special=True)

    def piece(self, token: int) -> bytes:
        """The bytes of one token (special tokens as their text, e.g. ``<|im_end|>``)."""
        cached = self._pieces.get(token)
        if cached is not None:
            return cached
        buf = C.create_string_buffer(64)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = C.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
        piece = buf.raw[:n]
        self._pieces[token] = piece
        return piece

    def detokenize(self, tokens: list[int]) -> str:
        self.check_tokens(tokens)
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def check_tokens(self, tokens: list[int]) -> None:
        bad = [t for t in tokens if not 0 <= t < self.n_vocab]
        if bad:
            raise InvalidParameterError(
                f"token id {bad[0]} is outside this model's vocabulary (0..{self.n_vocab - 1})"
            )

    def special_tokens(self) -> dict[str, str | None]:
        lib = self._lib
        out: dict[str, str | None] = {}
        for name, fn in (("bos_token", lib.llama_vocab_bos), ("eos_token", lib.llama_vocab_eos)):
            token = int(fn(self._vocab))
            out[name] = self.piece(token).decode("utf-8", "replace") if token >= 0 else None
        return out

    def adds_bos(self) -> bool:
        return bool(self._lib.llama_vocab_get_add_bos(self._vocab))

    def chat_template(self) -> str | None:
        raw = self._lib.llama_model_chat_template(self._model._model, None)
        return raw.decode("utf-8", "replace") if raw else None

    def trained_context(self) -> int:
        return int(self._lib.llama_model_n_ctx_train(self._model._model))

    # -- scoring ----------------------------------------------------------------------

    def score(self, tokens: list[int], top: int = 1) -> list[TokenScore]:
        """Every token of ``tokens`` with its log-probability given those before it (the
        first has none), and the ``top`` most likely tokens at each position."""
        if not tokens:
            raise InvalidParameterError("nothing to score: the prompt has no tokens")
        if len(tokens) > self.context:
            raise ContextLengthExceededError(
                f"the prompt has {len(tokens)} tokens; scoring holds at most {self.context}"
            )
        self.check_tokens(tokens)
        with self._lock:
            reused = self._options.answer(tokens, top, self._text)
            if reused is not None:
                return reused
            rows = self._log_softmax_rows(tokens)
            scores = [TokenScore(tokens[0], self._text(tokens[0]), None, ())]
            for i in range(1, len(tokens)):
                row = rows[i - 1]
                scores.append(
                    TokenScore(
                        tokens[i], self._text(tokens[i]), float(row[tokens[i]]), self._top(row, top)
                    )
                )
            self._options.remember(tokens, top, scores, rows[-1] if len(rows) else None)
        return scores

    def _log_softmax_rows(self, tokens: list[int]) -> np.ndarray:
        """Row i: log-probabilities of the token after position i (the last row is unused)."""
        n = len(tokens) - 1
        out = np.empty((max(n, 0), self.n_vocab), dtype=np.float32)
        model = self._model
        model.clear()
        for start in range(0, len(tokens), CHUNK):
            chunk = tokens[start : start + CHUNK]
            logits = model.decode_chunk(chunk, start, want=min(len(chunk), n - start))
            if logits is None:
                continue
            shifted = logits - logits.max(axis=1, keepdims=True)
            shifted -= np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            out[start : start + len(shifted)] = shifted
        return out

    def _top(self, row: np.ndarray, k: int) -> tuple[tuple[str, float], ...]:
        if k <= 0:
            return ()
        k = min(k, row.shape[0])
        best = np.argpartition(row, -k)[-k:]
        best = best[np.argsort(-row[best], kind="stable")]
        return tuple((self._text(int(t)), float(row[t])) for t in best)

    def _text(self, token: int) -> str:
        return self.piece(token).decode("utf-8", errors="replace")

    def forget(self) -> None:
        """Drop the last prompt kept for reuse (the next score is computed afresh)."""
        with self._lock:
            self._options.remember([], -1, [], None)

    def close(self) -> None:
        with self._lock:
            self._model.close()


class _LastPrompt:
    """The last prompt scored, to answer "the same prompt with another last token" exactly.

    Scoring a multiple-choice item asks for its context followed by each option (lm-eval
    sends one request per option). Two prompts of the same length that differ only in their
    last token are computed in the same batches, and each position's row depends only on
    the tokens up to it (causal attention; row-wise kernels), so every row the second one
    needs was computed already, bit for bit: the earlier positions' scores, and the last
    row's full distribution, kept here (tests compare it with a fresh computation on
    SmolLM2 and Qwen2.5). Anything else is computed afresh.
    """

    def __init__(self, top_of: Callable[[np.ndarray, int], tuple[tuple[str, float], ...]]):
        self._top_of = top_of
        self.tokens: list[int] = []
        self.top = -1
        self.scores: list[TokenScore] = []
        self.last_row: np.ndarray | None = None

    def remember(
        self, tokens: list[int], top: int, scores: list[TokenScore], last_row: np.ndarray | None
    ) -> None:
        if last_row is None:
            self.tokens, self.last_row = [], None
            return
        self.tokens, self.top, self.scores = list(tokens), top, scores
        self.last_row = last_row.copy()

    def answer(
        self, tokens: list[int], top: int, text: Callable[[int], str]
    ) -> list[TokenScore] | None:
        if (
            self.last_row is None
            or len(tokens) != len(self.tokens)
            or top > self.top
            or tokens[:-1] != self.tokens[:-1]
        ):
            return None
        kept = [TokenScore(t.id, t.text, t.logprob, t.top[:top]) for t in self.scores[:-1]]
        token = tokens[-1]
        row = self.last_row
        kept.append(TokenScore(token, text(token), float(row[token]), self._top_of(row, top)))
        return kept
