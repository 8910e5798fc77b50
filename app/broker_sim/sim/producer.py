"""A producer: publishes at a rate, paced in batches per tick, waiting for confirms its own way.

Confirms are awaited one at a time, in windows (send N, wait for all N) or fully async (keep
sending, at most N unconfirmed): the three ways of RabbitMQ's publisher-confirms tutorial.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiormq.abc import DeliveredMessage

from broker_sim.domain.events import (
    Acked,
    Confirmed,
    Delivered,
    FlowEvent,
    Nacked,
    ProducerState,
    Published,
    PublishFailed,
    Returned,
)
from broker_sim.domain.replies import SENT_AT, match_reply
from broker_sim.domain.scenario import DEFAULT_WINDOW, DIRECT_REPLY_TO, HeaderValue, ProducerSpec
from broker_sim.sim.messages import make_body, preview

TICK = 0.05
"""Seconds between pacing ticks: one ``sleep`` per tick, not per message (saves CPU at low rates)."""
WINDOW = DEFAULT_WINDOW


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready to publish, with the names the broker will see."""

    message_id: str
    exchange: str
    routing_key: str
    broker_routing_key: str
    headers: dict[str, HeaderValue]
    persistent: bool
    mandatory: bool
    body: bytes
    priority: int | None = None
    expiration_ms: int | None = None
    reply_to: str | None = None
    """RPC: the broker's name of the queue the answer goes to; the correlation id is the message id."""


