"""Publishing and consuming: big bodies, confirms and returns, qos, acks, redelivery; aio-pika and pika."""

from __future__ import annotations

import asyncio
import os

import aio_pika
import pika
import pika.exceptions
import pytest
from aio_pika.abc import AbstractIncomingMessage
from pamqp.commands import Basic as _Basic

from tests.conformance.clients import DEADLINE, channel, connection, consume, drain
from tests.conformance.conftest import BrokerUnderTest

BIG = os.urandom(1_000_000)


async def test_aio_pika_one_megabyte_round_trip(broker: BrokerUnderTest, name: str) -> None:
    """A 1 MB body crosses in several frames both ways, properties intact."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True)
        await ch.default_exchange.publish(
            aio_pika.Message(
                BIG, message_id="big", content_type="application/octet-stream", headers={"n": 1}
            ),
            routing_key=name,
        )
        inbox = await consume(queue)
        (message,) = await inbox.wait_for(1)
        assert message.body == BIG
        assert message.message_id == "big" and message.content_type == "application/octet-stream"
        assert message.headers == {"n": 1}
        await message.ack()


def test_pika_one_megabyte_round_trip(broker: BrokerUnderTest, name: str) -> None:
    """The same with pika (it splits frames at its own frame_max)."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(name, exclusive=True)
        ch.basic_publish("", name, BIG, pika.BasicProperties(message_id="big", delivery_mode=2))
        method, props, body = ch.basic_get(name, auto_ack=False)
        assert body == BIG and props.message_id == "big" and props.delivery_mode == 2
        assert method is not None and not method.redelivered
        ch.basic_ack(method.delivery_tag)
    finally:
        conn.close()


async def test_pika_and_aio_pika_at_once(broker: BrokerUnderTest, name: str) -> None:
    """A pika publisher (in a thread) feeds an aio-pika consumer on the same broker."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=False, auto_delete=True)
        inbox = await consume(queue, no_ack=True)

        def publish() -> None:
            conn = pika.BlockingConnection(pika.URLParameters(broker.url))
            try:
                pch = conn.channel()
                pch.confirm_delivery()
                for i in range(100):
                    pch.basic_publish("", name, str(i).encode())
            finally:
                conn.close()

        await asyncio.to_thread(publish)
        messages = await inbox.wait_for(100)
        assert [m.body for m in messages] == [str(i).encode() for i in range(100)]


def test_pika_return_comes_before_its_confirm(broker: BrokerUnderTest, name: str) -> None:
    """An unroutable mandatory publish is returned, then confirmed: pika raises UnroutableError."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        with pytest.raises(pika.exceptions.UnroutableError) as caught:
            ch.basic_publish(
                "", f"{name}.nowhere", b"lost", pika.BasicProperties(message_id="m-1"), mandatory=True
            )
        (returned,) = caught.value.messages
        assert returned.method.reply_code == 312 and returned.method.reply_text == "NO_ROUTE"
        assert returned.properties.message_id == "m-1" and returned.body == b"lost"
        ch.basic_publish("", f"{name}.nowhere", b"not mandatory")  # confirmed, silently dropped
    finally:
        conn.close()


async def test_aio_pika_return_is_matched_by_message_id(broker: BrokerUnderTest, name: str) -> None:
    """aiormq matches a Return to its publish by message_id: the properties must come back as sent."""
    async with connection(broker.url) as conn:
        ch = await conn.channel(on_return_raises=True)
        with pytest.raises(aio_pika.exceptions.DeliveryError):
            await ch.default_exchange.publish(
                aio_pika.Message(b"x"), routing_key=f"{name}.nowhere", mandatory=True
            )
        queue = await ch.declare_queue(name, exclusive=True)
        confirmation = await ch.default_exchange.publish(
            aio_pika.Message(b"ok"), routing_key=name, mandatory=True
        )
        assert isinstance(confirmation, _Basic.Ack)
        assert await drain(queue) == [b"ok"]


