"""Queue and exchange lifecycles and the errors RabbitMQ gives (codes and texts)."""

from __future__ import annotations

import aio_pika
import aiormq.exceptions
import pika
import pytest

from tests.conformance.clients import channel, connection
from tests.conformance.conftest import BrokerUnderTest


async def test_exclusive_queue_is_locked_to_its_connection(broker: BrokerUnderTest, name: str) -> None:
    """Another connection gets 405 RESOURCE_LOCKED; the queue goes when its connection closes."""
    async with connection(broker.url) as owner:
        ch = await owner.channel()
        await ch.declare_queue(name, exclusive=True)
        async with channel(broker.url) as other:
            with pytest.raises(aiormq.exceptions.ChannelLockedResource) as caught:
                await other.declare_queue(name, passive=True)
            assert "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue" in str(caught.value)
    async with channel(broker.url) as ch:
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity) as missing:
            await ch.declare_queue(name, passive=True)
        assert f"NOT_FOUND - no queue '{name}' in vhost '{broker.vhost}'" in str(missing.value)


async def test_auto_delete_queue_goes_with_its_last_consumer(broker: BrokerUnderTest, name: str) -> None:
    """An auto-delete queue lives until a consumer came and the last one left."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        queue = await ch.declare_queue(name, auto_delete=True)
        tag_one = await queue.consume(lambda m: m.ack())  # type: ignore[arg-type,return-value]
        tag_two = await queue.consume(lambda m: m.ack())  # type: ignore[arg-type,return-value]
        await queue.cancel(tag_one)
        await ch.declare_queue(name, passive=True)  # one consumer left: still there
        await queue.cancel(tag_two)
        probe = await conn.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await probe.declare_queue(name, passive=True)


async def test_auto_delete_exchange_goes_with_its_last_binding(broker: BrokerUnderTest, name: str) -> None:
    """An auto-delete exchange is deleted when its last queue unbinds."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        exchange = await ch.declare_exchange(name, aio_pika.ExchangeType.FANOUT, auto_delete=True)
        queue = await ch.declare_queue(f"{name}.q", exclusive=True)
        await queue.bind(exchange)
        await queue.unbind(exchange)
        probe = await conn.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity) as caught:
            await probe.declare_exchange(name, passive=True)
        assert f"NOT_FOUND - no exchange '{name}' in vhost '{broker.vhost}'" in str(caught.value)


async def test_server_named_queue(broker: BrokerUnderTest) -> None:
    """``queue_declare("")`` gets an ``amq.gen-`` name."""
    async with channel(broker.url) as ch:
        queue = await ch.declare_queue("", exclusive=True)
        assert queue.name.startswith("amq.gen-")


async def test_redeclare_with_other_properties_is_406(broker: BrokerUnderTest, name: str) -> None:
    """Inequivalent durable flag or exchange type: 406 PRECONDITION_FAILED with RabbitMQ's words."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        await ch.declare_queue(name, auto_delete=True)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as caught:
            await ch.declare_queue(name, durable=True, auto_delete=True)
        assert (
            f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{name}' in vhost '{broker.vhost}': "
            "received 'true' but current is 'false'" in str(caught.value)
        )
        ch = await conn.channel()
        await ch.declare_exchange(name, aio_pika.ExchangeType.DIRECT, auto_delete=True)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as wrong_type:
            await ch.declare_exchange(name, aio_pika.ExchangeType.FANOUT, auto_delete=True)
        assert f"inequivalent arg 'type' for exchange '{name}'" in str(wrong_type.value)
        ch = await conn.channel()
        await ch.queue_delete(name)
        await ch.exchange_delete(name)


async def test_reserved_names_are_403(broker: BrokerUnderTest, name: str) -> None:
    """Names starting with ``amq.`` are the broker's."""
    async with connection(broker.url) as conn:
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as caught:
            await (await conn.channel()).declare_queue(f"amq.{name}")
        assert f"ACCESS_REFUSED - queue name 'amq.{name}' contains reserved prefix 'amq.*'" in str(
            caught.value
        )
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await (await conn.channel()).declare_exchange(f"amq.{name}", aio_pika.ExchangeType.TOPIC)


async def test_publish_to_a_missing_exchange_closes_the_channel(broker: BrokerUnderTest, name: str) -> None:
    """404 on publish; the connection stays usable."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        exchange = await ch.get_exchange(f"{name}.missing", ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await exchange.publish(aio_pika.Message(b"x"), routing_key="k")
        fresh = await conn.channel()
        queue = await fresh.declare_queue("", exclusive=True)
        await fresh.default_exchange.publish(aio_pika.Message(b"ok"), queue.name)
        assert (await queue.get()).body == b"ok"


async def test_exclusive_consumer_excludes_others(broker: BrokerUnderTest, name: str) -> None:
    """A second consumer on a queue with an exclusive consumer gets 403."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        queue = await ch.declare_queue(name, exclusive=True)
        await queue.consume(lambda m: m.ack(), exclusive=True)  # type: ignore[arg-type,return-value]
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as caught:
            await queue.consume(lambda m: m.ack())  # type: ignore[arg-type,return-value]
        assert f"queue '{name}' in vhost '{broker.vhost}' in exclusive use" in str(caught.value)


def test_deleting_a_queue_cancels_its_consumers(broker: BrokerUnderTest, name: str) -> None:
    """Consumers of a deleted queue get Basic.Cancel (consumer_cancel_notify)."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        ch = conn.channel()
        ch.queue_declare(name)
        cancelled: list[object] = []
        ch.add_on_cancel_callback(cancelled.append)
        ch.basic_consume(name, lambda *_: None)
        other = conn.channel()
        other.queue_delete(name)
        deadline = 50
        while not cancelled and deadline:
            conn.process_data_events(time_limit=0.2)  # waits for frames, up to 0.2 s each
            deadline -= 1
        assert cancelled, "no Basic.Cancel arrived"
    finally:
        conn.close()


async def test_delete_if_empty_and_if_unused(broker: BrokerUnderTest, name: str) -> None:
    """Queue.Delete's conditions give 406."""
    async with connection(broker.url) as conn:
        ch = await conn.channel()
        queue = await ch.declare_queue(name, exclusive=True)
        await ch.default_exchange.publish(aio_pika.Message(b"x"), name)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
            await queue.delete(if_empty=True)
        ch = await conn.channel()
        result = await ch.queue_delete(name)
        assert result.message_count == 1
