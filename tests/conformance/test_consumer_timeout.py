"""consumer_timeout: a delivery left unacked too long closes its channel with 406 (RabbitMQ 3.10: 30 min
by default). RabbitMQ 3.10 sets it only node-wide, so this runs on a private embedded broker with a short
timeout; the text is RabbitMQ's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from broker_sim.embedded.launch import EmbeddedBroker
from tests.conformance.clients import DEADLINE, connection, consume


@pytest.fixture
def impatient_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A private embedded broker with consumer_timeout = 300 ms."""
    broker = EmbeddedBroker(tmp_path / "data", user="conf", password="conf-secret", consumer_timeout_ms=300)
    broker.start_sync()
    try:
        yield broker
    finally:
        broker.stop_sync()


async def test_an_unacked_delivery_times_out_and_is_redelivered(impatient_broker: EmbeddedBroker) -> None:
    """The slow consumer's channel is closed with 406; the message goes to the next consumer, redelivered."""
    async with connection(impatient_broker.url) as conn:
        slow = await conn.channel()
        closed: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        slow.close_callbacks.add(lambda _ch, exc: closed.done() or closed.set_result(exc))
        queue = await slow.declare_queue("jobs")
        held = await consume(queue)
        await slow.default_exchange.publish(aio_pika.Message(b"job"), routing_key="jobs")
        await held.wait_for(1)
        error = await asyncio.wait_for(closed, DEADLINE)
        assert isinstance(error, aio_pika.exceptions.ChannelPreconditionFailed)
        assert f"delivery acknowledgement on channel {slow.number} timed out" in str(error)
        assert "Timeout value used: 300 ms" in str(error)

        quick = await conn.channel()
        inbox = await consume(await quick.get_queue("jobs"))
        (again,) = await inbox.wait_for(1)
        assert again.body == b"job" and again.redelivered
        await again.ack()
