"""Hugging Face Hub model references and the choice of GGUF files in a repository.

``hf://OWNER/REPO[@REVISION][:QUANT | /PATH/FILE.gguf]`` names a repository and,
optionally, a quantization label or one file. Choosing files is pure logic over the
repository's file list, so it is tested without a network.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from terminus.errors import InvalidParameterError, RemoteModelNotFoundError

HF_PREFIXES = ("hf://", "hf.co/", "huggingface.co/", "https://huggingface.co/", "https://hf.co/")
DEFAULT_QUANT = "Q4_K_M"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_QUANT_RE = re.compile(
    r"(?:^|[-_.])((?:I?Q[1-8](?:_[A-Z0-9]+)*)|BF16|F16|FP16|F32|FP32)(?=$|[-_.])", re.IGNORECASE
)
_SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)

#: Best first. Labels not listed rank by their bit count after these.
QUALITY_ORDER = (
    "F32",
    "BF16",
    "F16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_1",
    "Q5_0",
    "Q4_K_M",
    "Q4_K_S",
    "IQ4_NL",
    "IQ4_XS",
    "Q4_1",
    "Q4_0",
    "Q3_K_L",
    "Q3_K_M",
    "IQ3_M",
    "Q3_K_S",
    "IQ3_XS",
    "IQ3_XXS",
    "Q2_K",
    "IQ2_M",
    "IQ2_XS",
    "IQ2_XXS",
    "IQ1_M",
    "IQ1_S",
)


@dataclass(frozen=True)
class HubRef:
    repo: str
    revision: str | None = None
    quant: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        text = f"hf://{self.repo}"
        if self.revision:
            text += f"@{self.revision}"
        if self.path:
            text += f"/{self.path}"
        elif self.quant:
            text += f":{self.quant}"
        return text


def is_hub_ref(text: str) -> bool:
    return text.strip().lower().startswith(HF_PREFIXES)


def parse_ref(text: str) -> HubRef:
    """``hf://owner/repo``, ``hf://owner/repo:Q8_0``, ``hf://owner/repo/dir/file.gguf``,
    ``hf.co/owner/repo:Q4_K_M`` (Ollama's spelling) or a huggingface.co address."""
    raw = text.strip()
    lowered = raw.lower()
    prefix = next((p for p in HF_PREFIXES if lowered.startswith(p)), None)
    if prefix is None:
        raise InvalidParameterError(f"{text!r} is not a Hub reference", hint="hf://OWNER/REPO")
    rest = raw[len(prefix) :].strip("/")
    parts = rest.split("/")
    if len(parts) < 2:
        raise InvalidParameterError(
            f"{text!r} names no repository", hint="hf://OWNER/REPO[:QUANT|/FILE.gguf]"
        )
    owner, name, *path_parts = parts
    # huggingface.co/OWNER/REPO/blob/REV/FILE or /resolve/REV/FILE addresses
    revision: str | None = None
    if len(path_parts) >= 2 and path_parts[0] in ("blob", "resolve", "tree"):
        revision, path_parts = path_parts[1], path_parts[2:]
    quant: str | None = None
    if not path_parts and ":" in name:
        name, _, quant = name.partition(":")
        quant = quant.strip().upper() or None
    if "@" in name:
        name, _, revision = name.partition("@")
    repo = f"{owner}/{name}"
    if not _REPO_RE.match(repo):
        raise InvalidParameterError(f"{repo!r} is not a Hub repository name")
    path = "/".join(path_parts) or None
    if path is not None and any(p in ("", ".", "..") for p in path.split("/")):
        raise InvalidParameterError(f"{path!r} is not a file path inside a repository")
    return HubRef(repo=repo, revision=revision or None, quant=quant, path=path)


def quant_label(file_name: str) -> str | None:
    """``Qwen3-0.6B-Q4_K_M.gguf`` -> ``Q4_K_M``; None when the name carries no label."""
    stem = file_name.rsplit("/", 1)[-1]
    stem = _SPLIT_RE.sub("", stem)
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    found = _QUANT_RE.findall(stem)
    if not found:
        return None
    label = str(found[-1]).upper()
    return {"FP16": "F16", "FP32": "F32"}.get(label, label)


def quality_rank(label: str | None) -> int:
    """Lower is better; unknown labels after known ones, by bit count."""
    if label in QUALITY_ORDER:
        return QUALITY_ORDER.index(label)
    bits = re.search(r"(\d)", label or "")
    return len(QUALITY_ORDER) + (9 - int(bits.group(1)) if bits else 9)


def is_projector(path: str) -> bool:
    return "mmproj" in path.rsplit("/", 1)[-1].lower()


@dataclass(frozen=True)
class GgufChoice:
    """The files to fetch, in load order: the model (all its parts), then the projector."""

    quant: str | None
    parts: tuple[str, ...]
    projector: str | None

    @property
    def paths(self) -> tuple[str, ...]:
        return self.parts + ((self.projector,) if self.projector else ())


def _split_key(path: str) -> tuple[str, int, int] | None:
    match = _SPLIT_RE.search(path)
    if match is None:
        return None
    return path[: match.start()], int(match.group(1)), int(match.group(2))


def _groups(paths: Iterable[str]) -> dict[str, list[str]]:
    """One entry per model file: a single GGUF, or every part of a split one (in order)."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for path in paths:
        key = _split_key(path)
        if key is None:
            groups[path] = [(1, path)]
        else:
            groups.setdefault(f"{key[0]}-of-{key[2]:05d}", []).append((key[1], path))
    complete: dict[str, list[str]] = {}
    for name, members in groups.items():
        members.sort()
        expected = _split_key(members[0][1])
        count = expected[2] if expected else 1
        if [n for n, _ in members] == list(range(1, count + 1)):
            complete[name] = [p for _, p in members]
    return complete


def choose_gguf(
    ref: HubRef,
    sizes: dict[str, int],
    fits: Callable[[int], bool] = lambda size: True,
) -> GgufChoice:
    """Pick what to fetch from a repository's files (path -> size).

    An explicit file wins (with its other parts when split); else the quantization
    asked for; else ``Q4_K_M``; else the best quality that ``fits`` memory (the smallest
    when none does).
    """
    ggufs = [p for p in sizes if p.lower().endswith(".gguf")]
    projectors = sorted(p for p in ggufs if is_projector(p))
    groups = _groups(p for p in ggufs if not is_projector(p))
    if not groups:
        raise RemoteModelNotFoundError(
            f"{ref.repo} has no GGUF model file",
            hint="for whisper, piper, image or sentence-transformers repositories pass "
            "--kind stt|tts|image|embed-st (kind= in Python)",
        )
    chosen: list[str] | None = None
    if ref.path is not None:
        chosen = next((g for g in groups.values() if ref.path in g), None)
        if chosen is None:
            raise RemoteModelNotFoundError(
                f"{ref.repo} has no GGUF model file {ref.path!r}",
                hint="files: " + ", ".join(sorted(g[0] for g in groups.values())[:8]),
            )
    labelled = {name: quant_label(parts[0]) for name, parts in groups.items()}
    if chosen is None:
        wanted = (ref.quant or DEFAULT_QUANT).upper()
        matches = [n for n, q in labelled.items() if q == wanted]
        if matches:
            chosen = groups[sorted(matches, key=len)[0]]
        elif ref.quant:
            have = sorted({q for q in labelled.values() if q}, key=quality_rank)
            raise RemoteModelNotFoundError(
                f"{ref.repo} has no {ref.quant} GGUF",
                hint="available: " + (", ".join(have) or "unlabelled files only"),
            )
        else:
            chosen = groups[_best_fitting(groups, labelled, sizes, fits)]
    quant = quant_label(chosen[0])
    return GgufChoice(quant, tuple(chosen), _projector_for(projectors, quant))


def _best_fitting(
    groups: dict[str, list[str]],
    labelled: dict[str, str | None],
    sizes: dict[str, int],
    fits: Callable[[int], bool],
) -> str:
    def size(name: str) -> int:
        return sum(sizes[p] for p in groups[name])

    ranked = sorted(groups, key=lambda n: (quality_rank(labelled[n]), size(n)))
    fitting = [n for n in ranked if fits(size(n))]
    return fitting[0] if fitting else min(groups, key=size)


def _projector_for(projectors: list[str], quant: str | None) -> str | None:
    """The vision projector to fetch with the model: the same type, else F16, else any."""
    if not projectors:
        return None
    for label in (quant, "F16", "BF16", "Q8_0"):
        for path in projectors:
            if label and quant_label(path) == label:
                return path
    return projectors[0]
