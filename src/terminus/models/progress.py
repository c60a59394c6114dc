"""Progress reporting for long work (downloads, hashing), decoupled from any UI."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None, initial: int = 0) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


class TqdmProgress:
    """A byte progress bar on stderr; tqdm is imported only when a bar is shown."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr
        self._bar: Any = None

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        from tqdm import tqdm

        self.finish()
        self._bar = tqdm(
            total=total,
            initial=initial,
            desc=description,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self._stream,
            leave=True,
            dynamic_ncols=True,
        )

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LineProgress:
    """One line on stderr as each phase starts, for logs and pipes where a bar would be noise.

    A download started by ``terminus run`` in a script still says what it is doing.
    """

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        if " " not in description:  # a bare file name: an HTTP download
            description = f"downloading {description}"
        size = f" ({_size(total)})" if total else ""
        resumed = f", resuming at {_size(initial)}" if initial else ""
        print(f"{description}{size}{resumed}…", file=self._stream, flush=True)

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


def terminal_progress() -> Progress:
    """A bar on a terminal, one line per phase otherwise."""
    return TqdmProgress() if sys.stderr.isatty() else LineProgress()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
