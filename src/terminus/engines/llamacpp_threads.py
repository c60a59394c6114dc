"""How llama.cpp's threads wait in the worker process.

The xllamacpp wheel runs ggml's threads through OpenMP (libgomp), and ggml's
barrier between two operations is an OpenMP barrier. libgomp's default is to
spin there (up to 300,000 turns) before it sleeps. When another busy process
shares the cores, the thread that spins holds the very core the thread it waits
for needs, and decoding collapses: 2 threads on 2 cores beside one busy process
measured 0.5-1 token/s where one thread made 11. With ``OMP_WAIT_POLICY=PASSIVE``
a waiting thread sleeps at once and wakes when the others arrive, which costs
microseconds per barrier on a quiet machine and saves whole time slices on a
busy one (bench/bench_contention.py measures both).

The policy must be in the environment before libgomp loads, so it is set in
the worker's environment when the host starts it. A user's own
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is kept as given.
"""

from __future__ import annotations

from collections.abc import Mapping

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
SPIN_COUNT_ENV = "GOMP_SPINCOUNT"
DEFAULT_WAIT_POLICY = "PASSIVE"


def worker_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with the wait policy the worker's llama.cpp threads should use."""
    env = dict(base)
    if WAIT_POLICY_ENV not in env and SPIN_COUNT_ENV not in env:
        env[WAIT_POLICY_ENV] = DEFAULT_WAIT_POLICY
    return env
