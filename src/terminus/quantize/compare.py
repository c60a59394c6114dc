"""Quality of one model against another on the same text, scored by llama.cpp itself.

Both models run through llama.cpp (``LogitsModel``: every position's full
next-token logits), so a quantization is measured exactly as it will run. The
text is cut into windows of ``context`` tokens; in each, every position but the
last predicts the next token. Reported per model: perplexity, mean
KL(reference ‖ model) over the full vocabulary, top-1 agreement with the
reference, and the file size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from terminus.engines.llamacpp_native import LogitsModel
from terminus.errors import InvalidParameterError


@dataclass(frozen=True)
class ModelScore:
    label: str
    path: str
    size_bytes: int
    perplexity: float
    mean_kl: float  # nats, against the reference (0 for the reference itself)
    top1_agreement: float  # share of positions whose argmax equals the reference's
    tokens: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _windows(tokens: list[int], context: int, max_windows: int | None) -> list[list[int]]:
    count = len(tokens) // context
    if max_windows is not None:
        count = min(count, max_windows)
    if count < 1:
        raise InvalidParameterError(
            f"the text has {len(tokens)} tokens; comparing needs at least {context}"
        )
    return [tokens[i * context : (i + 1) * context] for i in range(count)]


def compare_models(
    models: Sequence[tuple[str, Path]],
    text: str,
    *,
    context: int = 256,
    max_windows: int | None = None,
    threads: int = 1,
    on_window: Callable[[str, int, int], None] | None = None,
) -> list[ModelScore]:
    """Score ``models`` (label, GGUF path) on ``text``; the first one is the reference."""
    if len(models) < 2:
        raise InvalidParameterError("compare needs a reference model and at least one other")
    ref_label, ref_path = models[0]
    with LogitsModel(ref_path, context=context, threads=threads) as ref:
        windows = _windows(ref.tokenize(text), context, max_windows)
        ref_logp = []
        for i, window in enumerate(windows):
            ref_logp.append(_log_softmax(ref.logits(window)[:-1]).astype(np.float32))
            if on_window is not None:
                on_window(ref_label, i + 1, len(windows))
        n_vocab = ref.n_vocab
    targets = [np.asarray(w[1:]) for w in windows]
    n_tokens = sum(len(t) for t in targets)
    ref_nll = -sum(
        float(lp[np.arange(len(t)), t].sum()) for lp, t in zip(ref_logp, targets, strict=True)
    )
    scores = [
        ModelScore(
            ref_label,
            str(ref_path),
            ref_path.stat().st_size,
            math.exp(ref_nll / n_tokens),
            0.0,
            1.0,
            n_tokens,
        )
    ]
    for label, path in models[1:]:
        nll = kl = 0.0
        agree = 0
        with LogitsModel(path, context=context, threads=threads) as other:
            if other.n_vocab != n_vocab:
                raise InvalidParameterError(
                    f"{label} has {other.n_vocab} tokens in its vocabulary, "
                    f"the reference {n_vocab}: not comparable"
                )
            for i, (window, lp_ref, target) in enumerate(
                zip(windows, ref_logp, targets, strict=True)
            ):
                lp = _log_softmax(other.logits(window)[:-1])
                nll -= float(lp[np.arange(len(target)), target].sum())
                p_ref = np.exp(lp_ref.astype(np.float64))
                kl += float((p_ref * (lp_ref - lp)).sum())
                agree += int((lp.argmax(-1) == lp_ref.argmax(-1)).sum())
                if on_window is not None:
                    on_window(label, i + 1, len(windows))
        scores.append(
            ModelScore(
                label,
                str(path),
                path.stat().st_size,
                math.exp(nll / n_tokens),
                kl / n_tokens,
                agree / n_tokens,
                n_tokens,
            )
        )
    return scores


def format_table(scores: Sequence[ModelScore]) -> str:
    ref = scores[0].perplexity
    lines = [
        f"{'model':<28} {'size MB':>9} {'PPL':>9} {'ΔPPL %':>8} {'mean KL':>9} {'top-1':>7}",
    ]
    for s in scores:
        lines.append(
            f"{s.label[:28]:<28} {s.size_bytes / 1e6:>9.1f} {s.perplexity:>9.3f} "
            f"{100 * (s.perplexity / ref - 1):>+8.2f} {s.mean_kl:>9.5f} "
            f"{100 * s.top1_agreement:>6.2f}%"
        )
    lines.append(f"({scores[0].tokens} scored tokens; KL and top-1 against {scores[0].label})")
    return "\n".join(lines)


def plot_scores(scores: Sequence[ModelScore], path: Path) -> None:
    """Bar charts of ΔPPL, KL, top-1 and size, one bar per model (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InvalidParameterError(
            "the PNG needs matplotlib", hint="pip install 'terminus-sdk[quantize]'"
        ) from exc
    labels = [s.label for s in scores]
    ref = scores[0].perplexity
    panels = [
        ("perplexity increase (%)", [100 * (s.perplexity / ref - 1) for s in scores]),
        ("mean KL (nats)", [s.mean_kl for s in scores]),
        ("top-1 agreement (%)", [100 * s.top1_agreement for s in scores]),
        ("file size (MB)", [s.size_bytes / 1e6 for s in scores]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.bar(range(len(values)), values, color="#4a78b5")
        ax.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
