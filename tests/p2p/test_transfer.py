"""Model distribution between processes on 127.0.0.1: a 200 MB "model" of random bytes."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from p2pkit import (
    BIG_SIZE,
    HERE,
    TERMINUS,
    Processes,
    big_model_card,
    env_for,
    free_port,
    sha256_file,
    wait_for_file,
    write_random_file,
)

from terminus.p2p.reference import parse_reference

MODEL = "bigblob"


@dataclasses.dataclass(frozen=True)
class Swarm:
    source: Path
    sha256: str
    seed_homes: tuple[Path, Path]


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Swarm:
    """Two seeder homes that each cached the same 200 MB model through the verified path."""
    root = tmp_path_factory.mktemp("swarm")
    source = root / "random.bin"
    sha = write_random_file(source, BIG_SIZE)
    homes = (root / "seed-a", root / "seed-b")
    for home in homes:
        big_model_card(home, source, sha, BIG_SIZE)
        done = subprocess.run(
            [*TERMINUS, "pull", MODEL], env=env_for(home), capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()
    return Swarm(source, sha, homes)


def _share(procs: Processes, home: Path, name: str, *extra: str) -> str:
    ref_file = home.parent / f"{name}.ref"
    ref_file.unlink(missing_ok=True)
    proc = procs.start(
        [*TERMINUS, "share", MODEL, "--listen", "127.0.0.1:0", "--ref-file", str(ref_file), *extra],
        home,
        name,
    )
    return wait_for_file(ref_file, proc)


def _helper_seeder(procs: Processes, swarm: Swarm, name: str, *flags: str, genuine: int = 0) -> str:
    """A seeder_helper process over ``swarm.seed_homes[genuine]`` (each keeps its served copy
    in that home: two helpers at once need two homes)."""
    ready = swarm.seed_homes[0].parent / f"{name}.port"
    ready.unlink(missing_ok=True)
    proc = procs.start(
        [
            sys.executable,
            str(HERE / "seeder_helper.py"),
            str(swarm.seed_homes[genuine]),
            MODEL,
            "0",
            str(ready),
            *flags,
        ],
        swarm.seed_homes[0].parent / name,
        name,
    )
    return f"127.0.0.1:{wait_for_file(ready, proc)}"


def _pull(home: Path, ref: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TERMINUS, "pull", MODEL, "--from-peer", ref],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_verified_in_cache(home: Path, sha: str) -> None:
    blob = home / "blobs" / sha
    assert blob.is_file()
    assert sha256_file(blob) == sha
    assert oct(blob.stat().st_mode & 0o777) == oct(0o444)
    leftovers = [p.name for p in (home / "blobs").iterdir() if p.name != sha]
    assert leftovers == []
    assert (home / "models" / MODEL / "weights.bin").resolve() == blob.resolve()
    assert not (home / "p2p" / "staging").exists() or not any((home / "p2p" / "staging").iterdir())


def test_two_seeders_to_one_leecher(swarm: Swarm, procs: Processes, tmp_path: Path) -> None:
    ref_a = parse_reference(_share(procs, swarm.seed_homes[0], "seed-a"))
    ref_b = parse_reference(_share(procs, swarm.seed_homes[1], "seed-b"))
    assert ref_a.info_hash == ref_b.info_hash  # same bytes, same swarm, made independently
    both = ref_a.with_peers(ref_b.peers)
    assert len(both.peers) == 2

    leecher = tmp_path / "leecher"
    done = _pull(leecher, both.format())
    assert done.returncode == 0, done.stderr
    assert "cached and verified" in done.stdout
    _assert_verified_in_cache(leecher, swarm.sha256)
    # The reference carried what the card needs; it is kept, with peers as its source.
    card_text = (leecher / "cards" / f"{MODEL}.toml").read_text()
    assert swarm.sha256 in card_text and 'type = "peer"' in card_text


def test_tampering_seeder_is_dropped(swarm: Swarm, procs: Processes, tmp_path: Path) -> None:
    liar = _helper_seeder(procs, swarm, "liar", "--corrupt")
    # the honest seeder is throttled, so the liar surely serves pieces before it is caught (a
    # fast honest seeder on an idle machine could deliver all 200 MB before the liar's first)
    slow = _helper_seeder(procs, swarm, "honest-slow", "--rate", str(40_000_000), genuine=1)
    honest = parse_reference(_share(procs, swarm.seed_homes[1], "honest"))
    ref = dataclasses.replace(honest, peers=(liar, slow))

    leecher = tmp_path / "leecher"
    done = _pull(leecher, ref.format())
    assert done.returncode == 0, done.stderr
    assert "bad piece(s) rejected" in done.stdout, done.stdout + done.stderr
    assert f"banned {liar}" in done.stdout  # the liar itself is identified and dropped
    _assert_verified_in_cache(leecher, swarm.sha256)


def test_leecher_killed_mid_transfer_resumes(
    swarm: Swarm, procs: Processes, tmp_path: Path
) -> None:
    slow = _helper_seeder(procs, swarm, "slow", "--rate", str(20_000_000))
    honest = parse_reference(_share(procs, swarm.seed_homes[1], "fast"))
    leecher = tmp_path / "leecher"

    first = procs.start(
        [
            *TERMINUS,
            "pull",
            MODEL,
            "--from-peer",
            dataclasses.replace(honest, peers=(slow,)).format(),
        ],
        leecher,
        "leech-1",
    )
    staging = leecher / "p2p" / "staging" / honest.info_hash
    deadline = time.monotonic() + 60
    while not (staging / "resume.dat").exists() or not (staging / swarm.sha256).exists():
        assert first.poll() is None, procs.log("leech-1")
        assert time.monotonic() < deadline, "no resume data written"
        time.sleep(0.1)
    time.sleep(1.5)  # some pieces in, far from all at 20 MB/s
    assert first.poll() is None, procs.log("leech-1")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    # Killed mid-transfer: nothing unverified is visible in the cache.
    blobs = leecher / "blobs"
    assert not (blobs / swarm.sha256).exists()

    done = _pull(leecher, honest.format())
    assert done.returncode == 0, done.stderr
    assert "resumed with" in done.stdout, done.stdout
    resumed = int(done.stdout.split("resumed with ")[1].split()[0])
    assert 0 < resumed < BIG_SIZE
    _assert_verified_in_cache(leecher, swarm.sha256)


def test_http_mirror_is_one_more_source(swarm: Swarm, procs: Processes, tmp_path: Path) -> None:
    """Any Terminus home served over HTTP is a web seed for the same content.

    The only peer is throttled to 2 MB/s (it still hands out the metadata); the
    download finishing well before 100 s, with the mirror logging range requests,
    shows the mirror carried most of the bytes.
    """
    port = free_port()
    server = procs.start(
        [sys.executable, str(HERE / "range_server.py"), str(swarm.seed_homes[1]), str(port)],
        tmp_path / "http",
        "http",
    )
    slow = _helper_seeder(procs, swarm, "slow-peer", "--rate", str(2_000_000))
    ref_text = _share(
        procs,
        swarm.seed_homes[1],
        "mirror-ref",
        "--once",
        "--web-seed",
        f"http://127.0.0.1:{port}/blobs/",
    )
    assert server.poll() is None
    ref = dataclasses.replace(parse_reference(ref_text), peers=(slow,))

    leecher = tmp_path / "leecher"
    done = _pull(leecher, ref.format(), timeout=60)
    assert done.returncode == 0, done.stderr
    _assert_verified_in_cache(leecher, swarm.sha256)
    assert f'"GET /blobs/{swarm.sha256} HTTP/1.1" 206' in procs.log("http")


def test_bad_reference_is_a_clear_error(tmp_path: Path) -> None:
    done = _pull(tmp_path / "home", "magnet:?xt=urn:btih:abc")
    assert done.returncode == 9
    assert done.stderr.startswith("error: not a Terminus model reference")
