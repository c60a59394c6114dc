"""How many threads llama.cpp runs in the worker, and how they wait, chosen by how busy the
machine is when the worker starts.

The xllamacpp wheel runs ggml's threads through OpenMP (libgomp), and ggml's barrier between
two operations is an OpenMP barrier, where libgomp spins (up to 300,000 turns) before it
sleeps. Measured on 2 cores with SmolLM2, decode tok/s of 2 threads (docs/benchmarks.md):

- libgomp's default spin: quiet 98–111; beside 1 busy process 29–40; beside 6: 2.5.
- a short spin (``GOMP_SPINCOUNT`` 300): quiet 97–105; 1 busy 39; 6 busy 15.
- sleeping at once (``OMP_WAIT_POLICY=PASSIVE``): quiet 37–41; 1 busy 44–52; 6 busy 23.
- one thread instead: quiet 56–69; 1 busy 63–76; 6 busy 16–18.

No single policy serves both cases: on a quiet machine the barriers of a small model come
so fast that sleeping at each costs 60 % of the speed; beside a busy process a spinning thread
holds the core its partner needs. So the worker is told what the machine looks like at its
start: runnable tasks other than this one, averaged over a few samples of ``/proc/loadavg``
(a spinning neighbour reads as 1.0, a quiet machine as 0–0.1), scaled to the share of the
machine's CPUs this process may use. Quiet: every core and a short spin. Busy: only the cores left free (at least one), waiting passively. One reading serves a
whole start-up (the worker's environment and its thread count agree). A user's own
``OMP_WAIT_POLICY`` / ``GOMP_SPINCOUNT`` and thread count are kept as given. The thread count
is fixed per llama.cpp context (the xllamacpp server offers no way to change it), so when the
machine changes after a load, :class:`ThreadTuner` replaces the idle worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
SPIN_COUNT_ENV = "GOMP_SPINCOUNT"
SHORT_SPIN = "300"  # turns before sleeping: quiet 97 tok/s, where sleeping at once made 37
BUSY_AT = 0.5  # other runnable tasks (averaged) from which the machine counts as busy
SAMPLES = 16
SAMPLE_GAP_S = 0.0002
REUSE_S = 2.0  # one reading serves a start-up: the worker's spawn and its load agree

_reading: list[tuple[float, float]] = []  # (when, busy)


def busy_elsewhere() -> float:
    """Runnable tasks besides the caller, averaged over a few quick samples (Linux; else 0)."""
    now = time.monotonic()
    if _reading and now - _reading[0][0] < REUSE_S:
        return _reading[0][1]
    total = 0
    try:
        for i in range(SAMPLES):
            with open("/proc/loadavg", encoding="ascii") as fh:
                running = fh.read().split()[3].split("/")[0]
            total += max(0, int(running) - 1)  # the reading thread is one of them
            if i + 1 < SAMPLES:
                time.sleep(SAMPLE_GAP_S)
    except (OSError, ValueError, IndexError):
        return 0.0
    busy = total / SAMPLES
    _reading[:] = [(now, busy)]
    return busy


def busy_here(busy: float) -> float:
    """Of ``busy`` runnable tasks on the whole machine, the share expected on the CPUs this
    process may use (a container pinned to 2 of 64 CPUs sees every task of the host)."""
    total = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    return busy * min(usable, total) / total


def threads_for(cores: int, busy: float | None = None) -> int:
    """llama.cpp threads on ``cores`` when the user chose none: the cores left free."""
    busy = busy_here(busy_elsewhere() if busy is None else busy)
    if busy < BUSY_AT:
        return cores
    return max(1, cores - round(busy))


def worker_environment(base: Mapping[str, str], busy: float | None = None) -> dict[str, str]:
    """``base`` with the wait policy the worker's llama.cpp threads should use."""
    env = dict(base)
    if WAIT_POLICY_ENV in env or SPIN_COUNT_ENV in env:
        return env  # the user's choice
    busy = busy_here(busy_elsewhere() if busy is None else busy)
    if busy < BUSY_AT:
        env[SPIN_COUNT_ENV] = SHORT_SPIN
    else:
        env[WAIT_POLICY_ENV] = "PASSIVE"
    return env


def fresh_reading() -> float:
    """A new reading, kept as the one the next worker's start-up uses."""
    _reading.clear()
    return busy_elsewhere()


def with_threads(assignments: list[tuple[str, Any]], threads: int) -> list[tuple[str, Any]]:
    """``assignments`` with every llama.cpp thread count (model, batch, draft) set to ``threads``."""
    return [(k, threads if k.endswith("n_threads") else v) for k, v in assignments]


class ThreadTuner:
    """Follows the machine after a load, for a model whose threads Terminus chose.

    The worker's thread count and wait policy are fixed for its life, so when the machine
    changes (a busy neighbour starts, or stops) the worker is replaced between requests:
    at most every ``RECHECK_S`` seconds, when none of the model's requests is running (its
    own threads would count as the machine's), and only after ``CONFIRM`` readings in a row
    disagree with what the worker runs, so that a short burst of other work does not cost a
    reload. The next request then loads the model in a worker set up for the new reading.
    """

    RECHECK_S = 15.0
    CONFIRM = 2

    def __init__(self, cores: int, busy: float) -> None:
        self.cores = cores
        self.current = self.plan(busy)
        self._checked = time.monotonic()
        self._disagreeing = 0

    def plan(self, busy: float) -> tuple[int, bool]:
        """(threads, waiting passively) for a reading."""
        return threads_for(self.cores, busy), busy_here(busy) >= BUSY_AT

    def due(self) -> bool:
        return time.monotonic() - self._checked >= self.RECHECK_S

    def check(self) -> int | None:
        """Read the machine; the thread count for a new worker when it is time to replace it."""
        self._checked = time.monotonic()
        wanted = self.plan(fresh_reading())
        if wanted == self.current:
            self._disagreeing = 0
            return None
        self._disagreeing += 1
        if self._disagreeing < self.CONFIRM:
            return None
        self._disagreeing = 0
        self.current = wanted
        return wanted[0]
