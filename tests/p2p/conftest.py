"""Fixtures for the peer tests: processes on 127.0.0.1 that are always killed."""

from p2pkit import procs  # noqa: F401  (a fixture)
