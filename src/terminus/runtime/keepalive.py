"""Idle time-to-live of loaded models, with Ollama's ``keep_alive`` semantics.

A duration is a number of seconds or a Go-style string (``"5m"``, ``"1h30m"``,
``"90s"``); a negative value keeps the model loaded until it is unloaded
explicitly, ``0`` unloads it as soon as its last request ends. Internally a
duration is a float of seconds, ``math.inf`` meaning "forever".

``Reaper`` is the timer: one daemon thread per manager that sleeps until the
next model's expiry (or until woken by a change) and asks the manager to unload
what has expired. The manager owns the decisions; the reaper only keeps time.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable

from terminus.errors import InvalidParameterError

#: Ollama's default: a model idle for five minutes is unloaded.
DEFAULT_SERVER_KEEP_ALIVE_S = 300.0
FOREVER = math.inf

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_keep_alive(value: float | int | str | None) -> float | None:
    """Seconds (``math.inf`` for "forever"), or ``None`` when ``value`` is ``None``.

    Raises ``InvalidParameterError`` for anything that is not a duration.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidParameterError(f"keep_alive {value!r} is not a duration")
    seconds = float(value) if isinstance(value, int | float) else _parse_text(value)
    if math.isnan(seconds):
        raise InvalidParameterError("keep_alive must be a number of seconds or a duration")
    return FOREVER if seconds < 0 else seconds


def _parse_text(text: str) -> float:
    raw = text.strip()
    try:
        return float(raw)  # "300", "-1"
    except ValueError:
        pass
    sign = -1.0 if raw.startswith("-") else 1.0
    body = raw.lstrip("+-")
    total, position = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise InvalidParameterError(
            f"keep_alive {text!r} is not a duration",
            hint='use seconds (300), a duration ("5m", "1h30m"), 0 to unload at once '
            "or -1 to keep loaded",
        )
    return sign * total


def describe_keep_alive(seconds: float) -> str:
    """A duration as people write it: ``forever``, ``0s``, ``5m``, ``1h30m``, ``90.5s``."""
    if math.isinf(seconds):
        return "forever"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s"]
    if secs == 0 and whole:
        parts[2] = ""
    return "".join(parts)


class Reaper:
    """A daemon thread calling ``expire()`` whenever the next deadline passes.

    ``expire`` unloads what has expired and returns the seconds until the next
    deadline (``None``: nothing pending). ``wake()`` makes it look again at once,
    after a model was used, released or given a new keep-alive.
    """

    def __init__(self, expire: Callable[[], float | None]) -> None:
        self._expire = expire
        self._changed = threading.Condition()
        self._stopped = False
        self._pending = False  # a wake not yet seen by the thread
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        with self._changed:
            if self._stopped:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="terminus-keep-alive", daemon=True
                )
                self._thread.start()
            self._pending = True
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            wait = self._expire()
            with self._changed:
                if self._stopped:
                    return
                if not self._pending:  # a wake during expire() is not lost
                    self._changed.wait(timeout=None if wait is None else max(wait, 0.01))
                self._pending = False
                if self._stopped:
                    return
