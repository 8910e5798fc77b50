"""Tokens no event moves on from an exchange are let go, so sampling never stops."""

from __future__ import annotations

from broker_sim.domain.events import Published
from broker_sim.tui.tokens import EXCHANGE_LINGER, LEG_FRAMES, MAX_PARKED, MAX_TOKENS, TokenField


def test_unroutable_messages_without_mandatory_do_not_stop_the_drawing() -> None:
    field = TokenField()
    for i in range(3 * MAX_TOKENS):  # dropped unroutable: neither a return nor a route ever comes
        field.apply(Published(f"m{i}", "p", "x", "nowhere"))
        field.step(5)
    assert sum(1 for t in field.tokens if t.parked) <= MAX_PARKED  # the newest few wait there
    assert len(field.tokens) < MAX_TOKENS  # so new messages keep getting tokens
    field.step(LEG_FRAMES + EXCHANGE_LINGER)  # the last ones arrive, then linger
    assert field.tokens == []
    field.apply(Published("later", "p", "x", "k"))
    assert [t.message_id for t in field.tokens] == ["later"]  # still drawn: sampling goes on


def test_animation_off_keeps_at_most_a_few_tokens_at_an_exchange() -> None:
    field = TokenField()
    for i in range(3 * MAX_TOKENS):
        field.apply(Published(f"m{i}", "p", "x", "nowhere"))
        field.settle()
    assert len(field.tokens) == MAX_PARKED
    field.apply(Published("later", "p", "x", "k"))
    assert field.tokens[-1].message_id == "later"
