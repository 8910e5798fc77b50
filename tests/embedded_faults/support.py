"""Helpers of the fault suite: publish with confirms on the raw client, drain and count with aio-pika."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aio_pika

from broker_sim.embedded.launch import EmbeddedBroker
from broker_sim.embedded.store import RECORD
from tests.conformance.clients import Inbox
from tests.embedded_faults.publisher import RawPublisher

DEADLINE = 30.0


async def publisher(
    broker: EmbeddedBroker, queue: str, durable: bool = True, heartbeat: int = 0
) -> RawPublisher:
    """A raw publisher on ``broker`` with ``queue`` declared."""
    client = await RawPublisher.connect(broker.host, broker.port, broker.user, broker.password, heartbeat)
    await client.declare(queue, durable)
    return client


def body(seq: int, size: int = 64) -> bytes:
    """A body that names its publish sequence number, padded to ``size``."""
    return f"{seq:08d}".encode().ljust(size, b".")


def seq_of(data: bytes) -> int:
    """The publish sequence number a :func:`body` carries."""
    return int(data[:8])


async def publish_confirmed(broker: EmbeddedBroker, queue: str, count: int) -> RawPublisher:
    """Publish ``count`` persistent messages (sequence numbers 1…count) and wait for every answer."""
    client = await publisher(broker, queue)
    try:
        for _ in range(count):
            client.publish(queue, body(client.sent + 1))
        await client.wait("settled", DEADLINE)
    finally:
        await client.close()
    return client


async def bodies_in(url: str, queue: str) -> list[int]:
    """The sequence numbers of every message in ``queue`` (consumed without acks: they are gone after)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        source = await channel.declare_queue(queue, passive=True)
        count = source.declaration_result.message_count or 0
        seqs: list[int] = []
        if count:
            arrived = asyncio.Event()

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                seqs.append(seq_of(message.body))
                arrived.set()

            await source.consume(on_message, no_ack=True)
            # Bounded by a stall, not by the total: 45,000 messages read back on a loaded machine
            # can take longer than DEADLINE while they keep coming.
            while len(seqs) < count:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), DEADLINE)
                except TimeoutError:
                    raise AssertionError(
                        f"{queue}: got {len(seqs)} of {count} messages, then none for {DEADLINE:g} s"
                    ) from None
        return seqs
    finally:
        await connection.close()


class Drainer:
    """A consumer that acks everything from a queue, on a connection of its own (a connection that
    publishes nothing is never blocked by an alarm)."""

    def __init__(self, url: str, queue: str) -> None:
        self.url, self.queue = url, queue
        self.inbox = Inbox()
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def start(self) -> Drainer:
        """Connect and consume."""
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=50)
        await (await channel.get_queue(self.queue)).consume(self._on_message)
        return self

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()
        await self.inbox.on_message(message)

    @property
    def seqs(self) -> list[int]:
        """The sequence numbers consumed so far."""
        return [seq_of(message.body) for message in self.inbox.messages]

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` messages were consumed."""
        await self.inbox.wait_for(count, DEADLINE)

    async def stop(self) -> None:
        """Close the connection (what was delivered and not acked goes back to the queue)."""
        if self._connection is not None:
            await self._connection.close()


def log_lines(broker: EmbeddedBroker, pattern: str) -> list[str]:
    """Lines of the broker's log matching a regular expression."""
    text = (broker.data_dir / "broker.log").read_text()
    return [line for line in text.splitlines() if re.search(pattern, line)]


def records(log: Path) -> list[tuple[int, int, int]]:
    """(offset, size with header, kind) of every record of a store log."""
    data = log.read_bytes()
    found, offset = [], 0
    while offset + RECORD.size <= len(data):
        size, _, kind = RECORD.unpack_from(data, offset)
        found.append((offset, RECORD.size + size, kind))
        offset += RECORD.size + size
    return found
