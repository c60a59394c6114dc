"""The version, in one place (pyproject reads it; so does the CLI and the user agent)."""

__version__ = "0.1.0"
