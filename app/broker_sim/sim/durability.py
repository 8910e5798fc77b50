"""The durability lab: publish to three kinds of queue, restart the broker, count the survivors.

Survivors are counted on a plain connection with passive declares (and by reading the message
ids back, so duplicates show): a robust connection would re-declare a lost queue on reconnect
and show it as present and empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

from broker_sim.broker.handle import BrokerHandle
from broker_sim.domain.urls import mask_url

RECONNECT_LIMIT = 60.0
RECOVERY_WAIT = 30.0
"""How long a queue the broker knows but has not started again yet may take to come back."""


@dataclass(frozen=True)
class LabQueue:
    """One side of the lab: a queue and the kind of messages it is fed."""

    name: str
    durable: bool
    persistent: bool
    label: str


LAB_QUEUES = (
    LabQueue("durable-persistent", True, True, "durable queue, persistent messages"),
    LabQueue("durable-transient", True, False, "durable queue, transient messages"),
    LabQueue("transient-queue", False, True, "non-durable queue, persistent messages"),
)


@dataclass
class LabRow:
    """Before/after figures of one lab queue."""

    queue: LabQueue
    published: int = 0
    confirmed: int = 0
    before: int | None = None
    after: int | None = None
    distinct_after: int = 0
    queue_survived: bool = False
    missing: str = ""
    """The broker's own words when a queue that should be there is not (its 404 reply)."""

    @property
    def lost(self) -> int:
        """Confirmed messages not there after the restart."""
        return max(0, self.confirmed - self.distinct_after)

    @property
    def duplicated(self) -> int:
        """Messages there more than once after the restart."""
        return max(0, (self.after or 0) - self.distinct_after)

    def verdict(self) -> str:
        """Why the numbers are what they are, in plain words."""
        q = self.queue
        if not self.queue_survived and q.durable:
            return f"the durable queue is missing after the restart, the broker says: {self.missing}"
        if not self.queue_survived:
            return (
                "the queue itself is gone: a non-durable queue is deleted when the broker stops, "
                "so even persistent messages in it are lost"
            )
        if not q.persistent:
            return (
                "the queue survived but its messages did not: transient messages live in memory "
                "only, a durable queue keeps its definition, not them"
            )
        if self.lost == 0:
            return (
                "everything confirmed survived: a durable queue and persistent messages, and a "
                "confirm means the broker had it on disk"
            )
        return f"{self.lost} confirmed persistent messages are missing: that is a broker bug worth reporting"


@dataclass
class LabResult:
    """A whole lab run."""

    rows: list[LabRow] = field(default_factory=list)
    restart_seconds: float = 0.0
    crash: bool = False


async def connect_plain(url: str, limit: float | None = RECONNECT_LIMIT) -> AbstractConnection:
    """A plain (not robust) connection, retried until the broker answers (``limit`` None: forever)."""
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        try:
            connection: AbstractConnection = await aio_pika.connect(url, timeout=5)
            return connection
        except (OSError, aiormq.exceptions.AMQPError, TimeoutError):
            if deadline is not None and time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


Progress = Callable[[str, str], None]
"""Told each step of a lab run: its phase (publish, restart, count) and what happens, in words."""


