"""Consumers: each on its own channel, doing one message's work at a time, killable mid-message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aiormq.abc import DeliveredMessage

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    ConsumerDown,
    ConsumerUp,
    Delivered,
    FlowEvent,
    Nacked,
    PrefetchChanged,
)
from broker_sim.domain.rejecting import deaths, job_fails
from broker_sim.domain.replies import SENT_AT, match_reply, reply_body, reply_id
from broker_sim.domain.scenario import DEFAULT_EXCHANGE, ConsumerGroupSpec
from broker_sim.sim.topology import Topology
from broker_sim.sim.work import perform

log = logging.getLogger(__name__)

ChannelError = (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError)
STOP_GRACE = 5.0
"""Seconds a leaving consumer may spend finishing its job in hand; after that the job goes back
to the queue (the channel closes with it unacked), so a stop or a replay never hangs on it."""


class Consumer:
    """One consumer: its own channel, a consume on the group's queue, a sequential work loop.

    Messages arrive as fast as the prefetch allows and wait in ``inbox``; the work loop takes
    them one by one, like a real single-threaded worker.
    """

    def __init__(self, group: ConsumerGroup, name: str) -> None:
        self.group = group
        self.name = name
        self.inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self.current: AbstractIncomingMessage | None = None
        self.processed = 0
        self.channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._worker: asyncio.Task[None] | None = None
        self._dead = False
        self._stopping = False
        self._log_file = group.log_file(name)

    @property
    def busy(self) -> bool:
        """True while working on a message."""
        return self.current is not None

    @property
    def holding(self) -> int:
        """Messages delivered to this consumer and not yet finished."""
        return self.inbox.qsize() + (1 if self.current is not None else 0)

    async def start(self, connection: AbstractConnection, prefetch: int) -> None:
        """Open a channel, set its prefetch, and start consuming."""
        spec = self.group.spec
        self.channel = await connection.channel(publisher_confirms=False)
        await self.channel.set_qos(prefetch_count=prefetch)
        queue_name = self.group.topology.queue_name(spec.queue)
        self._queue = await self.channel.get_queue(queue_name, ensure=False)
        self._tag = await self._consume()
        self._worker = asyncio.create_task(self._work_loop(), name=f"consumer {self.name}")
        self.group.emit(ConsumerUp(self.name, spec.name, spec.queue, prefetch, spec.ack))

    async def _consume(self) -> str:
        """Consume the group's queue on this channel; returns the consumer tag.

        On aiormq's channel, not through ``Queue.consume``: aiormq already runs each delivery in
        a task of its own, and aio-pika's wrapper starts a second task per message only to call
        the callback (a task's creation and a loop turn per delivery, for nothing).
        """
        if self.channel is None or self._queue is None:
            raise RuntimeError("the consumer has no channel")
        no_ack = self.group.spec.ack == "auto"
        underlay = await self.channel.get_underlay_channel()
        ok = await underlay.basic_consume(
            self._queue.name, partial(self._on_delivery, no_ack=no_ack), no_ack=no_ack
        )
        if ok.consumer_tag is None:  # pamqp types it optional; the broker always names one
            raise RuntimeError("the broker named no consumer tag")
        return ok.consumer_tag

    async def _on_delivery(self, delivered: DeliveredMessage, *, no_ack: bool) -> None:
        await self._on_message(aio_pika.IncomingMessage(delivered, no_ack=no_ack))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._dead:
            return
        if self.group.spec.ack == "manual":  # auto-acked deliveries are never unacked at the broker
            self.group.track(+1)
        names = self.group.topology
        exchange = names.exchange_from_broker(message.exchange or "")
        key = message.routing_key or ""
        if not exchange:
            key = names.queue_key(key)
        self.group.emit(
            Delivered(
                message.message_id or "",
                self.group.spec.queue,
                self.name,
                bool(message.redelivered),
                key,
                exchange,
            )
        )
        self.inbox.put_nowait(message)

    async def _work_loop(self) -> None:
        spec = self.group.spec
        while not self._stopping:
            message = await self.inbox.get()
            self.current = message
            started = time.perf_counter()
            try:
                result = await perform(
                    spec.work, message.body, self._log_file, self.group.spool_dir, self.group.speed
                )
                failed = self._told_to_fail(message)
                if message.correlation_id and not message.reply_to:  # a reply to an RPC request
                    result, failed = match_reply(message.correlation_id, message.body, message.headers)
            except Exception as exc:  # a job the work cannot do is rejected, not fatal to the worker
                result, failed = "", f"{type(exc).__name__}: {exc}"
            if self._dead:
                return
            await self._finish(message, result, failed, (time.perf_counter() - started) * 1000)
            self.current = None

    def _tries(self, message: AbstractIncomingMessage) -> int:
        """This try's number: one more than the times the queue dead-lettered the job as rejected."""
        queue = self.group.topology.queue_name(self.group.spec.queue)
        return 1 + deaths(message.headers, queue, "rejected")

    def _told_to_fail(self, message: AbstractIncomingMessage) -> str:
        """The scenario's reason to fail this job (its ``reject`` table), or ""."""
        reject = self.group.spec.reject
        if not (reject.share or reject.flaky):
            return ""
        tries = self._tries(message)
        first_try = tries == 1 and not message.redelivered
        if not job_fails(reject, message.message_id or "", first_try):
            return ""
        return f"job failed on try {tries}"

    async def _send(self, exchange_name: str, key: str, message: aio_pika.Message) -> None:
        """Publish on this channel, before the ack of the message in hand (the broker keeps the order)."""
        names = self.group.topology
        if self.channel is None:
            raise RuntimeError("the consumer has no channel")
        exchange = (
            self.channel.default_exchange
            if not exchange_name
            else await self.channel.get_exchange(names.exchange_name(exchange_name), ensure=False)
        )
        await exchange.publish(message, names.routing_key(exchange_name, key))

    async def _park(self, message: AbstractIncomingMessage) -> None:
        """Publish the job to the parking lot, as it came."""
        reject = self.group.spec.reject
        copy = aio_pika.Message(
            message.body,
            message_id=message.message_id,
            headers=dict(message.headers or {}),
            delivery_mode=message.delivery_mode,
            content_type=message.content_type,
        )
        await self._send(reject.park_exchange, reject.park_key, copy)

    async def _answer(self, message: AbstractIncomingMessage, result: str) -> None:
        """RPC server: send the result to the request's ``reply_to`` queue, with its correlation id."""
        mid = message.message_id or ""
        answer = aio_pika.Message(
            reply_body(mid, result),
            message_id=reply_id(mid),
            correlation_id=message.correlation_id,
            headers={k: v for k, v in (message.headers or {}).items() if k == SENT_AT},
            content_type="text/plain",
        )
        # reply_to is already the broker's name (amq.gen-… for a server-named queue)
        await self._send(DEFAULT_EXCHANGE, message.reply_to or "", answer)

    async def _finish(self, message: AbstractIncomingMessage, result: str, failed: str, ms: float) -> None:
        spec = self.group.spec
        mid = message.message_id or ""
        if spec.ack == "auto":
            self.processed += 1
            self.group.emit(Acked(mid, spec.queue, self.name, ms, result or failed, auto=True))
            return
        reject = spec.reject
        requeue = bool(failed) and reject.requeue
        try:
            if not failed and spec.reply and message.reply_to:
                await self._answer(message, result)
                result = f"answered {message.correlation_id or '?'}: {result or 'done'}"
            if failed and reject.tries and self._tries(message) >= reject.tries:
                await self._park(message)
                await message.ack()
                failed = f"{failed}: parked after {reject.tries} tries"
            elif failed:
                await message.reject(requeue=requeue)
            elif message.delivery_tag is not None:
                # Don't wait for the socket to drain: the next job can start while the ack is
                # written (what message.ack() waits for costs 10-20 us a message here).
                await message.channel.basic_ack(message.delivery_tag, wait=False)
        except ChannelError as exc:
            log.info("consumer %s could not settle %s: %s", self.name, mid, exc)
            return
        self.group.track(-1)
        if failed:
            self.group.emit(Nacked(mid, spec.queue, self.name, requeue=requeue, reason=failed))
        else:
            self.processed += 1
            self.group.emit(Acked(mid, spec.queue, self.name, ms, result))

    async def set_prefetch(self, prefetch: int) -> None:
        """Cancel and consume again: ``basic.qos`` does not change a running consumer's prefetch."""
        if self._queue is None or self.channel is None or self._tag is None:
            return
        await self._queue.cancel(self._tag)
        await self.channel.set_qos(prefetch_count=prefetch)
        self._tag = await self._consume()

    def _abandon_all(self) -> None:
        """Report every message this consumer holds as handed back to the broker."""
        held = ([self.current] if self.current is not None else []) + _drain(self.inbox)
        for message in held:
            if self.group.spec.ack == "manual":
                self.group.track(-1)
            self.group.emit(
                Abandoned(
                    message.message_id or "",
                    self.group.spec.queue,
                    self.name,
                    redelivered=self.group.spec.ack == "manual",
                )
            )
        self.current = None

    async def kill(self, reason: str = "killed") -> None:
        """Die mid-message: close the channel with messages unacked, so the broker redelivers them.

        (Cancelling a task inside ``message.process()`` would reject the job without requeue and
        lose it; closing the channel is what a crashed worker does.)
        """
        self._dead = True
        self._abandon_all()
        await self._close_channel()
        await self._stop_worker()
        self.group.emit(ConsumerDown(self.name, self.group.spec.name, self.group.spec.queue, reason))

    async def stop(self, reason: str = "scaled-down") -> None:
        """Leave gracefully: stop consuming, finish the job in hand, hand the rest back (requeued)."""
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(*ChannelError):
                await self._queue.cancel(self._tag)
        self._stopping = True
        if self.current is not None and self._worker is not None:
            # it finishes the job in hand, then returns — within bounds
            finished, _ = await asyncio.wait([self._worker], timeout=STOP_GRACE)
            if not finished:
                await self.kill(f"{reason}; its job took over {STOP_GRACE:g} s and went back to the queue")
                return
        self._dead = True
        for message in _drain(self.inbox):
            if self.group.spec.ack == "auto":
                # Already acked on delivery: the broker cannot take it back, so it is lost.
                self.group.emit(Abandoned(message.message_id or "", self.group.spec.queue, self.name, False))
                continue
            with contextlib.suppress(*ChannelError):
                await message.nack(requeue=True)
            self.group.track(-1)
            self.group.emit(
                Nacked(
                    message.message_id or "",
                    self.group.spec.queue,
                    self.name,
                    requeue=True,
                    reason=reason,
                )
            )
        await self._stop_worker()
        await self._close_channel()
        self.group.emit(ConsumerDown(self.name, self.group.spec.name, self.group.spec.queue, reason))

    def detach(self) -> None:
        """The connection is gone: everything held goes back to the broker by itself."""
        self._dead = True
        self._abandon_all()
        if self._worker is not None:
            self._worker.cancel()
        self.group.emit(
            ConsumerDown(self.name, self.group.spec.name, self.group.spec.queue, "connection lost")
        )

    async def _close_channel(self) -> None:
        if self.channel is not None and not self.channel.is_closed:
            with contextlib.suppress(*ChannelError):
                await self.channel.close()

    async def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


def _drain(inbox: asyncio.Queue[AbstractIncomingMessage]) -> list[AbstractIncomingMessage]:
    items = []
    while not inbox.empty():
        items.append(inbox.get_nowait())
    return items


class ConsumerGroup:
    """N identical consumers of one queue; scaled, re-prefetched and killed live."""

    def __init__(
        self,
        spec: ConsumerGroupSpec,
        emit: Callable[[FlowEvent], None],
        topology: Topology,
        log_dir: Path,
        unacked: Counter[str],
        spool_dir: Path,
    ) -> None:
        self.spec = spec
        self.prefetch = spec.prefetch
        self.target = spec.count
        self.speed = 1.0
        self.members: list[Consumer] = []
        self.emit = emit
        self.topology = topology
        self._log_dir = log_dir
        self.spool_dir = spool_dir
        """The only folder image jobs may read files from."""
        self._unacked = unacked
        self._serial = 0
        self._lock = asyncio.Lock()
        self.connection: AbstractConnection | None = None

    def track(self, delta: int) -> None:
        """Count unacked deliveries on this group's queue (the client's own figure)."""
        self._unacked[self.spec.queue] += delta

    def log_file(self, consumer: str) -> Path:
        """Where a log-server consumer stores its lines."""
        return self._log_dir / f"{consumer}.log"

    def _new_name(self) -> str:
        self._serial += 1
        return f"{self.spec.name}-{self._serial}"

    async def attach(self, connection: AbstractConnection) -> None:
        """Start ``target`` consumers on a fresh connection."""
        async with self._lock:
            self.connection = connection
            self.members = []
            for _ in range(self.target):
                await self._add(connection)

    def detach(self) -> None:
        """Forget consumers of a connection that is gone."""
        self.connection = None
        for member in self.members:
            member.detach()
        self.members = []

    async def _add(self, connection: AbstractConnection) -> Consumer:
        consumer = Consumer(self, self._new_name())
        await consumer.start(connection, self.prefetch)
        self.members.append(consumer)
        return consumer

    async def scale(self, count: int) -> None:
        """Add or remove consumers until there are ``count`` (applied on attach when detached).

        The group's own connection decides, not the engine's connected flag: between the
        group's attach and the engine calling itself connected, a scale must still apply.
        """
        async with self._lock:
            self.target = max(0, count)
            connection = self.connection
            if connection is None:
                return
            while len(self.members) < self.target:
                await self._add(connection)
            while len(self.members) > self.target:
                victim = min(self.members, key=lambda m: (m.busy, m.holding))
                self.members.remove(victim)
                await victim.stop()

    async def set_prefetch(self, prefetch: int) -> None:
        """Change the prefetch of every consumer in the group (0 = unlimited)."""
        async with self._lock:
            self.prefetch = max(0, prefetch)
            for member in self.members:
                await member.set_prefetch(self.prefetch)
            self.emit(PrefetchChanged(self.spec.name, self.prefetch))

    async def kill(self, name: str | None = None) -> str | None:
        """Kill one consumer (the named one, else a busy one, else any); returns its name."""
        async with self._lock:
            if not self.members:
                return None
            if name is not None:
                victim = next((m for m in self.members if m.name == name), None)
                if victim is None:
                    return None
            else:
                victim = max(self.members, key=lambda m: (m.busy, m.holding))
            self.members.remove(victim)
            self.target = len(self.members)
            await victim.kill()
            return victim.name

    async def stop(self) -> None:
        """Stop every consumer gracefully (engine shutdown)."""
        async with self._lock:
            for member in self.members:
                await member.stop("stopped")
            self.members = []