class Producer:
    """Publishes a scenario producer's messages while attached to a live exchange."""

    def __init__(self, spec: ProducerSpec, run_id: str, seed: int, emit: Callable[[FlowEvent], None]) -> None:
        self.spec = spec
        self.rate = spec.rate
        self.speed = 1.0
        self.paused = False
        self.held = False
        self.blocked = ""
        """The broker's reason while it blocks the publishing connection, else ``""``."""
        self.sent = 0
        self.seq = 0
        self._run_id = run_id
        self._emit = emit
        self._rng = random.Random(f"{seed}:{spec.name}")
        self._keys = itertools.cycle(spec.routing_keys)
        self._headers = itertools.cycle(spec.headers) if spec.headers else None
        self._priorities = itertools.cycle(spec.priority) if spec.priority else None
        self._wake = asyncio.Event()
        self.in_flight: dict[str, Outgoing] = {}
        self.retry: list[Outgoing] = []
        self.window = 1 if spec.confirm == "single" else spec.window or WINDOW
        """Most of its publishes awaiting a confirm at once."""
        self._slots = asyncio.Semaphore(self.window)
        self._turn = asyncio.Lock()
        self._launched: set[asyncio.Task[None]] = set()
        """Async confirms: the publishes whose confirm is still awaited."""

    @property
    def done(self) -> bool:
        """True once a producer with a ``count`` has sent them all."""
        return self.spec.count is not None and self.sent >= self.spec.count

    def set_rate(self, rate: float) -> None:
        """Change the publish rate (messages per second)."""
        self.rate = max(0.0, rate)
        self._wake.set()
        self._say_state()

    @property
    def effective_rate(self) -> float:
        """Messages per second now: the rate times the replay speed, 0 while paused or held."""
        return 0.0 if self.paused or self.held else self.rate * self.speed

    def set_speed(self, speed: float) -> None:
        """Replay speed: scales the rate without changing it."""
        self.speed = speed
        self._wake.set()

    def set_held(self, held: bool) -> None:
        """Hold publishing while a replay is paused (separate from a user's pause)."""
        changed, self.held = self.held != held, held
        self._wake.set()
        if changed:
            self._say_state()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume publishing."""
        self.paused = paused
        self._wake.set()
        self._say_state()

    def set_blocked(self, reason: str) -> None:
        """The broker blocked (``reason``) or unblocked (``""``) the publishing connection."""
        if reason != self.blocked:
            self.blocked = reason
            self._say_state()

    def _say_state(self) -> None:
        self._emit(ProducerState(self.spec.name, self.rate, self.paused, self.held, self.blocked))

    def next_message(self, map_key: Callable[[str], str]) -> Outgoing:
        """Build the next message: its id, routing key, headers and body."""
        self.seq += 1
        seq = self.seq
        spec = self.spec
        if spec.pick == "random":
            key = self._rng.choice(spec.routing_keys)
            headers = dict(self._rng.choice(spec.headers)) if spec.headers else {}
            priority = self._rng.choice(spec.priority) if spec.priority else None
        else:
            key = next(self._keys)
            headers = dict(next(self._headers)) if self._headers else {}
            priority = next(self._priorities) if self._priorities else None
        return Outgoing(
            message_id=f"{self._run_id}.{self.spec.name}.{seq}",
            exchange=self.spec.exchange,
            routing_key=key,
            broker_routing_key=map_key(key),
            headers=headers,
            persistent=self.spec.persistent,
            mandatory=self.spec.mandatory,
            body=make_body(self.spec.body, seq, key, self._rng),
            priority=priority,
            expiration_ms=self.spec.expiration_ms,
            reply_to=self._reply_to(map_key),
        )

    def _reply_to(self, map_key: Callable[[str], str]) -> str | None:
        if self.spec.direct_reply:
            return DIRECT_REPLY_TO  # the broker puts this channel's own reply address in its place
        return map_key(self.spec.reply_queue) if self.spec.reply_queue else None

    async def consume_replies(self, channel: AbstractChannel) -> None:
        """Direct reply-to: consume the answers (no-ack) on the channel the requests go out on.

        The broker requires this consume before the first request that names the pseudo-queue,
        on the same channel; the session calls it before the producer starts.
        """
        queue = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        mid, name = message.message_id or "", self.spec.name
        self._emit(Delivered(mid, DIRECT_REPLY_TO, name, False, message.routing_key or ""))
        result, why = match_reply(message.correlation_id or "", message.body, message.headers)
        if why:  # no-ack: nothing to reject at the broker, but the answer is not taken
            self._emit(Nacked(mid, DIRECT_REPLY_TO, name, requeue=False, reason=why))
        else:
            self._emit(Acked(mid, DIRECT_REPLY_TO, name, 0.0, result, auto=True))

    async def run(self, exchange: AbstractExchange, map_key: Callable[[str], str]) -> None:
        """Publish until cancelled (or ``count`` is reached), pacing with a token bucket.

        First, messages whose confirm never came (the connection went away) are published again:
        at-least-once, so the broker may end up with a duplicate, which the ledger shows.
        """
        self.retry.extend(self.in_flight.values())
        self.in_flight.clear()
        retry, self.retry = self.retry, []
        for start in range(0, len(retry), self.window):
            await self._send(exchange, retry[start : start + self.window], republished=True)
        try:
            await self._pace(exchange, map_key)
            await self._landing()  # a count reached: its last publishes still get their answers
        finally:
            for task in self._launched:  # their messages stay in in_flight: the next run retries them
                task.cancel()

    async def _pace(self, exchange: AbstractExchange, map_key: Callable[[str], str]) -> None:
        loop = asyncio.get_running_loop()
        tokens, last = 1.0, loop.time()
        while not self.done:
            rate = self.effective_rate
            if rate <= 0:
                self._wake.clear()
                await self._wake.wait()
                tokens, last = 1.0, loop.time()
                continue
            # A windowed producer sends whole windows (the tutorial's batches): it waits until a
            # window is due; the others send what is due, a tick's worth at most.
            left = None if self.spec.count is None else self.spec.count - self.sent
            need = self.window if self.spec.confirm == "window" else 1
            need = need if left is None else min(need, left)
            now = loop.time()
            tokens = min(tokens + (now - last) * rate, max(1.0, rate * TICK * 2, need))
            last = now
            n = min(int(tokens), self.window, self.window if left is None else left)
            if n >= need:
                tokens -= n
                self.sent += n
                if self.spec.confirm == "async":
                    await self._launch(exchange, (self.next_message(map_key) for _ in range(n)))
                else:
                    await self.publish_batch(exchange, map_key, n)
                continue
            self._wake.clear()
            wait = min(TICK, (need - tokens) / rate)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def publish_batch(self, exchange: AbstractExchange, map_key: Callable[[str], str], n: int) -> None:
        """Publish ``n`` messages now, awaiting their confirms together (one window)."""
        await self._send(exchange, [self.next_message(map_key) for _ in range(n)])

    async def burst(self, exchange: AbstractExchange, map_key: Callable[[str], str], count: int) -> None:
        """Publish ``count`` messages now, confirmed this producer's way; returns once all are answered."""
        if self.spec.confirm != "async":
            for start in range(0, count, self.window):
                await self.publish_batch(exchange, map_key, min(self.window, count - start))
            return
        # its own publishes only: the pacing beside it may keep some in flight all the time
        mine = await self._launch(exchange, (self.next_message(map_key) for _ in range(count)))
        if mine:
            await asyncio.wait(mine)

    async def _landing(self) -> None:
        """Until every async publish launched so far has its answer."""
        while self._launched:
            await asyncio.wait(set(self._launched))

    async def _launch(
        self, exchange: AbstractExchange, batch: Iterable[Outgoing]
    ) -> list[asyncio.Task[None]]:
        """Async confirms: publish each as soon as fewer than ``window`` await their confirm; a
        confirm frees its slot as it comes (a callback), whatever the order. Returns the tasks
        awaiting the confirms."""
        launched = []
        for m in batch:
            await self._slots.acquire()
            self.in_flight[m.message_id] = m
            task = asyncio.create_task(self._publish(exchange, m, False), name=f"publish {m.message_id}")
            self._launched.add(task)
            task.add_done_callback(self._landed)
            launched.append(task)
        return launched

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._launched.discard(task)
        self._slots.release()

    async def _send(
        self, exchange: AbstractExchange, batch: list[Outgoing], republished: bool = False
    ) -> None:
        # One window at a time, whoever sends it (the pacing, a burst, a retry): a window waits
        # until the one before it is all answered.
        async with self._turn:
            for m in batch:
                self.in_flight[m.message_id] = m
            await asyncio.gather(*(self._publish(exchange, m, republished) for m in batch))

    async def _publish(self, exchange: AbstractExchange, m: Outgoing, republished: bool) -> None:
        # Each message leaves ``in_flight`` as soon as the broker answered it: when the batch is
        # cancelled half-way (the connection went, the engine stops), only the ones still
        # unanswered are published again — never one already confirmed.
        outcome = await publish(exchange, m, self.spec.name, self._emit, republished=republished)
        self.in_flight.pop(m.message_id, None)
        if outcome == "unknown":
            self.retry.append(m)


