"""Durability across restarts and crashes, on a private embedded broker (never the shared RabbitMQ)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aio_pika
import aiormq.exceptions
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import channel, drain


async def _publish(
    ch: aio_pika.abc.AbstractChannel, exchange: str, key: str, count: int, persistent: bool
) -> None:
    target = await ch.get_exchange(exchange) if exchange else ch.default_exchange
    mode = aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
    for start in range(0, count, 200):
        await asyncio.gather(
            *(
                target.publish(aio_pika.Message(b"%d" % i, delivery_mode=mode), routing_key=key)
                for i in range(start, min(count, start + 200))
            )
        )


@pytest.mark.parametrize("crash", [False, True], ids=["clean-restart", "kill-9"])
async def test_durable_topology_and_persistent_messages_survive(
    private_broker: EmbeddedBroker, crash: bool
) -> None:
    """Durable exchange, queue and binding survive with every confirmed persistent message; transient
    messages and non-durable queues do not (as on RabbitMQ)."""
    async with channel(private_broker.url) as ch:
        exchange = await ch.declare_exchange("orders", aio_pika.ExchangeType.DIRECT, durable=True)
        durable = await ch.declare_queue("orders.kept", durable=True)
        await durable.bind(exchange, routing_key="new")
        transient_queue = await ch.declare_queue("orders.gone", durable=False)
        await transient_queue.bind(exchange, routing_key="new")
        await _publish(ch, "orders", "new", 1000, persistent=True)
        await _publish(ch, "orders", "new", 300, persistent=False)
    await private_broker.restart(crash=crash)
    async with channel(private_broker.url) as ch:
        kept = await ch.declare_queue("orders.kept", passive=True)
        assert kept.declaration_result.message_count == 1000
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await ch.declare_queue("orders.gone", passive=True)
    async with channel(private_broker.url) as ch:
        await ch.get_exchange("orders")  # passive: still there
        await _publish(ch, "orders", "new", 1, persistent=True)  # the binding still routes
        bodies = await drain(await ch.get_queue("orders.kept"))
        assert bodies == [b"%d" % i for i in range(1000)] + [b"0"]


async def test_acked_messages_stay_gone_and_the_log_is_compacted(private_broker: EmbeddedBroker) -> None:
    """Acked messages do not come back after a restart, unacked ones do, and the log holds only what lives."""
    async with channel(private_broker.url) as ch:
        queue = await ch.declare_queue("work", durable=True)
        await _publish(ch, "", "work", 500, persistent=True)
        for _ in range(450):
            message = await queue.get()
            assert message is not None
            await message.ack()
        held = await queue.get()  # unacked at shutdown: it comes back
        assert held is not None and held.body == b"450"
    await private_broker.restart()
    log = private_broker.data_dir / "store.log"
    async with channel(private_broker.url) as ch:
        bodies = await drain(await ch.get_queue("work"))
    assert bodies == [b"%d" % i for i in range(450, 500)]
    assert log.stat().st_size < 50 * 200  # 50 small messages and one queue, not 500


async def test_a_second_broker_on_the_same_data_dir_is_refused(private_broker: EmbeddedBroker) -> None:
    """The data dir is locked: two brokers never write one log."""
    from broker_sim.embedded.launch import BrokerStartError

    twin = EmbeddedBroker(private_broker.data_dir, password="x")
    with pytest.raises(BrokerStartError, match="another broker uses"):
        await twin.start()


async def test_the_log_is_compacted_while_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the log outgrows what is live, it is rewritten in place; nothing live is lost."""
    from broker_sim.embedded import store
    from broker_sim.embedded.server import Server

    monkeypatch.setattr(store, "COMPACT_SLACK", 20_000)
    server = Server({"u": "p"}, port=0, data_dir=tmp_path)
    await server.start()
    url = f"amqp://u:p@127.0.0.1:{server.port}/"
    try:
        async with channel(url) as ch:
            queue = await ch.declare_queue("churn", durable=True)
            await _publish(ch, "", "churn", 10, persistent=True)  # these stay
            for _ in range(5):
                await _publish(ch, "", "churn", 200, persistent=True)
                bodies = [await queue.get() for _ in range(210)]
                for message in bodies[10:]:
                    assert message is not None
                    await message.ack()
                for message in bodies[:10]:
                    assert message is not None
                    await message.nack(requeue=True)
            await _publish(ch, "", "churn", 1, persistent=True)  # one more fsync after the last acks
        size = (tmp_path / "store.log").stat().st_size
        # The check runs before each batch is written, so one batch (at most a window of 210
        # acks) may land after it: still far less than the ~1,000 records (~100 kB) appended.
        assert size < 20_000 + 2 * 11 * 100 + 210 * 40
    finally:
        await server.stop()
    restarted = Server({"u": "p"}, port=0, data_dir=tmp_path)
    await restarted.start()
    try:
        assert restarted.recovered == 11
    finally:
        await restarted.stop()
