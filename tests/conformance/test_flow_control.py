"""A consumer that stops reading its socket is not flooded: the broker holds messages back."""

from __future__ import annotations

import socket

import aio_pika
from pamqp import commands

from tests.conformance.clients import channel
from tests.conformance.conftest import BrokerUnderTest
from tests.conformance.raw import RawClient


async def test_a_consumer_that_stops_reading_is_not_flooded(broker: BrokerUnderTest, name: str) -> None:
    """A no-ack consumer that never reads: most of a 20 MB backlog stays in the queue, and the broker
    keeps serving everyone else."""
    stalled = RawClient(broker)
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        stalled.handshake()
        stalled.send(1, commands.Channel.Open())
        assert isinstance(stalled.read_frame(), commands.Channel.OpenOk)
        async with channel(broker.url) as ch:
            await ch.declare_queue(name, auto_delete=True)
            stalled.send(1, commands.Basic.Consume(queue=name, no_ack=True))
            assert isinstance(stalled.read_frame(), commands.Basic.ConsumeOk)
            body = b"x" * 20_000
            for start in range(0, 1000, 100):
                for _ in range(start, start + 100):
                    await ch.default_exchange.publish(aio_pika.Message(body), name)
            backlog = await ch.declare_queue(name, passive=True)
            assert backlog.declaration_result.message_count > 500
            other = await ch.declare_queue("", exclusive=True)
            await ch.default_exchange.publish(aio_pika.Message(b"still here"), other.name)
            got = await other.get()
            assert got is not None and got.body == b"still here"
            await got.ack()
    finally:
        stalled.close()
