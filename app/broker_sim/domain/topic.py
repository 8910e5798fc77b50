"""Checks on topic binding patterns, so a likely mistake is refused before it reaches a broker.

This does not route: routing is the broker's job, and broker-sim only reports what the broker did.
"""

from __future__ import annotations

MAX_KEY_BYTES = 255


def validate_pattern(pattern: str) -> str | None:
    """Return why a topic binding pattern is a mistake, or ``None`` when it is fine.

    RabbitMQ accepts any string, but ``*`` and ``#`` are wildcards only as whole words: in
    ``kern*`` or ``a.#b`` they are literal characters, which is almost never what was meant.
    """
    if len(pattern.encode()) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    for word in pattern.split("."):
        if word not in ("*", "#") and ("*" in word or "#" in word):
            return (
                f"'{word}' mixes a wildcard with letters; '*' and '#' only work as whole words "
                "between dots (e.g. 'kern.*')"
            )
    return None
