"""TTL, max-length and dead-lettering with ``x-death`` as RabbitMQ 3.10 writes it."""

from __future__ import annotations

import datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from tests.conformance.clients import channel, consume, drain
from tests.conformance.conftest import BrokerUnderTest


async def _dead_letter_pair(
    ch: AbstractChannel, name: str, **arguments: object
) -> tuple[AbstractQueue, AbstractQueue]:
    """A source queue dead-lettering into ``<name>.dlx`` (fanout) → ``<name>.dead``."""
    dlx = await ch.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.FANOUT, auto_delete=True)
    dead = await ch.declare_queue(f"{name}.dead", exclusive=True)
    await dead.bind(dlx)
    source = await ch.declare_queue(
        name,
        exclusive=True,
        arguments={"x-dead-letter-exchange": f"{name}.dlx", **arguments},  # type: ignore[dict-item]
    )
    return source, dead


def _death(headers: dict[str, object]) -> dict[str, object]:
    deaths = headers["x-death"]
    assert isinstance(deaths, list) and len(deaths) == 1
    death = dict(deaths[0])
    assert isinstance(death.pop("time"), datetime.datetime)
    return death


async def test_queue_ttl_dead_letters_with_x_death(broker: BrokerUnderTest, name: str) -> None:
    """x-message-ttl expires a message into the DLX with reason ``expired``."""
    async with channel(broker.url) as ch:
        _, dead = await _dead_letter_pair(ch, name, **{"x-message-ttl": 20})
        await ch.default_exchange.publish(aio_pika.Message(b"old", message_id="t1"), routing_key=name)
        inbox = await consume(dead, no_ack=True)
        (message,) = await inbox.wait_for(1)
    headers = dict(message.headers)
    assert message.body == b"old" and message.message_id == "t1"
    assert _death(headers) == {
        "count": 1,
        "reason": "expired",
        "queue": name,
        "exchange": "",
        "routing-keys": [name],
    }
    assert headers["x-first-death-reason"] == "expired"
    assert headers["x-first-death-queue"] == name
    assert headers["x-first-death-exchange"] == ""


async def test_per_message_expiration_keeps_the_original(broker: BrokerUnderTest, name: str) -> None:
    """A message's own expiration is removed when dead-lettered and kept as original-expiration."""
    async with channel(broker.url) as ch:
        _, dead = await _dead_letter_pair(ch, name)
        await ch.default_exchange.publish(aio_pika.Message(b"short", expiration=0.02), routing_key=name)
        inbox = await consume(dead, no_ack=True)
        (message,) = await inbox.wait_for(1)
    assert message.expiration is None
    death = _death(dict(message.headers))
    assert death["reason"] == "expired" and death["original-expiration"] == "20"


async def test_reject_dead_letters_with_the_given_routing_key(broker: BrokerUnderTest, name: str) -> None:
    """reject(requeue=False) dead-letters as ``rejected``; x-dead-letter-routing-key replaces the key."""
    async with channel(broker.url) as ch:
        dlx = await ch.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.DIRECT, auto_delete=True)
        dead = await ch.declare_queue(f"{name}.dead", exclusive=True)
        await dead.bind(dlx, routing_key="parking")
        source = await ch.declare_queue(
            name,
            exclusive=True,
            arguments={"x-dead-letter-exchange": f"{name}.dlx", "x-dead-letter-routing-key": "parking"},
        )
        await ch.default_exchange.publish(aio_pika.Message(b"bad", headers={"keep": "me"}), routing_key=name)
        message = await source.get()
        assert message is not None
        await message.reject(requeue=False)
        inbox = await consume(dead, no_ack=True)
        (parked,) = await inbox.wait_for(1)
    assert parked.routing_key == "parking" and parked.headers["keep"] == "me"
    assert _death(dict(parked.headers)) == {
        "count": 1,
        "reason": "rejected",
        "queue": name,
        "exchange": "",
        "routing-keys": [name],
    }


async def test_max_length_drops_the_oldest_into_the_dlx(broker: BrokerUnderTest, name: str) -> None:
    """x-max-length 2: a third message pushes the head out, dead-lettered with reason ``maxlen``."""
    async with channel(broker.url) as ch:
        source, dead = await _dead_letter_pair(ch, name, **{"x-max-length": 2})
        for body in (b"1", b"2", b"3"):
            await ch.default_exchange.publish(aio_pika.Message(body), routing_key=name)
        inbox = await consume(dead, no_ack=True)
        (dropped,) = await inbox.wait_for(1)
        assert dropped.body == b"1" and _death(dict(dropped.headers))["reason"] == "maxlen"
        assert await drain(source) == [b"2", b"3"]


async def test_dead_lettered_twice_counts_in_one_entry(broker: BrokerUnderTest, name: str) -> None:
    """Rejected from the same queue twice: one x-death entry with count 2."""
    async with channel(broker.url) as ch:
        # The DLX routes straight back into the source queue.
        dlx = await ch.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        source = await ch.declare_queue(
            name, exclusive=True, arguments={"x-dead-letter-exchange": f"{name}.dlx"}
        )
        await source.bind(dlx)
        await ch.default_exchange.publish(aio_pika.Message(b"loop"), routing_key=name)
        inbox = await consume(source)
        for seen in (1, 2):
            await inbox.wait_for(seen)
            await inbox.messages[-1].reject(requeue=False)
        final = (await inbox.wait_for(3))[-1]
        deaths = final.headers["x-death"]
        assert isinstance(deaths, list) and len(deaths) == 1
        assert deaths[0]["count"] == 2 and deaths[0]["reason"] == "rejected"  # type: ignore[index]
        await final.ack()
