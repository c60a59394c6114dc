"""The resident server of a Terminus home: where ``terminus serve --detach`` says it listens.

``TERMINUS_HOME/server/resident.json`` holds its pid, host and port. A server is
reused only when it is alive, on loopback, and answers ``/terminus/v1/server``
with the same pid and the same home, so a stale file or another user's server on
the port is never talked to. ``TERMINUS_NO_SERVER=1`` turns the reuse off.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from terminus.paths import NO_SERVER_ENV, RESIDENT_FILE

if TYPE_CHECKING:  # imported where used: a command with no server running never needs it
    import httpx

LOG_FILE = Path("server") / "server.log"


@dataclass(frozen=True)
class Resident:
    pid: int
    host: str
    port: int
    home: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def resident_path(home: Path) -> Path:
    return home / RESIDENT_FILE


def log_path(home: Path) -> Path:
    return home / LOG_FILE


def server_disabled() -> bool:
    return os.environ.get(NO_SERVER_ENV, "").lower() in ("1", "true", "yes", "on")


def write_resident(home: Path, resident: Resident) -> None:
    """Atomically: a reader never sees half a file."""
    path = resident_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_text(json.dumps(asdict(resident)), encoding="utf-8")
    os.replace(partial, path)


def read_resident(home: Path) -> Resident | None:
    try:
        data = json.loads(resident_path(home).read_text(encoding="utf-8"))
        return Resident(
            pid=int(data["pid"]), host=str(data["host"]), port=int(data["port"]),
            home=str(data["home"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_resident(home: Path, pid: int) -> None:
    """Remove the file if it still names ``pid`` (a newer server may have replaced it)."""
    found = read_resident(home)
    if found is not None and found.pid == pid:
        resident_path(home).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key() -> str | None:
    """The key the CLI sends to its server: the first of ``TERMINUS_API_KEYS``."""
    keys = [k.strip() for k in os.environ.get("TERMINUS_API_KEYS", "").split(",")]
    return next((k for k in keys if k), None)


def loopback_http(timeout: float | None = None) -> httpx.Client:
    """An HTTP client for a server on this machine (plain HTTP).

    Its TLS context is empty (it trusts nothing), which spares loading the CA bundle,
    a noticeable part of a short command's start-up; it is never used for http://.
    """
    import httpx

    key = api_key()
    return httpx.Client(
        verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
        headers={"Authorization": f"Bearer {key}"} if key else None,
        timeout=httpx.Timeout(connect=5.0, read=timeout, write=60.0, pool=None),
    )


def find_resident(
    home: Path, timeout: float = 1.0, http: httpx.Client | None = None
) -> Resident | None:
    """The live resident server of ``home``, or ``None`` (no file, dead, or not ours)."""
    import httpx

    found = read_resident(home)
    if found is None or not _loopback(found.host) or not pid_alive(found.pid):
        return None
    own = http is None
    client = http or loopback_http()
    try:
        reply = client.get(f"{found.url}/terminus/v1/server", timeout=timeout)
        facts = reply.json()
    except (httpx.HTTPError, ValueError):
        return None
    finally:
        if own:
            client.close()
    if reply.status_code != 200 or not isinstance(facts, dict):
        return None
    if facts.get("pid") != found.pid:
        return None
    if Path(str(facts.get("home"))).resolve() != home.resolve():
        return None
    return found
