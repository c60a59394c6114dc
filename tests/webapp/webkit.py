"""Helpers for the web app's browser tests (a module of its own: every test folder has a
conftest, so tests import these by this module's name)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

KEY = "sk-terminus-webapp"
SHOTS = Path(
    os.environ.get("TERMINUS_UI_SHOTS") or Path(tempfile.gettempdir()) / "terminus-ui-shots"
)


@dataclass(frozen=True)
class LiveServer:
    url: str
    home: Path
    log: Path

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
        )


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
