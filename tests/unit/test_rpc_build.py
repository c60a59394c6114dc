"""`terminus rpc build` fetches only llama-cpp-python as source; its build tools come as wheels."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from terminus.errors import EngineError
from terminus.p2p import rpc_binaries


def test_the_sdist_download_compiles_nothing_but_llama_cpp_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def refuse(cmd: list[str], **_: Any) -> None:
        commands.append([str(part) for part in cmd])
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(rpc_binaries.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(rpc_binaries.subprocess, "run", refuse)
    monkeypatch.setenv(rpc_binaries.BIN_ENV, str(tmp_path / "bin"))
    with pytest.raises(EngineError, match="building llama.cpp's RPC programs failed"):
        rpc_binaries.build(tmp_path)
    (download,) = commands
    assert download[download.index("--no-binary") + 1] == "llama-cpp-python"
    # ":all:" would also build CMake and Ninja from source (20+ minutes on 2 cores)
    assert ":all:" not in download
    assert rpc_binaries.SDIST in download


def test_a_host_older_than_its_source_is_relinked_before_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "llama-rpc" / "bin"
    folder.mkdir(parents=True)
    host = folder / rpc_binaries.HOST
    host.write_bytes(b"old")
    host.chmod(0o755)
    monkeypatch.setenv(rpc_binaries.BIN_ENV, str(folder))
    relinked: list[Path] = []
    monkeypatch.setattr(rpc_binaries, "link_host", lambda home: relinked.append(home))
    import os

    os.utime(host, (0, 0))  # older than the source
    assert rpc_binaries.host_binary(tmp_path) == host
    assert relinked == []  # no compiled libraries to link against: used as it is
    (folder.parent / "llama.cpp" / "build").mkdir(parents=True)
    rpc_binaries.host_binary(tmp_path)
    assert relinked == [tmp_path]
    os.utime(host)  # now newer than the source: nothing to do
    rpc_binaries.host_binary(tmp_path)
    assert relinked == [tmp_path]
