"""Sender-selected distribution (``CC`` / ``BCC``), direct reply-to and ``connection.update-secret``."""

from __future__ import annotations

import asyncio

import aio_pika
import pika
import pytest

from tests.conformance.clients import DEADLINE, channel, connection, consume, drain, pika_connection
from tests.conformance.conftest import BrokerUnderTest


async def test_cc_and_bcc_add_routing_keys_and_bcc_is_stripped(broker: BrokerUnderTest, name: str) -> None:
    """CC and BCC route like extra routing keys; receivers see CC but never BCC."""
    async with channel(broker.url) as ch:
        exchange = await ch.declare_exchange(name, aio_pika.ExchangeType.DIRECT, auto_delete=True)
        queues = {}
        for key in ("to", "cc", "bcc", "other"):
            queues[key] = await ch.declare_queue(f"{name}.{key}", exclusive=True)
            await queues[key].bind(exchange, routing_key=key)
        await exchange.publish(
            aio_pika.Message(b"memo", headers={"CC": ["cc"], "BCC": ["bcc"], "keep": "me"}),
            routing_key="to",
        )
        received = {}
        for key in ("to", "cc", "bcc"):
            message = await queues[key].get(no_ack=True)
            received[key] = message
            assert message.body == b"memo" and message.routing_key == "to"
        assert await drain(queues["other"]) == []
    for message in received.values():
        assert dict(message.headers) == {"CC": ["cc"], "keep": "me"}


async def test_cc_through_the_default_exchange(broker: BrokerUnderTest, name: str) -> None:
    """On the default exchange a CC key names a queue; a key named twice delivers once."""
    async with channel(broker.url) as ch:
        first = await ch.declare_queue(f"{name}.1", exclusive=True)
        second = await ch.declare_queue(f"{name}.2", exclusive=True)
        await ch.default_exchange.publish(
            aio_pika.Message(b"both", headers={"CC": [f"{name}.2", f"{name}.1", 5]}), routing_key=f"{name}.1"
        )
        assert await drain(first) == [b"both"]
        assert await drain(second) == [b"both"]


@pytest.mark.parametrize("header", ["CC", "BCC"])
def test_pika_a_string_cc_is_406(broker: BrokerUnderTest, name: str, header: str) -> None:
    """CC / BCC must be arrays: a string closes the channel with 406 unacceptable_type_in_header."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare(name, exclusive=True)
        ch.basic_publish("", name, b"x", pika.BasicProperties(headers={header: "somewhere"}))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare(name, passive=True)
        assert caught.value.reply_code == 406
        assert f'unacceptable_type_in_header,"{header}",longstr' in caught.value.reply_text


async def test_direct_reply_to_round_trip(broker: BrokerUnderTest, name: str) -> None:
    """An RPC over amq.rabbitmq.reply-to: the server answers to the rewritten reply_to."""
    async with connection(broker.url) as conn:
        client = await conn.channel()
        server = await conn.channel()
        requests = await server.declare_queue(name, exclusive=True)
        replies = await consume(await client.get_queue("amq.rabbitmq.reply-to", ensure=False), no_ack=True)
        await client.default_exchange.publish(
            aio_pika.Message(b"ping", reply_to="amq.rabbitmq.reply-to", correlation_id="c-1"),
            routing_key=name,
        )
        request = await requests.get(no_ack=True)
        assert request.reply_to is not None
        assert request.reply_to.startswith("amq.rabbitmq.reply-to.")
        await server.default_exchange.publish(
            aio_pika.Message(b"pong", correlation_id=request.correlation_id), routing_key=request.reply_to
        )
        (reply,) = await replies.wait_for(1)
        assert reply.body == b"pong" and reply.correlation_id == "c-1"
        assert reply.routing_key == request.reply_to


def test_pika_direct_reply_to_errors(broker: BrokerUnderTest, name: str) -> None:
    """Without a reply consumer the publish is 406; a reply consumer must be no-ack (406)."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare(name, exclusive=True)
        ch.basic_publish("", name, b"x", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.queue_declare(name, passive=True)
        assert caught.value.reply_code == 406
        assert "fast reply consumer does not exist" in caught.value.reply_text
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.basic_consume("amq.rabbitmq.reply-to", lambda *_: None, auto_ack=False)
        assert caught.value.reply_code == 406
        assert "reply consumer cannot acknowledge" in caught.value.reply_text


def test_pika_reply_to_a_gone_consumer_is_returned(broker: BrokerUnderTest, name: str) -> None:
    """A reply to a reply queue whose consumer was cancelled routes nowhere (returned if mandatory)."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(name, exclusive=True)
        tag = ch.basic_consume("amq.rabbitmq.reply-to", lambda *_: None, auto_ack=True)
        ch.basic_publish("", name, b"ask", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
        _, properties, _ = ch.basic_get(name, auto_ack=True)
        ch.basic_cancel(tag)
        with pytest.raises(pika.exceptions.UnroutableError):
            ch.basic_publish("", properties.reply_to, b"late", mandatory=True)


async def test_update_secret_is_accepted(broker: BrokerUnderTest) -> None:
    """connection.update-secret gets update-secret-ok and the connection keeps working."""
    async with connection(broker.url) as conn:
        await asyncio.wait_for(conn.update_secret(broker.password, reason="rotation"), DEADLINE)
        ch = await conn.channel()
        queue = await ch.declare_queue("", exclusive=True)
        await ch.default_exchange.publish(aio_pika.Message(b"still"), routing_key=queue.name)
        assert await drain(queue) == [b"still"]


def test_pika_recover_without_requeue_is_540(broker: BrokerUnderTest) -> None:
    """basic.recover(requeue=false) is not implemented by RabbitMQ 3.x either: a 540 connection error."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as caught:
            ch.basic_recover(requeue=False)
        assert caught.value.reply_code == 540
