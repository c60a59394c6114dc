"""A corrupted cached model is never loaded (real SmolLM2 GGUF, real CLI runs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from realmodel import MODEL, make_client

from terminus.errors import ChecksumMismatchError

pytestmark = pytest.mark.real

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
TERMINUS = [sys.executable, "-m", "terminus.cli.main"]


def _flip_keeping_mtime(blob: Path) -> None:
    """One bit flipped in the middle; size and mtime put back as they were."""
    st = blob.stat()
    blob.chmod(0o644)
    with blob.open("r+b") as fh:
        fh.seek(st.st_size // 3)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x01]))
    blob.chmod(0o444)
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (blob.stat().st_size, blob.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TERMINUS_HOME=str(home), TERMINUS_THREADS="1")
    return subprocess.run(
        [*TERMINUS, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_run_refetches_a_corrupt_blob_instead_of_loading_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        assert _cli(home, "models", "pull", MODEL).returncode == 0
        blob = home / "blobs" / SMOLLM2_SHA256
        _flip_keeping_mtime(blob)
        run = _cli(home, "run", "-m", MODEL, "--max-tokens", "4", "Say hi")
        assert run.returncode == 0, run.stderr
        assert "is corrupt" in run.stderr and "fetching it again" in run.stderr
        # What was loaded is the verified blob fetched again from the installed package.
        assert _sha256(blob) == SMOLLM2_SHA256
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_corrupt_blob_without_a_source_is_an_error_not_a_load(
    smollm2_gguf: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    own = tmp_path / "mine.gguf"
    shutil.copyfile(smollm2_gguf, own)
    client = make_client(home)
    try:
        card = client.models.add(own, model_id="mine")
        own.unlink()  # the card's only source is gone
        blob = home / "blobs" / card.files[0].sha256
        _flip_keeping_mtime(blob)
        with pytest.raises(ChecksumMismatchError, match="is corrupt") as info:
            client.load_model("mine", context_length=256, parallel=1)
        assert "fetching it again failed" in info.value.message
        assert client.loaded_models() == []
        assert not blob.exists()  # removed: nothing can load it later either

        # The same from the command line: exit code 5 (checksum), no answer.
        client.cache.import_path(smollm2_gguf)  # the blob back, verified
        _flip_keeping_mtime(blob)
        run = _cli(home, "run", "-m", "mine", "--max-tokens", "4", "Say hi")
        assert run.returncode == 5, run.stderr
        assert "is corrupt" in run.stderr and run.stdout == ""
    finally:
        client.close()
        shutil.rmtree(home, ignore_errors=True)
