"""Queue and consumer arguments RabbitMQ 3.10 enforces: x-max-priority, x-priority, x-single-active-consumer,
x-expires and x-max-length-bytes."""

from __future__ import annotations

import asyncio

import aio_pika
import pika
import pytest

from tests.conformance.clients import DEADLINE, channel, connection, consume, drain, pika_connection
from tests.conformance.conftest import BrokerUnderTest


async def test_priority_queue_delivers_highest_first(broker: BrokerUnderTest, name: str) -> None:
    """Higher priorities first, FIFO within one; a priority above x-max-priority counts as the maximum."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True, arguments={"x-max-priority": 5})
        for body, priority in ((b"p1", 1), (b"p5", 5), (b"p3", 3), (b"none", None), (b"p9", 9)):
            await ch.default_exchange.publish(aio_pika.Message(body, priority=priority), routing_key=name)
        assert await drain(queue) == [b"p5", b"p9", b"p3", b"p1", b"none"]


async def test_a_requeued_message_goes_back_to_the_head_of_its_priority(
    broker: BrokerUnderTest, name: str
) -> None:
    """A nacked message returns before the others of its priority, after higher ones."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True, arguments={"x-max-priority": 2})
        for body, priority in ((b"low-1", 0), (b"low-2", 0), (b"high", 2)):
            await ch.default_exchange.publish(aio_pika.Message(body, priority=priority), routing_key=name)
        high = await queue.get()
        low = await queue.get()
        assert high.body == b"high" and low.body == b"low-1"
        await low.nack(requeue=True)
        await high.nack(requeue=True)
        assert await drain(queue) == [b"high", b"low-1", b"low-2"]


async def test_higher_priority_consumer_is_served_first(broker: BrokerUnderTest, name: str) -> None:
    """With x-priority, the higher consumer gets messages while it has room; the lower one the rest."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        queue = await ch.declare_queue(name, exclusive=True)
        await ch.set_qos(prefetch_count=2)
        high = await consume(queue, arguments={"x-priority": 10})
        await ch.set_qos(prefetch_count=10)
        low = await consume(queue, arguments={"x-priority": 1})
        for i in range(5):
            await ch.default_exchange.publish(aio_pika.Message(b"%d" % i), routing_key=name)
        await high.wait_for(2)
        await low.wait_for(3)
    assert [m.body for m in high.messages] == [b"0", b"1"]
    assert [m.body for m in low.messages] == [b"2", b"3", b"4"]


async def test_single_active_consumer(broker: BrokerUnderTest, name: str) -> None:
    """Only the first consumer receives; when its channel closes the next takes over, redeliveries first."""
    async with connection(broker.url) as conn:
        first_ch = await conn.channel()
        second_ch = await conn.channel()
        args = {"x-single-active-consumer": True}
        first_queue = await first_ch.declare_queue(name, auto_delete=False, arguments=args)
        second_queue = await second_ch.declare_queue(name, auto_delete=False, arguments=args)
        first = await consume(first_queue)
        second = await consume(second_queue)
        for i in range(3):
            await second_ch.default_exchange.publish(aio_pika.Message(b"%d" % i), routing_key=name)
        await first.wait_for(3)
        await first_ch.close()
        await second_ch.default_exchange.publish(aio_pika.Message(b"3"), routing_key=name)
        got = await second.wait_for(4)
        assert [m.body for m in got] == [b"0", b"1", b"2", b"3"]
        assert [m.redelivered for m in got] == [True, True, True, False]
        for message in got:
            await message.ack()
        await second_queue.delete(if_unused=False)


async def test_an_unused_queue_expires(broker: BrokerUnderTest, name: str) -> None:
    """x-expires deletes a queue nobody consumes from or declares for that long; a consumer keeps it."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        kept = await ch.declare_queue(f"{name}.kept", arguments={"x-expires": 100})
        await consume(kept)
        await ch.declare_queue(f"{name}.gone", arguments={"x-expires": 100})
        await _until_gone(conn, f"{name}.gone")
        await ch.declare_queue(f"{name}.kept", passive=True)
        await kept.delete(if_unused=False)


async def _until_gone(conn: aio_pika.abc.AbstractConnection, queue: str) -> None:
    # Polls with passive declares until a 404, within the deadline. A passive declare counts as use
    # (it restarts the x-expires clock, on RabbitMQ too), so polls are spaced wider than the expiry.
    async def poll() -> None:
        while True:
            probe = await conn.channel()
            try:
                await probe.declare_queue(queue, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                return
            await probe.close()
            await asyncio.sleep(0.3)

    await asyncio.wait_for(poll(), DEADLINE)


async def test_max_length_bytes_drops_the_oldest(broker: BrokerUnderTest, name: str) -> None:
    """x-max-length-bytes counts body bytes of ready messages; drop-head makes room."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True, arguments={"x-max-length-bytes": 10})
        for body in (b"aaaa", b"bbbb", b"cccc"):
            await ch.default_exchange.publish(aio_pika.Message(body), routing_key=name)
        assert await drain(queue) == [b"bbbb", b"cccc"]


def test_pika_max_length_bytes_with_reject_publish(broker: BrokerUnderTest, name: str) -> None:
    """A publish that would take the queue over its byte limit is nacked."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(
            name, exclusive=True, arguments={"x-max-length-bytes": 10, "x-overflow": "reject-publish"}
        )
        ch.basic_publish("", name, b"aaaa")
        ch.basic_publish("", name, b"bbbbbb")
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish("", name, b"c")
        assert ch.queue_declare(name, passive=True).method.message_count == 2


@pytest.mark.parametrize(
    ("arguments", "detail"),
    [
        (
            {"x-max-priority": 300},
            "invalid arg 'x-max-priority' for queue '{name}' in vhost '{vhost}': {{max_value_exceeded,300}}",
        ),
        (
            {"x-single-active-consumer": "yes"},
            "invalid arg 'x-single-active-consumer' for queue '{name}' in vhost '{vhost}': "
            "{{unacceptable_type,longstr}}",
        ),
    ],
    ids=["priority-above-255", "single-active-not-bool"],
)
def test_pika_bad_queue_arguments_are_406(
    broker: BrokerUnderTest, name: str, arguments: dict[str, object], detail: str
) -> None:
    """Out-of-range and mistyped arguments are refused with RabbitMQ's words."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare(name, exclusive=True, arguments=arguments)
        assert caught.value.reply_code == 406
        assert detail.format(name=name, vhost=broker.vhost) in caught.value.reply_text


def test_pika_consumer_priority_must_be_an_integer(broker: BrokerUnderTest, name: str) -> None:
    """A string x-priority on basic.consume is 406."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare(name, exclusive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.basic_consume(name, lambda *_: None, arguments={"x-priority": "high"})
        assert caught.value.reply_code == 406
        assert '"expected integer, got longstr"' in caught.value.reply_text
