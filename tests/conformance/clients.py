"""Client helpers for the conformance suite: collect deliveries with a deadline, never sleep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import aio_pika
import pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
    Arguments,
)

DEADLINE = 10.0


@contextmanager
def pika_connection(url: str) -> Iterator[pika.BlockingConnection]:
    """A blocking pika connection, closed at the end (unless the broker closed it)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield conn
    finally:
        if conn.is_open:
            conn.close()


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[AbstractConnection]:
    """A plain (not robust) aio-pika connection, closed at the end."""
    conn = await aio_pika.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def channel(url: str, confirms: bool = True) -> AsyncIterator[AbstractChannel]:
    """A connection with one channel."""
    async with connection(url) as conn:
        yield await conn.channel(publisher_confirms=confirms)


class Inbox:
    """Deliveries of one consumer, with waits that have deadlines."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []
        self._changed = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """The consumer callback."""
        self.messages.append(message)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = DEADLINE) -> list[AbstractIncomingMessage]:
        """Wait until ``count`` messages have arrived."""

        async def until() -> None:
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"got {len(self.messages)} of {count} messages in {timeout:g} s") from None
        return self.messages


async def consume(queue: AbstractQueue, no_ack: bool = False, arguments: Arguments = None) -> Inbox:
    """Start consuming into an :class:`Inbox` (``arguments``: Basic.Consume's, e.g. ``x-priority``)."""
    inbox = Inbox()
    await queue.consume(inbox.on_message, no_ack=no_ack, arguments=arguments)
    return inbox


async def drain(queue: AbstractQueue) -> list[bytes]:
    """Every ready message of a queue, by Basic.Get (acked)."""
    bodies = []
    while True:
        message = await queue.get(fail=False, no_ack=True)
        if message is None:
            return bodies
        bodies.append(message.body)