async def test_many_confirms_pipelined(broker: BrokerUnderTest, name: str) -> None:
    """500 publishes in flight at once all get confirmed (possibly by multiple-acks)."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True)
        await asyncio.gather(
            *(ch.default_exchange.publish(aio_pika.Message(b"%d" % i), name) for i in range(500))
        )
        declared = await ch.declare_queue(name, passive=True)
        assert declared.declaration_result.message_count == 500
        assert len(await drain(queue)) == 500


async def test_prefetch_limits_unacked_per_consumer(broker: BrokerUnderTest, name: str) -> None:
    """With prefetch 2, a consumer holds two unacked messages until it acks one."""
    async with channel(broker.url) as ch:
        await ch.set_qos(prefetch_count=2)
        queue = await ch.declare_queue(name, exclusive=True)
        for i in range(5):
            await ch.default_exchange.publish(aio_pika.Message(b"%d" % i), name)
        inbox = await consume(queue)
        first = await inbox.wait_for(2)
        declared = await ch.declare_queue(name, passive=True)
        assert declared.declaration_result.message_count == 3
        await first[0].ack()
        await inbox.wait_for(3)
        assert [m.body for m in inbox.messages] == [b"0", b"1", b"2"]


async def test_unacked_messages_come_back_redelivered_when_the_channel_closes(
    broker: BrokerUnderTest, name: str
) -> None:
    """Close a consumer's channel with messages unacked: the next consumer gets them redelivered, in order."""
    async with connection(broker.url) as conn:
        setup = await conn.channel()
        await setup.declare_queue(name, auto_delete=False)
        for i in range(3):
            await setup.default_exchange.publish(aio_pika.Message(b"%d" % i), name)
        worker = await conn.channel()
        inbox = await consume(await worker.get_queue(name))
        await inbox.wait_for(3)
        assert not any(m.redelivered for m in inbox.messages)
        await worker.close()
        second = await consume(await setup.get_queue(name))
        again = await second.wait_for(3)
        assert [(m.body, m.redelivered) for m in again] == [(b"0", True), (b"1", True), (b"2", True)]
        for m in again:
            await m.ack()
        await setup.queue_delete(name)


async def test_nack_requeue_reject_and_recover(broker: BrokerUnderTest, name: str) -> None:
    """nack(requeue) and recover redeliver with the flag set; reject without requeue drops."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True)
        for body in (b"a", b"b"):
            await ch.default_exchange.publish(aio_pika.Message(body), name)
        first = await queue.get()
        assert first is not None and first.body == b"a" and not first.redelivered
        await first.nack(requeue=True)
        again = await queue.get()
        assert again is not None and again.body == b"a" and again.redelivered
        await again.reject(requeue=False)
        second = await queue.get()
        assert second is not None and second.body == b"b"
        await ch.channel.basic_recover(requeue=True)
        recovered = await queue.get()
        assert recovered is not None and recovered.body == b"b" and recovered.redelivered
        await recovered.ack()
        assert await queue.get(fail=False) is None


async def test_unknown_delivery_tag_is_406(broker: BrokerUnderTest, name: str) -> None:
    """Acking a tag the channel never delivered closes the channel with 406."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        closed: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        ch.close_callbacks.add(lambda _ch, exc: closed.done() or closed.set_result(exc))
        await ch.channel.basic_ack(99)
        exc = await asyncio.wait_for(closed, DEADLINE)
        assert isinstance(exc, aio_pika.exceptions.ChannelPreconditionFailed)
        assert "unknown delivery tag 99" in str(exc)


async def test_get_purge_and_counts(broker: BrokerUnderTest, name: str) -> None:
    """Basic.Get reports the remaining count; purge drops ready messages and says how many."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True)
        for i in range(4):
            await ch.default_exchange.publish(aio_pika.Message(b"%d" % i), name)
        message = await queue.get(no_ack=True)
        assert message is not None and message.message_count == 3
        purged = await queue.purge()
        assert purged.message_count == 3
        assert await queue.get(fail=False) is None


async def test_deliveries_carry_exchange_and_routing_key(broker: BrokerUnderTest, name: str) -> None:
    """Basic.Deliver names the exchange and routing key it was published with."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue(name, exclusive=True)
        await queue.bind("amq.direct", routing_key=name)
        await ch.get_exchange("amq.direct")
        exchange = await ch.get_exchange("amq.direct")
        await exchange.publish(aio_pika.Message(b"d", message_id="id-1", priority=3), routing_key=name)
        inbox = await consume(queue, no_ack=True)
        (message,) = await inbox.wait_for(1)
        delivered: AbstractIncomingMessage = message
        assert (delivered.exchange, delivered.routing_key, delivered.message_id, delivered.priority) == (
            "amq.direct",
            name,
            "id-1",
            3,
        )
