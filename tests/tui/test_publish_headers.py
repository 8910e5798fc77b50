"""What the publish form makes of the headers a user types."""

from __future__ import annotations

import pytest

from broker_sim.tui.publish_form import FormError, parse_headers


def test_values_are_typed_as_a_user_means_them() -> None:
    assert parse_headers('format=pdf, urgent=true, n=3, code="1", ratio=0.5') == {
        "format": "pdf",
        "urgent": True,
        "n": 3,
        "code": "1",
        "ratio": 0.5,
    }
    assert parse_headers("") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('a="unterminated', "opens or closes a quote without the other"),
        ("a=done'", "opens or closes a quote without the other"),
        ("format", "is not name=value"),
        ("=pdf", "is not name=value"),
    ],
)
def test_a_malformed_header_is_refused_in_one_line(text: str, words: str) -> None:
    with pytest.raises(FormError) as caught:
        parse_headers(text)
    assert words in str(caught.value) and "\n" not in str(caught.value)
