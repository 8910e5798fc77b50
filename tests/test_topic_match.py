"""Topic matching as RabbitMQ does it (the embedded broker routes with it, the publish form hints)."""

from __future__ import annotations

import pytest

from broker_sim.domain.topic_match import pattern, split_words, topic_matches


@pytest.mark.parametrize(
    ("binding", "key", "matches"),
    [
        ("kern.*", "kern.crit", True),
        ("kern.*", "kern.crit.x", False),
        ("#", "", True),
        ("a.#", "a", True),
        ("#.crit", "kern.disk.crit", True),
        ("*", "", False),
        ("a.*.b", "a..b", True),  # an empty word is a word
        ("a.#.b.#", "a.x.b.y.b", True),
    ],
)
def test_patterns_match_as_rabbitmq_routes(binding: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern(binding), split_words(key)) is matches
