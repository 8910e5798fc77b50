"""Quorum queues as one RabbitMQ 3.10 node shows them: what they refuse, x-delivery-count and
x-delivery-limit; stream queues (refused by the embedded broker) are not tested here."""

from __future__ import annotations

import aio_pika
import pika
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import channel, connection, consume, pika_connection
from tests.conformance.conftest import BrokerUnderTest

QUORUM = {"x-queue-type": "quorum"}


@pytest.mark.parametrize(
    ("options", "arguments", "refusal"),
    [
        ({"durable": False}, {}, "invalid property 'non-durable'"),
        ({"durable": True, "exclusive": True}, {}, "invalid property 'exclusive-owner'"),
        ({"durable": True, "auto_delete": True}, {}, "invalid property 'auto-delete'"),
        ({"durable": True}, {"x-max-priority": 5}, "invalid arg 'x-max-priority'"),
        ({"durable": True}, {"x-queue-mode": "lazy"}, "invalid arg 'x-queue-mode'"),
    ],
    ids=["non-durable", "exclusive", "auto-delete", "x-max-priority", "lazy"],
)
def test_pika_quorum_refusals(
    broker: BrokerUnderTest, name: str, options: dict[str, bool], arguments: dict[str, object], refusal: str
) -> None:
    """What a quorum queue cannot be is 406 on declare."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare(name, arguments={**QUORUM, **arguments}, **options)
        assert caught.value.reply_code == 406
        assert f"{refusal} for queue '{name}'" in caught.value.reply_text


def test_pika_basic_get_always_carries_the_delivery_count(broker: BrokerUnderTest, name: str) -> None:
    """Basic.Get from a quorum queue has x-delivery-count even on the first delivery."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(name, durable=True, arguments=QUORUM)
        ch.basic_publish("", name, b"x", pika.BasicProperties(headers={"keep": "me"}))
        _, properties, body = ch.basic_get(name, auto_ack=True)
        assert body == b"x" and properties.headers == {"keep": "me", "x-delivery-count": 0}
        ch.queue_delete(name)


def test_pika_redeclaring_a_quorum_queue_as_classic_is_406(broker: BrokerUnderTest, name: str) -> None:
    """x-queue-type takes part in the equivalence check."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare(name, durable=True, arguments=QUORUM)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare(name, durable=True)
        assert caught.value.reply_code == 406 and "inequivalent arg 'x-queue-type'" in caught.value.reply_text
        ch = conn.channel()
        ch.queue_delete(name)


async def test_delivery_count_and_limit(broker: BrokerUnderTest, name: str) -> None:
    """A redelivery carries x-delivery-count (returns so far; a first delivery to a consumer has none);
    past x-delivery-limit the message is dead-lettered with reason delivery_limit."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        dlx = await ch.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        dead = await ch.declare_queue(f"{name}.dead", exclusive=True)
        await dead.bind(dlx)
        queue = await ch.declare_queue(
            name,
            durable=True,
            arguments={**QUORUM, "x-delivery-limit": 2, "x-dead-letter-exchange": f"{name}.dlx"},
        )
        await ch.default_exchange.publish(aio_pika.Message(b"job", headers={"keep": 1}), routing_key=name)
        inbox = await consume(queue)
        counts = []
        for attempt in range(3):
            message = (await inbox.wait_for(attempt + 1))[attempt]
            counts.append((message.headers.get("x-delivery-count"), message.redelivered))
            assert message.headers["keep"] == 1
            await message.nack(requeue=True)
        dead_inbox = await consume(dead, no_ack=True)
        (corpse,) = await dead_inbox.wait_for(1)
        await queue.delete(if_unused=False, if_empty=False)
    assert counts == [(None, False), (1, True), (2, True)]
    death = dict(corpse.headers)["x-death"]
    assert isinstance(death, list) and dict(death[0])["reason"] == "delivery_limit"


async def test_global_prefetch_cannot_consume_from_a_quorum_queue(broker: BrokerUnderTest, name: str) -> None:
    """basic.qos(global=true) then consuming from a quorum queue closes the connection with 540."""
    async with channel(broker.url) as setup:
        await setup.declare_queue(name, durable=True, arguments=QUORUM)
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        await ch.set_qos(prefetch_count=5, global_=True)
        queue = await ch.get_queue(name, ensure=False)
        with pytest.raises(aio_pika.exceptions.AMQPError) as caught:
            await queue.consume(_ignore)
        assert "does not support global qos" in str(caught.value)
    async with channel(broker.url) as cleanup:
        await cleanup.queue_delete(name)


async def test_delete_if_empty_is_540(broker: BrokerUnderTest, name: str) -> None:
    """Queue.Delete with if-empty on a quorum queue closes the connection with 540."""
    async with channel(broker.url) as setup:
        await setup.declare_queue(name, durable=True, arguments=QUORUM)
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        with pytest.raises(aio_pika.exceptions.AMQPError) as caught:
            await ch.queue_delete(name, if_empty=True)
        assert "with if-empty flag set are not supported by quorum queues" in str(caught.value)
    async with channel(broker.url) as cleanup:
        await cleanup.queue_delete(name)


def test_pika_an_unknown_queue_type_is_406(broker: BrokerUnderTest, name: str) -> None:
    """x-queue-type must name a queue type the broker has."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare(name, durable=True, arguments={"x-queue-type": "fifo"})
        assert caught.value.reply_code == 406
        assert "unsupported queue type 'fifo'" in caught.value.reply_text


async def test_embedded_refuses_stream_queues_in_words(private_broker: EmbeddedBroker) -> None:
    """A difference on purpose: the embedded broker has no streams and says so (RabbitMQ 3.10 has them)."""
    async with connection(private_broker.url) as conn:
        ch = await conn.channel()
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed) as caught:
            await ch.declare_queue("events", durable=True, arguments={"x-queue-type": "stream"})
        assert "does not implement streams" in str(caught.value)


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """A consumer callback that never runs (the consume is refused)."""
