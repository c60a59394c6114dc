"""Where llama.cpp's RPC programs live, and how they are built from the PyPI sdist.

The prebuilt ``xllamacpp`` wheel has no RPC backend, so splitting a model needs a llama.cpp
built with ``GGML_RPC=ON``. ``terminus rpc build`` (or :func:`build`) downloads the pinned
``llama-cpp-python`` sdist with pip (it vendors llama.cpp), compiles ``ggml-rpc-server`` and
the static ``llama`` library with CMake and Ninja, and links Terminus's small host program
(``engines/native/rpc_host.cpp``) against it. The compiled libraries stay beside the programs,
so an interrupted build resumes and a changed host relinks in seconds. Nothing of this is
needed by the default install.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from terminus.errors import EngineError, EngineUnavailableError

SDIST = "llama-cpp-python==0.3.36"
BIN_ENV = "TERMINUS_LLAMA_RPC_BIN"
RPC_SERVER = "ggml-rpc-server"
HOST = "terminus-rpc-host"
HOST_SOURCE = Path(__file__).parents[1] / "engines" / "native" / "rpc_host.cpp"


def bin_dir(home: Path) -> Path:
    return Path(os.environ.get(BIN_ENV) or home / "engines" / "llama-rpc" / "bin")


def binary(home: Path, name: str) -> Path:
    path = bin_dir(home) / name
    if not os.access(path, os.X_OK):
        raise EngineUnavailableError(
            f"llama.cpp's RPC programs are not built ({path} is missing)",
            hint=f"run `terminus rpc build` (compiles {SDIST} with GGML_RPC=ON), "
            f"or point {BIN_ENV} at a folder holding {RPC_SERVER} and {HOST}",
        )
    return path


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(home: Path, jobs: int | None = None) -> Path:
    """Compile the RPC server and the host into ``bin_dir(home)``; returns that folder."""
    try:
        return _build(home, jobs)
    except subprocess.CalledProcessError as exc:
        raise EngineError(
            f"building llama.cpp's RPC programs failed: {' '.join(map(str, exc.cmd[:3]))}… "
            f"exited with {exc.returncode}",
            hint="its output is above; cmake, ninja and a C++17 compiler are needed",
        ) from exc


def _build(home: Path, jobs: int | None) -> Path:
    for tool in ("cmake", "ninja", "g++"):
        if shutil.which(tool) is None:
            raise EngineUnavailableError(
                f"building llama.cpp needs {tool}", hint="pip install cmake ninja; apt install g++"
            )
    out = bin_dir(home)
    out.mkdir(parents=True, exist_ok=True)
    work = out.parent / "llama.cpp"
    source = _fetch_source(work)
    build_dir = work / "build"
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_RPC=ON"]
    flags += ["-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF"]
    flags += ["-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_UI=OFF"]
    flags += ["-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_APP=OFF"]
    cmake = ["cmake", "-S", str(source), "-B", str(build_dir), "-G", "Ninja", *flags]
    subprocess.run(cmake, check=True)
    # ninja resumes where an interrupted build stopped
    parallel = ["-j", str(jobs or os.cpu_count() or 2)]
    subprocess.run(["ninja", "-C", str(build_dir), *parallel, RPC_SERVER, "llama"], check=True)
    _replace_atomically(build_dir / "bin" / RPC_SERVER, out / RPC_SERVER, copy=True)
    link_host(home)
    return out


def _fetch_source(work: Path) -> Path:
    """llama.cpp's source as vendored in the pinned sdist, unpacked once into ``work``."""
    found = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"), None)
    if found is not None and (work / "unpacked").exists():
        return found
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="terminus-llama-rpc-", dir=work) as tmp:
        # the sdist of llama-cpp-python only: its build tools (cmake, ninja) come as wheels,
        # where ":all:" would compile CMake itself from source first
        pip = [sys.executable, "-m", "pip", "download", "--no-deps"]
        sdist_only = ["--no-binary", SDIST.split("==")[0]]
        subprocess.run([*pip, *sdist_only, SDIST, "-d", tmp], check=True)
        (sdist,) = Path(tmp).glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
    (work / "unpacked").touch()
    return next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))


def link_host(home: Path) -> Path:
    """Link Terminus's host program against the llama.cpp libraries ``build`` compiled.

    Seconds, not minutes: a Terminus upgrade that changes the host relinks it on first use.
    """
    out = bin_dir(home)
    work = out.parent / "llama.cpp"
    source = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"), None)
    build_dir = work / "build"
    libs = [
        build_dir / "src" / "libllama.a",
        build_dir / "ggml" / "src" / "libggml.a",
        build_dir / "ggml" / "src" / "ggml-rpc" / "libggml-rpc.a",
        build_dir / "ggml" / "src" / "libggml-cpu.a",
        build_dir / "ggml" / "src" / "libggml-base.a",
    ]
    if source is None or not all(lib.exists() for lib in libs):
        raise EngineUnavailableError(
            "llama.cpp's libraries are not built", hint="run `terminus rpc build`"
        )
    includes = ["-I", str(source / "include"), "-I", str(source / "ggml" / "include")]
    staging = out / f".{HOST}.{os.getpid()}.tmp"
    host = ["g++", "-O2", "-std=c++17", *includes, str(HOST_SOURCE), "-o", str(staging)]
    try:
        subprocess.run([*host, *map(str, libs), "-fopenmp", "-lpthread", "-ldl"], check=True)
        _replace_atomically(staging, out / HOST, copy=False)
    finally:
        staging.unlink(missing_ok=True)
    return out / HOST


def host_binary(home: Path) -> Path:
    """The host program, relinked first when its source is newer than the binary."""
    path = binary(home, HOST)
    if (
        path.stat().st_mtime < HOST_SOURCE.stat().st_mtime
        and (bin_dir(home).parent / "llama.cpp" / "build").exists()
    ):
        try:
            link_host(home)
        except (subprocess.CalledProcessError, OSError) as exc:
            raise EngineError(
                f"relinking {HOST} after an upgrade failed: {exc}",
                hint="run `terminus rpc build` again",
            ) from exc
    return path


def _replace_atomically(source: Path, target: Path, *, copy: bool) -> None:
    """A half-written program never appears under its real name."""
    if copy:
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copy2(source, staging)
        source = staging
    os.replace(source, target)
