"""``x-overflow``: drop-head, reject-publish and reject-publish-dlx, as RabbitMQ 3.10 applies them."""

from __future__ import annotations

import aio_pika
import pika
import pytest

from tests.conformance.clients import channel, connection, consume, drain, pika_connection
from tests.conformance.conftest import BrokerUnderTest


def test_pika_reject_publish_nacks_even_when_another_queue_took_it(
    broker: BrokerUnderTest, name: str
) -> None:
    """A full reject-publish queue nacks the publisher; the other queue of the fanout still gets it."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.exchange_declare(name, "fanout", auto_delete=True)
        ch.queue_declare(
            f"{name}.full", exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
        )
        ch.queue_declare(f"{name}.open", exclusive=True)
        ch.queue_bind(f"{name}.full", name)
        ch.queue_bind(f"{name}.open", name)
        ch.basic_publish(name, "", b"first")
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish(name, "", b"second")
        assert ch.queue_declare(f"{name}.full", passive=True).method.message_count == 1
        assert ch.queue_declare(f"{name}.open", passive=True).method.message_count == 2
        ch.basic_publish("", f"{name}.open", b"third")  # later publishes are acked again


async def test_reject_publish_counts_ready_messages_only(broker: BrokerUnderTest, name: str) -> None:
    """An unacked message does not count toward x-max-length; without confirms a refusal is silent."""
    async with connection(broker.url) as conn:
        ch = await conn.channel(publisher_confirms=False)
        queue = await ch.declare_queue(
            name, exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
        )
        await ch.default_exchange.publish(aio_pika.Message(b"1"), routing_key=name)
        held = await queue.get()
        assert held is not None and held.body == b"1"
        await ch.default_exchange.publish(aio_pika.Message(b"2"), routing_key=name)
        await ch.default_exchange.publish(aio_pika.Message(b"3"), routing_key=name)  # dropped, no error
        await held.ack()
        assert await drain(queue) == [b"2"]


async def test_reject_publish_dlx_dead_letters_with_reason_maxlen(broker: BrokerUnderTest, name: str) -> None:
    """reject-publish-dlx nacks and dead-letters the refused message with reason ``maxlen``."""
    async with channel(broker.url) as ch:
        dlx = await ch.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.FANOUT, auto_delete=True)
        dead = await ch.declare_queue(f"{name}.dead", exclusive=True)
        await dead.bind(dlx)
        await ch.declare_queue(
            name,
            exclusive=True,
            arguments={
                "x-max-length": 1,
                "x-overflow": "reject-publish-dlx",
                "x-dead-letter-exchange": f"{name}.dlx",
            },
        )
        await ch.default_exchange.publish(aio_pika.Message(b"kept"), routing_key=name)
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await ch.default_exchange.publish(aio_pika.Message(b"refused"), routing_key=name)
        inbox = await consume(dead, no_ack=True)
        (message,) = await inbox.wait_for(1)
    assert message.body == b"refused"
    death = dict(message.headers)["x-death"]
    assert isinstance(death, list) and dict(death[0])["reason"] == "maxlen"


async def test_drop_head_is_the_default(broker: BrokerUnderTest, name: str) -> None:
    """Without x-overflow the oldest ready message is dropped and every publish is acked."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True, arguments={"x-max-length": 2})
        for body in (b"1", b"2", b"3"):
            await ch.default_exchange.publish(aio_pika.Message(body), routing_key=name)
        assert await drain(queue) == [b"2", b"3"]


@pytest.mark.parametrize(("value", "detail"), [("drop-tail", "invalid_overflow"), (7, "{unacceptable_type,")])
def test_pika_unknown_overflow_is_406(broker: BrokerUnderTest, name: str, value: object, detail: str) -> None:
    """An unknown x-overflow value, or one that is not a string, is refused with 406."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare(name, exclusive=True, arguments={"x-overflow": value})
        assert caught.value.reply_code == 406
        assert f"invalid arg 'x-overflow' for queue '{name}'" in caught.value.reply_text
        assert detail in caught.value.reply_text
