"""A GGUF with a valid header and garbage tensor data is refused by `models add`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from realmodel import make_client

from terminus.errors import CorruptTensorDataError
from terminus.models.gguf import validate_gguf
from terminus.models.gguf_sanity import check_tensor_data

pytestmark = pytest.mark.real


def _with_data(smollm2_gguf: Path, target: Path, fill: str) -> Path:
    """The SmolLM2 file with its header kept and its tensor data replaced."""
    header = validate_gguf(smollm2_gguf)
    shutil.copyfile(smollm2_gguf, target)
    size = target.stat().st_size - header.data_offset
    with target.open("r+b") as fh:
        fh.seek(header.data_offset)
        if fill == "random":
            rng = np.random.default_rng(5)
            fh.write(rng.integers(0, 256, size=size, dtype=np.uint8).tobytes())
        else:
            fh.write(bytes(size))
    validate_gguf(target)  # still a complete, valid GGUF as far as the header goes
    return target


def test_the_real_model_passes(smollm2_gguf: Path) -> None:
    check_tensor_data(smollm2_gguf, validate_gguf(smollm2_gguf))


@pytest.mark.parametrize("fill", ["random", "zeros"])
def test_garbage_tensor_data_is_refused_before_anything_is_written(
    smollm2_gguf: Path, tmp_path: Path, fill: str
) -> None:
    bad = _with_data(smollm2_gguf, tmp_path / "bad.gguf", fill)
    client = make_client(tmp_path / "home")
    try:
        with pytest.raises(CorruptTensorDataError, match="no checksum|corrupt|repeated byte"):
            client.models.add(bad)
        blobs = client.home / "blobs"
        assert not blobs.exists() or not any(blobs.iterdir())
        assert all(not card.user_added for card in client.catalog.all())
    finally:
        client.close()


def test_cli_add_says_gguf_has_no_tensor_checksum(smollm2_gguf: Path, tmp_path: Path) -> None:
    env = dict(os.environ, TERMINUS_HOME=str(tmp_path / "home"))
    cli = [sys.executable, "-m", "terminus.cli.main", "models", "add"]
    good = subprocess.run(
        [*cli, str(smollm2_gguf), "--id", "mine"], env=env, capture_output=True, text=True
    )
    assert good.returncode == 0, good.stderr
    assert "no checksum for tensor data" in good.stderr
    bad = _with_data(smollm2_gguf, tmp_path / "bad.gguf", "random")
    refused = subprocess.run([*cli, str(bad)], env=env, capture_output=True, text=True)
    assert refused.returncode == 4
    assert "NaN or infinite" in refused.stderr
