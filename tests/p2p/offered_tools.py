"""Functions a provider process offers as peer tools (``offered_tools:capital_of`` …)."""

from __future__ import annotations

CAPITALS = {"ostland": "Kerr", "freedonia": "Fredville", "sylvania": "Marsh Town"}


def capital_of(country: str) -> str:
    """The capital city of a country, from the provider's private atlas.

    Args:
        country: the country's name, e.g. Ostland
    """
    return CAPITALS.get(country.strip().lower(), f"no capital known for {country}")


def explode(reason: str) -> str:
    """Always fails on the provider."""
    raise RuntimeError(f"disk on fire ({reason})")


def secret() -> str:
    """Importable on the provider, but never named with --tool: no peer may call it."""
    return "the launch codes"
