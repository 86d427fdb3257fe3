"""The error raised for missing, incomplete or corrupt character data."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Character data that cannot be loaded; the message names the file or folder and the fix."""