Outcome = Literal["confirmed", "returned", "refused", "unknown"]


async def publish(
    exchange: AbstractExchange,
    out: Outgoing,
    producer: str,
    emit: Callable[[FlowEvent], None],
    *,
    republished: bool = False,
) -> Outcome:
    """Publish one message and report what the broker said.

    ``unknown`` means the connection failed before the confirm: the broker may or may not have it.
    """
    emit(
        Published(
            out.message_id,
            producer,
            out.exchange,
            out.routing_key,
            out.headers,
            out.persistent,
            preview(out.body),
            republished,
            out.mandatory,
            out.priority,
            out.reply_to is not None,
        )
    )
    message = aio_pika.Message(
        out.body,
        message_id=out.message_id,
        # an RPC request says when it left, so the client can tell its reply's round trip
        headers={**out.headers, SENT_AT: time.time_ns() // 1_000_000}
        if out.reply_to
        else dict(out.headers) or None,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        if out.persistent
        else aio_pika.DeliveryMode.NOT_PERSISTENT,
        content_type="application/json" if out.body[:1] == b"{" else "text/plain",
        priority=out.priority,
        reply_to=out.reply_to,
        correlation_id=out.message_id if out.reply_to else None,
        # aio-pika takes seconds and sends AMQP's string of milliseconds
        expiration=None if out.expiration_ms is None else out.expiration_ms / 1000,
    )
    try:
        result = await exchange.publish(message, out.broker_routing_key, mandatory=out.mandatory)
    except aiormq.exceptions.DeliveryError as exc:
        emit(
            PublishFailed(
                out.message_id, producer, f"the broker refused it ({exc.frame!r:.60})", refused=True
            )
        )
        return "refused"
    except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
        emit(PublishFailed(out.message_id, producer, f"not confirmed: {type(exc).__name__} {exc}"[:160]))
        return "unknown"
    if isinstance(result, DeliveredMessage):
        frame = result.delivery
        reply = getattr(frame, "reply_text", "") or "NO_ROUTE"
        emit(Returned(out.message_id, producer, out.exchange, out.routing_key, str(reply)))
        return "returned"
    emit(Confirmed(out.message_id, producer))
    return "confirmed"
