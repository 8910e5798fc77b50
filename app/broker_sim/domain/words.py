"""Turning an exception into the one line a user reads."""

from __future__ import annotations


def in_words(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when it has none), shortened."""
    return (str(exc) or type(exc).__name__).splitlines()[0][:limit]
