"""Tools the agent tests offer to real models (importable as ``calctools:multiply``)."""

from __future__ import annotations


def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return a * b


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b