class DurabilityLab:
    """Runs the lab against a broker broker-sim can restart (or one the user restarts).

    ``queues`` may leave one out: a broker may refuse the non-durable one (RabbitMQ 4.3+).
    """

    def __init__(
        self,
        broker: BrokerHandle,
        *,
        queues: tuple[LabQueue, ...] = LAB_QUEUES,
        prefix: str = "broker-sim.durability.",
        progress: Progress | None = None,
    ) -> None:
        self.broker = broker
        self.queues = queues
        self.prefix = prefix
        self.progress = progress or (lambda phase, text: None)
        self.run_id = uuid.uuid4().hex[:8]

    def _name(self, q: LabQueue) -> str:
        return self.prefix + q.name

    async def _connect(self, limit: float | None = RECONNECT_LIMIT) -> AbstractConnection:
        return await connect_plain(self.broker.url, limit)

    async def publish(self, count: int) -> list[LabRow]:
        """Start clean: declare and purge the queues, publish ``count`` to each with confirms."""
        rows = [LabRow(q) for q in self.queues]
        conn = await self._connect(10)
        try:
            channel = await conn.channel(publisher_confirms=True)
            for row in rows:
                await self._declare_empty(conn, row.queue)
            for row in rows:
                self.progress("publish", f"publishing {count} to {row.queue.name}")
                row.published, row.confirmed = await self._publish_confirmed(channel, row.queue, count)
            for row in rows:
                row.before = await self._depth(conn, row.queue)
        finally:
            await conn.close()
        return rows

    async def _declare_empty(self, conn: AbstractConnection, q: LabQueue) -> None:
        """Declare the queue and purge what an earlier run left in it.

        Purge, not delete and declare again: RabbitMQ answers queue.delete before the queue's
        record is gone, so a declare right after it can be answered by the dying queue.
        """
        channel = await conn.channel()
        try:
            queue = await channel.declare_queue(self._name(q), durable=q.durable)
        except aiormq.exceptions.ChannelPreconditionFailed:
            # A queue of that name with other arguments (someone else's): replace it, and give
            # the deleted one the moment it may need to be gone (the race described above).
            await (await conn.channel()).queue_delete(self._name(q))
            deadline = time.monotonic() + 5
            while True:
                channel = await conn.channel()
                try:
                    queue = await channel.declare_queue(self._name(q), durable=q.durable)
                    break
                except aiormq.exceptions.ChannelPreconditionFailed:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
        await queue.purge()
        await channel.close()

    async def _publish_confirmed(self, channel: AbstractChannel, q: LabQueue, count: int) -> tuple[int, int]:
        mode = aio_pika.DeliveryMode.PERSISTENT if q.persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        confirmed = 0
        for start in range(0, count, 100):
            batch = [
                channel.default_exchange.publish(
                    aio_pika.Message(b"lab", message_id=f"{self.run_id}.{q.name}.{i}", delivery_mode=mode),
                    self._name(q),
                )
                for i in range(start, min(count, start + 100))
            ]
            results = await asyncio.gather(*batch, return_exceptions=True)
            confirmed += sum(1 for r in results if not isinstance(r, BaseException))
        return count, confirmed

    async def _depth(self, conn: AbstractConnection, q: LabQueue) -> int | None:
        return (await self._passive_depth(conn, q))[0]

    async def _passive_depth(
        self, conn: AbstractConnection, q: LabQueue, wait: float = 0.0
    ) -> tuple[int | None, str]:
        """The queue's depth, or None and the broker's 404 words.

        RabbitMQ also answers 404 for a durable queue it knows but whose process is not running
        (yet): "home node … is down or inaccessible", "… is stopped", "… has crashed". Only
        "no queue" means it is gone; the others are retried for ``wait`` seconds.
        """
        deadline = time.monotonic() + wait
        while True:
            channel = await conn.channel()
            try:
                declared = await channel.declare_queue(self._name(q), passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity as exc:
                reply = str(exc.args[0]) if exc.args else str(exc)
                if "no queue" in reply or time.monotonic() > deadline:
                    return None, reply
                await asyncio.sleep(0.5)
                continue
            count = declared.declaration_result.message_count
            await channel.close()
            return count, ""

    async def _ids(self, conn: AbstractConnection, q: LabQueue) -> set[str]:
        """Read every message id without consuming: get them all, then close to requeue."""
        channel = await conn.channel()
        ids: set[str] = set()
        try:
            queue = await channel.declare_queue(self._name(q), passive=True)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                ids.add(message.message_id or "")
        except aiormq.exceptions.ChannelNotFoundEntity:
            return ids
        finally:
            with contextlib.suppress(aiormq.exceptions.AMQPError, RuntimeError):
                await channel.close()
        return ids

    async def count_after(self, rows: list[LabRow]) -> None:
        """Count what is there now, on a plain connection."""
        conn = await self._connect()
        try:
            for row in rows:
                row.after, row.missing = await self._passive_depth(conn, row.queue, RECOVERY_WAIT)
                row.queue_survived = row.after is not None
                row.distinct_after = len(await self._ids(conn, row.queue)) if row.after else 0
        finally:
            await conn.close()

    async def run(self, count: int, *, crash: bool = False) -> LabResult:
        """Publish, restart (broker-sim's own restart of this broker), count survivors."""
        rows = await self.publish(count)
        self.progress("restart", "restarting the broker" + (" (kill -9)" if crash else ""))
        started = time.monotonic()
        await self.broker.restart(crash=crash)
        self.broker.wake_engines()  # the tabs' engines reconnect now, not after their backoff
        await (await self._connect(None)).close()
        seconds = time.monotonic() - started
        self.progress("count", "counting survivors on a plain connection (passive declares)")
        await self.count_after(rows)
        return LabResult(rows, seconds, crash)

    async def cleanup(self) -> None:
        """Delete the lab's queues."""
        conn = await self._connect(10)
        try:
            for q in LAB_QUEUES:
                with contextlib.suppress(aiormq.exceptions.ChannelClosed):
                    await (await conn.channel()).queue_delete(self._name(q))
        finally:
            await conn.close()

    def describe_broker(self) -> str:
        """The broker this lab restarts, safe to show."""
        return f"{self.broker.kind} at {mask_url(self.broker.url)}"
