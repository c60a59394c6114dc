"""Where llama.cpp's RPC programs live, and how they are built from the PyPI sdist.

The prebuilt ``xllamacpp`` wheel has no RPC backend, so splitting a model needs a llama.cpp
built with ``GGML_RPC=ON``. ``terminus rpc build`` (or :func:`build`) downloads the pinned
``llama-cpp-python`` sdist with pip (it vendors llama.cpp), compiles ``ggml-rpc-server`` and
the static ``llama`` library with CMake and Ninja, and links Terminus's small host program
(``engines/native/rpc_host.cpp``) against it. Nothing of this is needed by the default install.
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
    with tempfile.TemporaryDirectory(prefix="terminus-llama-rpc-") as tmp:
        work = Path(tmp)
        # the sdist of llama-cpp-python only: its build tools (cmake, ninja) come as wheels,
        # where ":all:" would compile CMake itself from source first
        pip = [sys.executable, "-m", "pip", "download", "--no-deps"]
        sdist_only = ["--no-binary", SDIST.split("==")[0]]
        subprocess.run([*pip, *sdist_only, SDIST, "-d", str(work)], check=True)
        (sdist,) = work.glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        build_dir = work / "build"
        flags = ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_RPC=ON"]
        flags += ["-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF"]
        flags += ["-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_UI=OFF"]
        flags += ["-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_APP=OFF"]
        cmake = ["cmake", "-S", str(source), "-B", str(build_dir), "-G", "Ninja", *flags]
        subprocess.run(cmake, check=True)
        parallel = ["-j", str(jobs or os.cpu_count() or 2)]
        subprocess.run(["ninja", "-C", str(build_dir), *parallel, RPC_SERVER, "llama"], check=True)
        libs = [
            build_dir / "src" / "libllama.a",
            build_dir / "ggml" / "src" / "libggml.a",
            build_dir / "ggml" / "src" / "ggml-rpc" / "libggml-rpc.a",
            build_dir / "ggml" / "src" / "libggml-cpu.a",
            build_dir / "ggml" / "src" / "libggml-base.a",
        ]
        includes = ["-I", str(source / "include"), "-I", str(source / "ggml" / "include")]
        host = ["g++", "-O2", "-std=c++17", *includes, str(HOST_SOURCE), "-o", str(out / HOST)]
        subprocess.run([*host, *map(str, libs), "-fopenmp", "-lpthread", "-ldl"], check=True)
        shutil.copy2(build_dir / "bin" / RPC_SERVER, out / RPC_SERVER)
    return out
