"""The worker's threads and their wait policy, chosen by how busy the machine is."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from terminus.engines import llamacpp_threads
from terminus.engines.llamacpp import llama_threads
from terminus.engines.llamacpp_threads import busy_elsewhere, threads_for, worker_environment


def test_quiet_machine_gets_a_short_spin_and_every_core() -> None:
    base = {"PATH": "/bin"}
    env = worker_environment(base, busy=0.1)
    assert env == {"PATH": "/bin", "GOMP_SPINCOUNT": llamacpp_threads.SHORT_SPIN}
    assert base == {"PATH": "/bin"}
    assert threads_for(4, busy=0.1) == 4


def test_busy_machine_gets_passive_waits_and_the_free_cores() -> None:
    env = worker_environment({}, busy=1.0)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert threads_for(2, busy=1.0) == 1
    assert threads_for(8, busy=2.2) == 6
    assert threads_for(2, busy=6.0) == 1  # never fewer than one


def test_a_users_own_policy_or_spin_count_is_kept() -> None:
    assert worker_environment({"OMP_WAIT_POLICY": "ACTIVE"}, busy=3.0) == {
        "OMP_WAIT_POLICY": "ACTIVE"
    }
    spun = worker_environment({"GOMP_SPINCOUNT": "1000"}, busy=0.0)
    assert spun == {"GOMP_SPINCOUNT": "1000"}


def test_a_users_thread_count_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp_threads, "busy_elsewhere", lambda: 5.0)
    monkeypatch.delenv("TERMINUS_THREADS", raising=False)
    assert llama_threads() == 1  # busy: what is left, at least one
    monkeypatch.setenv("TERMINUS_THREADS", "3")
    assert llama_threads() == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/loadavg")
def test_a_spinning_neighbour_reads_as_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp_threads, "_reading", [])
    neighbours = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        time.sleep(0.3)
        busy = busy_elsewhere()
    finally:
        for proc in neighbours:
            proc.kill()
            proc.wait()
    assert busy >= 1.5  # three always-runnable processes, whatever else runs
    assert worker_environment({}, busy=busy)["OMP_WAIT_POLICY"] == "PASSIVE"


def test_one_reading_serves_a_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp_threads, "_reading", [(time.monotonic(), 4.0)])
    assert busy_elsewhere() == 4.0  # reused, not read again
    stale = time.monotonic() - 60
    monkeypatch.setattr(llamacpp_threads, "_reading", [(stale, 4.0)])
    busy_elsewhere()
    assert llamacpp_threads._reading[0][0] > stale  # too old: read again


def test_a_process_pinned_to_few_cpus_counts_its_share_of_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(llamacpp_threads.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(llamacpp_threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert llamacpp_threads.busy_here(16.0) == 0.5  # 16 runnable over 64 CPUs: 0.5 on our two
    assert threads_for(2, busy=8.0) == 2  # 0.25 expected here: quiet
    assert threads_for(2, busy=64.0) == 1


def test_the_tuner_replaces_a_worker_only_after_readings_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter([3.0, 0.0, 3.0, 3.0, 3.0, 0.0, 0.0])
    monkeypatch.setattr(llamacpp_threads, "fresh_reading", lambda: next(readings))
    monkeypatch.setattr(llamacpp_threads, "busy_here", lambda busy: busy)
    tuner = llamacpp_threads.ThreadTuner(cores=4, busy=0.0)
    assert tuner.current == (4, False)
    assert tuner.check() is None  # busy once: maybe a burst
    assert tuner.check() is None  # quiet again: the count starts over
    assert tuner.check() is None
    assert tuner.check() == 1  # busy twice in a row: a worker with the free core
    assert tuner.current == (1, True)
    assert tuner.check() is None  # as it runs now
    assert tuner.check() is None
    assert tuner.check() == 4


def test_the_tuner_waits_between_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    tuner = llamacpp_threads.ThreadTuner(cores=2, busy=0.0)
    assert not tuner.due()
    monkeypatch.setattr(tuner, "RECHECK_S", 0.0)
    assert tuner.due()


def test_every_thread_count_is_replaced() -> None:
    assignments = [
        ("model.path", "/m.gguf"),
        ("cpuparams.n_threads", 2),
        ("cpuparams_batch.n_threads", 2),
        ("speculative.draft.cpuparams.n_threads", 2),
        ("n_parallel", 4),
    ]
    assert llamacpp_threads.with_threads(assignments, 1) == [
        ("model.path", "/m.gguf"),
        ("cpuparams.n_threads", 1),
        ("cpuparams_batch.n_threads", 1),
        ("speculative.draft.cpuparams.n_threads", 1),
        ("n_parallel", 4),
    ]
