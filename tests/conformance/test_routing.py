"""Routing as RabbitMQ does it: topic edge cases, headers matching with types, fanout, direct."""

from __future__ import annotations

import aio_pika
import pika
import pytest

from tests.conformance.clients import channel, drain
from tests.conformance.conftest import BrokerUnderTest

TOPIC_KEYS = ["a.b.c", "a.c", "a", "", "a..c", "a.b.b.c", "a.", ".c"]
TOPIC_TABLE = {
    "a.*.c": {"a.b.c", "a..c"},
    "a.#": {"a.b.c", "a.c", "a", "a..c", "a.b.b.c", "a."},
    "#": set(TOPIC_KEYS),
    "a.#.c": {"a.b.c", "a.c", "a..c", "a.b.b.c"},
    "*": {"a"},
    "": {""},
    "#.c": {"a.b.c", "a.c", "a..c", "a.b.b.c", ".c"},
    "*.*": {"a.c", "a.", ".c"},
}


async def test_topic_edge_cases(broker: BrokerUnderTest, name: str) -> None:
    """Empty words are words, ``#`` matches zero words (also in the middle), ``""`` has no words."""
    async with channel(broker.url) as ch:
        exchange = await ch.declare_exchange(name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
        queues = {}
        for index, pattern in enumerate(TOPIC_TABLE):
            queue = await ch.declare_queue(f"{name}.{index}", exclusive=True)
            await queue.bind(exchange, routing_key=pattern)
            queues[pattern] = queue
        for key in TOPIC_KEYS:
            await exchange.publish(aio_pika.Message(key.encode() or b"<empty>"), routing_key=key)
        got = {p: {b.decode() for b in await drain(q)} for p, q in queues.items()}
    expected = {p: {k or "<empty>" for k in keys} for p, keys in TOPIC_TABLE.items()}
    assert got == expected


HEADER_BINDINGS = {
    "all": {"x-match": "all", "format": "pdf", "type": "report"},
    "any": {"x-match": "any", "format": "pdf", "type": "log"},
    "int": {"x-match": "all", "size": 1},
    "void": {"x-match": "all", "flag": None},
    "all-with-x": {"x-match": "all-with-x", "x-tenant": "acme"},
    "any-with-x": {"x-match": "any-with-x", "x-tenant": "acme", "zone": "eu"},
    "x-ignored": {"x-match": "any", "x-tenant": "acme"},
}
HEADER_MESSAGES: list[tuple[str, dict[str, object], set[str]]] = [
    ("both", {"format": "pdf", "type": "report"}, {"all", "any"}),
    ("format", {"format": "pdf"}, {"any"}),
    ("log", {"type": "log"}, {"any"}),
    ("int", {"size": 1}, {"int"}),
    ("str", {"size": "1"}, set()),
    ("float", {"size": 1.0}, {"int"}),
    ("flag", {"flag": "anything"}, {"void"}),
    ("tenant", {"x-tenant": "acme"}, {"all-with-x", "any-with-x"}),
    ("zone", {"zone": "eu"}, {"any-with-x"}),
]


async def test_headers_matching_with_types(broker: BrokerUnderTest, name: str) -> None:
    """x-match all/any and the -with-x forms; void binds on presence; 1 is 1.0 but not "1"."""
    async with channel(broker.url) as ch:
        exchange = await ch.declare_exchange(name, aio_pika.ExchangeType.HEADERS, auto_delete=True)
        queues = {}
        for label, arguments in HEADER_BINDINGS.items():
            queue = await ch.declare_queue(f"{name}.{label}", exclusive=True)
            await queue.bind(exchange, arguments=arguments)
            queues[label] = queue
        for label, headers, _ in HEADER_MESSAGES:
            await exchange.publish(aio_pika.Message(label.encode(), headers=headers), routing_key="")  # type: ignore[arg-type]
        got = {label: {b.decode() for b in await drain(q)} for label, q in queues.items()}
    expected: dict[str, set[str]] = {label: set() for label in HEADER_BINDINGS}
    for label, _, matches in HEADER_MESSAGES:
        for binding in matches:
            expected[binding].add(label)
    assert got == expected


async def test_fanout_and_direct(broker: BrokerUnderTest, name: str) -> None:
    """Fanout ignores the key; direct matches it exactly, a queue bound twice gets one copy."""
    async with channel(broker.url) as ch:
        fanout = await ch.declare_exchange(f"{name}.f", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        direct = await ch.declare_exchange(f"{name}.d", aio_pika.ExchangeType.DIRECT, auto_delete=True)
        one = await ch.declare_queue(f"{name}.1", exclusive=True)
        two = await ch.declare_queue(f"{name}.2", exclusive=True)
        await one.bind(fanout)
        await two.bind(fanout, routing_key="ignored")
        await one.bind(direct, routing_key="info")
        await one.bind(direct, routing_key="warn")
        await two.bind(direct, routing_key="warn")
        await fanout.publish(aio_pika.Message(b"f"), routing_key="whatever")
        for key in ("info", "warn", "error"):
            await direct.publish(aio_pika.Message(key.encode()), routing_key=key)
        assert await drain(one) == [b"f", b"info", b"warn"]
        assert await drain(two) == [b"f", b"warn"]


def test_pika_routes_through_amq_topic(broker: BrokerUnderTest, name: str) -> None:
    """The predeclared ``amq.topic`` with a pika client."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, "amq.topic", routing_key=f"{name}.#")
        ch.basic_publish("amq.topic", f"{name}.x.y", b"hit")
        ch.basic_publish("amq.topic", f"other.{name}", b"miss")
        method, _, body = ch.basic_get(queue, auto_ack=True)
        assert body == b"hit"
        assert method is not None and method.routing_key == f"{name}.x.y" and method.exchange == "amq.topic"
        assert ch.basic_get(queue, auto_ack=True) == (None, None, None)
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["direct", "fanout", "topic", "headers"])
async def test_every_exchange_type_declares(broker: BrokerUnderTest, name: str, kind: str) -> None:
    """Each type declares, redeclares identically, and deletes."""
    async with channel(broker.url) as ch:
        exchange = await ch.declare_exchange(name, aio_pika.ExchangeType(kind))
        await ch.declare_exchange(name, aio_pika.ExchangeType(kind))
        await exchange.delete()
