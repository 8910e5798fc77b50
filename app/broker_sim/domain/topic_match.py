"""Matching topic routing keys against binding patterns, as RabbitMQ does.

The embedded broker routes with it; the publish form uses it only to suggest a key that some
binding matches. What the screen shows as routed always comes from the broker.
"""

from __future__ import annotations

from functools import lru_cache


def split_words(key: str) -> tuple[str, ...]:
    """Words of a routing key or pattern as RabbitMQ splits them: ``""`` has none, ``"a."`` has two."""
    return tuple(key.split(".")) if key else ()


@lru_cache(maxsize=4096)
def pattern(binding_key: str) -> tuple[str, ...]:
    """A binding key split into words (cached: bindings are few, messages many)."""
    return split_words(binding_key)


def topic_matches(pat: tuple[str, ...], words: tuple[str, ...]) -> bool:
    """``*`` matches exactly one word, ``#`` zero or more; empty words are words."""
    # Iterative matcher with backtracking to the last '#', like glob matching.
    p = w = 0
    star_p, star_w = -1, 0
    while w < len(words):
        if p < len(pat) and pat[p] == "#":
            star_p, star_w = p, w
            p += 1
        elif p < len(pat) and (pat[p] == "*" or pat[p] == words[w]):
            p += 1
            w += 1
        elif star_p >= 0:
            p = star_p + 1
            star_w += 1
            w = star_w
        else:
            return False
    while p < len(pat) and pat[p] == "#":
        p += 1
    return p == len(pat)
