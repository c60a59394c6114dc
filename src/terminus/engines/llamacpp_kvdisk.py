"""Prompt KV snapshots on disk: a long shared prefix is computed once, across restarts.

After a chat request whose prompt is long (``MIN_PROMPT_TOKENS`` or more), the slot's
KV state is saved to disk, keyed by the messages before the last one (the system
prompt, a RAG context, the conversation so far). A later request with the same
messages before its last one, in this process or any later one, restores that state
into its slot first: llama.cpp then computes only the new tail of the prompt.

Every snapshot is verified before it is loaded, never trusted by its name:

- the folder is named by a fingerprint of the model file's sha256, the engine build
  and the chat template's hash (and the context per slot); the snapshot's metadata
  repeats them and must match the loaded model's, field by field;
- the metadata records the snapshot's own sha256, checked before each restore.

A mismatch is refused (counted in ``stats["refused"]``) and the files deleted. Writes
are atomic: llama.cpp writes under a temporary name, the host hashes it, then the
metadata appears with one ``os.replace`` and is the only way to find a snapshot, so a
half-written file is never valid. The folder is bounded by a byte budget; the least
recently used snapshots go first. llama.cpp saves and restores through its own HTTP
API (``/slots/0?action=save|restore``), which the worker's server answers on loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from terminus.engines.base import LoadOptions
from terminus.errors import InvalidModelFileError, InvalidParameterError
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.models.gguf import validate_gguf

KV_DISK_KEY = "kv_disk_cache"  # load option / card default: True, or a budget in MiB
KV_DISK_DIR_KEY = "kv_disk_dir"  # set by the runtime: TERMINUS_HOME/kv
DEFAULT_BUDGET_MIB = 1024
MIN_PROMPT_TOKENS = 256
SLOT = 0  # requests with a cached prefix run in this slot, where the state is restored
TIMEOUT_S = 60.0
STALE_TMP_S = 3600.0  # a temporary file this old belongs to no save in progress
_META = ".json"
_DATA = ".kv"


@dataclass(frozen=True)
class Identity:
    """What a snapshot was computed with; all of it must match for a restore."""

    model_sha256: str
    engine_build: str
    template_sha256: str
    context: int

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def budget_mib(value: Any) -> int:
    """The byte budget asked for: True is the default, a number is MiB, False/0 is off."""
    if value is None or value is False:
        return 0
    if value is True:
        return DEFAULT_BUDGET_MIB
    if isinstance(value, int) and value >= 0:
        return value
    raise InvalidParameterError(
        f"{KV_DISK_KEY} must be true, false or a budget in MiB, not {value!r}"
    )


def template_sha256(template: str | None) -> str:
    return hashlib.sha256((template or "").encode()).hexdigest()


def prefix_id(messages: list[dict[str, Any]]) -> str:
    """The key of a request's shared prefix: every message before its last one."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:32]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class KVDiskCache:
    """One model's snapshot folder: lookup, verified restore, atomic save, LRU eviction."""

    def __init__(self, root: Path, identity: Identity, budget_bytes: int) -> None:
        self.identity = identity
        self.folder = root / identity.fingerprint()[:24]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.budget_bytes = budget_bytes
        self.stats = {"saved": 0, "restored": 0, "refused": 0, "evicted": 0}
        self.in_slot: str | None = None  # the prefix whose state slot SLOT holds now
        self._address: str | None = None  # the worker that slot belongs to
        self._lock = threading.Lock()
        # llama.cpp's HTTP API in the worker is on loopback; the key keeps other local
        # processes from driving it (its /slots endpoints write and read snapshot files).
        self.api_key = secrets.token_urlsafe(24)

    @property
    def slot_save_path(self) -> str:
        """What llama.cpp prepends to a file name (it joins without a separator)."""
        return str(self.folder) + os.sep

    # -- reading -----------------------------------------------------------------

    def verified(self, prefix: str) -> str | None:
        """The snapshot's file name if one exists and checks out; a bad one is deleted."""
        meta_path = self.folder / (prefix + _META)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self._refuse(meta_path, None)
            return None
        data = self.folder / str(meta.get("file", ""))
        expected = asdict(self.identity)
        if (
            {k: meta.get(k) for k in expected} != expected
            or meta.get("prefix") != prefix
            or data.parent != self.folder
            or not data.is_file()
            or _file_sha256(data) != meta.get("sha256")
        ):
            self._refuse(meta_path, data)
            return None
        os.utime(meta_path)  # recently used: evicted last
        return data.name

    def restore(self, address: str | None, prefix: str) -> bool:
        """Load the prefix's verified snapshot into the slot; False if there is none."""
        if address is None:
            return False
        with self._lock:
            if address != self._address:  # a new worker (after a crash): its slot is empty
                self.in_slot, self._address = None, address
            if self.in_slot == prefix:
                return True
            name = self.verified(prefix)
            if name is None:
                return False
            try:
                _post(address, "restore", name, self.api_key)
            except OSError:
                return False  # the slot is busy or the file went away: compute afresh
            self.in_slot = prefix
            self.stats["restored"] += 1
            return True

    # -- writing -----------------------------------------------------------------

    def save(self, address: str | None, prefix: str, prompt_tokens: int) -> bool:
        """Snapshot the slot after a request that started with ``prefix``."""
        if address is None or prompt_tokens < MIN_PROMPT_TOKENS:
            return False
        with self._lock:
            if (self.folder / (prefix + _META)).exists():
                self.in_slot = prefix
                return False
            name = f"{prefix}-{uuid.uuid4().hex[:8]}{_DATA}"
            temporary = f"tmp-{name}"
            try:
                _post(address, "save", temporary, self.api_key)
                data = self.folder / name
                os.replace(self.folder / temporary, data)
                meta = {
                    **asdict(self.identity),
                    "prefix": prefix,
                    "file": name,
                    "sha256": _file_sha256(data),
                    "bytes": data.stat().st_size,
                    "prompt_tokens": prompt_tokens,
                }
                _write_atomically(self.folder / (prefix + _META), json.dumps(meta))
            except OSError:
                (self.folder / temporary).unlink(missing_ok=True)
                return False
            self.in_slot = prefix
            self.stats["saved"] += 1
            self._evict()
            return True

    def _evict(self) -> None:
        """Drop the least recently used snapshots (and orphans) beyond the byte budget."""
        metas = sorted(self.folder.glob("*" + _META), key=lambda p: p.stat().st_mtime)
        live = set()
        total = 0
        sizes: list[tuple[Path, Path, int]] = []
        for meta_path in metas:
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            data = self.folder / str(meta.get("file", ""))
            live.add(data.name)
            size = data.stat().st_size if data.is_file() else 0
            sizes.append((meta_path, data, size))
            total += size
        stale = time.time() - STALE_TMP_S
        for path in self.folder.glob("*" + _DATA):
            if path.name.startswith("tmp-"):
                if path.stat().st_mtime < stale:
                    path.unlink(missing_ok=True)  # a save that never finished
            elif path.name not in live:
                path.unlink(missing_ok=True)  # left by a crash between rename and metadata
        for meta_path, data, size in sizes:
            if total <= self.budget_bytes:
                break
            meta_path.unlink(missing_ok=True)  # first: the snapshot is gone at once
            data.unlink(missing_ok=True)
            total -= size
            self.stats["evicted"] += 1
            if self.in_slot == meta_path.stem:
                self.in_slot = None

    def _refuse(self, meta_path: Path, data: Path | None) -> None:
        self.stats["refused"] += 1
        meta_path.unlink(missing_ok=True)
        if data is not None and data.parent == self.folder and data.is_file():
            data.unlink(missing_ok=True)

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*" + _DATA))


def kv_disk_cache_for(
    card: ModelCard,
    files: ModelFiles,
    options: LoadOptions,
    template: str | None,
    context: int,
    engine_build: str,
) -> KVDiskCache | None:
    """The model's snapshot folder, when the load or the card asks for one."""
    budget = budget_mib(options.extra.get(KV_DISK_KEY, card.defaults.get(KV_DISK_KEY)))
    folder = options.extra.get(KV_DISK_DIR_KEY)
    if not budget or folder is None:
        return None
    sha256 = next((f.sha256 for f in card.files if f.name == files.main.name), None)
    if sha256 is None:
        raise InvalidModelFileError(f"{card.id}: {files.main.name} has no pinned sha256")
    identity = Identity(
        model_sha256=sha256,
        engine_build=engine_build,
        template_sha256=template_sha256(template or validate_gguf(files.main).chat_template),
        context=context,
    )
    return KVDiskCache(Path(str(folder)), identity, budget * (1 << 20))


def _post(address: str, action: str, filename: str, api_key: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{address}/slots/{SLOT}?action={action}",
        data=json.dumps({"filename": filename}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(request, timeout=TIMEOUT_S) as response:
        result: dict[str, Any] = json.load(response)
    return result


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f"tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
