"""The worker's thread wait policy: PASSIVE unless the user chose one."""

from __future__ import annotations

from terminus.engines.llamacpp_threads import worker_environment


def test_passive_by_default_and_base_untouched() -> None:
    base = {"PATH": "/bin"}
    env = worker_environment(base)
    assert env == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    assert base == {"PATH": "/bin"}


def test_a_users_own_policy_or_spin_count_is_kept() -> None:
    assert worker_environment({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
    spun = worker_environment({"GOMP_SPINCOUNT": "1000"})
    assert "OMP_WAIT_POLICY" not in spun and spun["GOMP_SPINCOUNT"] == "1000"
