"""AMQP transactions (``tx.*``) as RabbitMQ 3.10 runs them: publishes and acks take effect at commit."""

from __future__ import annotations

import aio_pika
import pika
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import channel, connection, drain, pika_connection
from tests.conformance.conftest import BrokerUnderTest


def _count(ch: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> int:
    return int(ch.queue_declare(queue, passive=True).method.message_count)


def test_publishes_wait_for_commit_and_rollback_drops_them(broker: BrokerUnderTest, name: str) -> None:
    """Nothing published in a transaction is in the queue before commit; rolled-back ones never are."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare(name, exclusive=True)
        ch.tx_select()
        ch.basic_publish("", name, b"1", pika.BasicProperties(delivery_mode=2))
        ch.basic_publish("", name, b"2")
        assert _count(ch, name) == 0
        ch.tx_commit()
        assert _count(ch, name) == 2
        ch.basic_publish("", name, b"3")
        ch.tx_rollback()
        ch.tx_commit()
        assert _count(ch, name) == 2
        bodies = [ch.basic_get(name, auto_ack=True)[2] for _ in range(2)]
        assert bodies == [b"1", b"2"]


def test_acks_wait_for_commit_and_a_rolled_back_ack_is_redelivered(
    broker: BrokerUnderTest, name: str
) -> None:
    """An ack rolled back leaves the message unacked: it comes back (redelivered) when the channel closes."""
    with pika_connection(broker.url) as conn:
        setup = conn.channel()
        setup.queue_declare(name, exclusive=True)
        for body in (b"a", b"b"):
            setup.basic_publish("", name, body)
        ch = conn.channel()
        ch.tx_select()
        first, _, _ = ch.basic_get(name)
        second, _, _ = ch.basic_get(name)
        assert first is not None and second is not None
        ch.basic_ack(first.delivery_tag)
        ch.tx_commit()
        ch.basic_ack(second.delivery_tag)
        ch.tx_rollback()
        ch.close()
        method, _, body = setup.basic_get(name, auto_ack=True)
        assert body == b"b" and method is not None and method.redelivered
        assert setup.basic_get(name, auto_ack=True) == (None, None, None)


def test_a_rejected_delivery_is_requeued_at_commit(broker: BrokerUnderTest, name: str) -> None:
    """basic.reject(requeue) inside a transaction takes effect at commit."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare(name, exclusive=True)
        ch.basic_publish("", name, b"r")
        ch.tx_select()
        method, _, _ = ch.basic_get(name)
        assert method is not None
        ch.basic_reject(method.delivery_tag, requeue=True)
        assert _count(ch, name) == 0
        ch.tx_commit()
        assert _count(ch, name) == 1


@pytest.mark.parametrize("call", ["tx_commit", "tx_rollback"])
def test_commit_or_rollback_without_select_is_406(broker: BrokerUnderTest, call: str) -> None:
    """tx.commit / tx.rollback on a channel that never selected tx: 406 channel is not transactional."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            getattr(ch, call)()
        assert caught.value.reply_code == 406
        assert "channel is not transactional" in caught.value.reply_text


def test_confirm_and_tx_modes_do_not_mix(broker: BrokerUnderTest) -> None:
    """Switching between confirm and tx mode is 406 both ways."""
    with pika_connection(broker.url) as conn:
        ch = conn.channel()
        ch.tx_select()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.confirm_delivery()
        assert caught.value.reply_code == 406
        assert "cannot switch from tx to confirm mode" in caught.value.reply_text
        ch = conn.channel()
        ch.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            ch.tx_select()
        assert "cannot switch from confirm to tx mode" in caught.value.reply_text


async def test_committed_persistent_messages_survive_a_kill(private_broker: EmbeddedBroker) -> None:
    """Persistent messages committed in an aio-pika transaction survive a kill -9 after the commit."""
    async with connection(private_broker.url) as conn:
        ch = await conn.channel(publisher_confirms=False)
        queue = await ch.declare_queue("ledger", durable=True)
        async with ch.transaction():
            for i in range(200):
                await ch.default_exchange.publish(
                    aio_pika.Message(b"%d" % i, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name,
                )
    await private_broker.restart(crash=True)
    async with channel(private_broker.url) as ch:
        assert await drain(await ch.get_queue("ledger")) == [b"%d" % i for i in range(200)]
