"""Messages, queues and consumers: what waits where, and who gets it next."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from broker_sim.embedded.codec import CodecError, decode_properties, decode_table, shortstr
from broker_sim.embedded.ready import PriorityMessages


@dataclass(slots=True, eq=False)
class Message:
    """A published message: where it was published, its raw properties (sent back byte for byte), its body."""

    exchange: str
    routing_key: str
    props: bytes
    body: bytes
    persistent: bool = False
    expiration_ms: int | None = None
    priority: int = 0
    cc: tuple[str, ...] = ()  # extra routing keys from the CC / BCC headers
    _properties: dict[str, Any] | None = None
    _headers: dict[str, Any] | None = None
    _wire: bytes | None = None

    def wire_address(self) -> bytes:
        """Exchange and routing key as encoded in Basic.Deliver (cached: a fanout delivers it many times)."""
        if self._wire is None:
            self._wire = shortstr(self.exchange) + shortstr(self.routing_key)
        return self._wire

    @classmethod
    def published(
        cls, exchange: str, routing_key: str, props: bytes, body: bytes, wire: bytes | None = None
    ) -> Message:
        """A message as it comes from a publisher; raises CodecError on bad properties. ``wire``: the
        exchange and routing key as the publish encoded them, when at hand (saves encoding them again)."""
        message = cls(exchange, routing_key, props, body, _wire=wire)
        if len(props) == 3 and props[:2] == b"\x10\x00":  # delivery_mode alone: nothing to decode
            message.persistent = props[2] == 2
        elif len(props) > 2 or props[:2] != b"\x00\x00":
            decoded = message.properties()
            message.persistent = decoded.get("delivery_mode") == 2
            message.priority = decoded.get("priority") or 0
            expiration = decoded.get("expiration")
            if expiration is not None:
                message.expiration_ms = parse_expiration(expiration)
        return message

    def properties(self) -> dict[str, Any]:
        """Decoded properties (``headers`` still encoded); cached."""
        if self._properties is None:
            self._properties = decode_properties(self.props)
        return self._properties

    def headers(self) -> dict[str, Any]:
        """Decoded headers table; cached."""
        if self._headers is None:
            raw = self.properties().get("headers")
            self._headers = decode_table(raw) if raw else {}
        return self._headers


def parse_expiration(value: str) -> int:
    """The ``expiration`` property in ms; RabbitMQ refuses anything but a non-negative integer."""
    if not value.isdigit():
        raise CodecError(f"invalid expiration value '{value}'")
    return int(value)


_arrivals = itertools.count(1)


@dataclass(slots=True, eq=False)
class QueuedMessage:
    """A message in one queue: its own redelivered flag, expiry, place in the store, and when it
    arrived (a requeued message goes back to its place by it)."""

    message: Message
    store_id: int = 0
    redelivered: bool = False
    expires_at: float | None = None
    arrival: int = field(default_factory=_arrivals.__next__)
    delivery_count: int = 0  # returns by nack / reject with requeue (quorum queues' x-delivery-count)


class Deliverer(Protocol):
    """What a queue needs from the channel a consumer lives on."""

    def can_deliver(self) -> bool:
        """Whether the channel takes more messages now (open, not flow-blocked, global prefetch)."""
        ...

    def deliver(self, consumer: Consumer, queue: Queue, entry: QueuedMessage) -> None:
        """Send one message to a consumer."""
        ...

    def cancel_from_broker(self, consumer: Consumer) -> None:
        """The queue went away: tell the client with Basic.Cancel."""
        ...


@dataclass(eq=False)
class Consumer:
    """A consumer on a queue, with its own prefetch (RabbitMQ's per-consumer ``basic.qos``)."""

    tag: str
    channel: Deliverer
    queue: Queue
    no_ack: bool
    prefetch: int
    exclusive: bool = False
    unacked: int = 0
    tag_wire: bytes = b""
    priority: int = 0  # x-priority: higher-priority consumers with room are served first

    def has_room(self) -> bool:
        """Whether this consumer may receive one more message now."""
        return (
            self.no_ack or self.prefetch == 0 or self.unacked < self.prefetch
        ) and self.channel.can_deliver()


def _arrival(entry: QueuedMessage) -> int:
    return entry.arrival


DeadLetter = Callable[["Queue", QueuedMessage, str], None]


@dataclass(eq=False)
class Queue:
    """A queue: ready messages in order, consumers served round robin, TTL, max-length, dead-lettering."""

    name: str
    vhost: str
    durable: bool = False
    exclusive_owner: object | None = None
    auto_delete: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    messages: deque[QueuedMessage] | PriorityMessages = field(default_factory=deque)
    consumers: list[Consumer] = field(default_factory=list)
    ever_consumed: bool = False
    deleted: bool = False
    on_dead: DeadLetter | None = None
    on_drop: Callable[[QueuedMessage], None] | None = None
    on_unused: Callable[[Queue], object] | None = None  # x-expires ran out: delete the queue
    _next: int = 0
    consumer_priorities: bool = False  # set once a consumer with x-priority arrives
    quorum: bool = False  # x-queue-type=quorum: x-delivery-count, x-delivery-limit
    single_active: bool = False  # x-single-active-consumer: one consumer at a time receives
    _limited: bool = False  # x-max-length or x-max-length-bytes set
    _dispatching: bool = False
    _timer: asyncio.TimerHandle | None = None
    _timer_at: float = 0.0
    _unused_timer: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        self.quorum = self.arguments.get("x-queue-type") == "quorum"
        self.single_active = self.arguments.get("x-single-active-consumer") is True
        self._limited = "x-max-length" in self.arguments or "x-max-length-bytes" in self.arguments
        max_priority = self.arguments.get("x-max-priority")
        if isinstance(max_priority, int) or isinstance(self.arguments.get("x-max-length-bytes"), int):
            self.messages = PriorityMessages(max_priority if isinstance(max_priority, int) else 0)

    @property
    def ttl_ms(self) -> int | None:
        """``x-message-ttl``, when set."""
        value = self.arguments.get("x-message-ttl")
        return int(value) if isinstance(value, int) else None

    @property
    def max_length(self) -> int | None:
        """``x-max-length``, when set."""
        value = self.arguments.get("x-max-length")
        return int(value) if isinstance(value, int) else None

    @property
    def max_length_bytes(self) -> int | None:
        """``x-max-length-bytes``, when set."""
        value = self.arguments.get("x-max-length-bytes")
        return int(value) if isinstance(value, int) else None

    def _over_limit(self, extra: int = 0, extra_bytes: int = 0) -> bool:
        limit, limit_bytes = self.max_length, self.max_length_bytes
        if limit is not None and len(self.messages) + extra > limit:
            return True
        messages = self.messages
        return (
            limit_bytes is not None
            and isinstance(messages, PriorityMessages)
            and messages.bytes + extra_bytes > limit_bytes
        )

    @property
    def overflow(self) -> str:
        """``x-overflow``: ``drop-head`` (the default), ``reject-publish`` or ``reject-publish-dlx``."""
        value = self.arguments.get("x-overflow")
        return value if isinstance(value, str) else "drop-head"

    def refuses_publish(self, message: Message) -> bool:
        """Whether a publish must be refused: ``x-overflow`` says reject and the message would take the
        queue over ``x-max-length`` or ``x-max-length-bytes`` (ready messages only, as on RabbitMQ)."""
        return self.overflow != "drop-head" and self._over_limit(1, len(message.body))

    @property
    def exclusive(self) -> bool:
        """Whether one connection owns this queue."""
        return self.exclusive_owner is not None

    def expiry_for(self, message: Message, now: float) -> float | None:
        """When a message put in now expires (the lower of the queue's and the message's TTL)."""
        ttl = self.ttl_ms
        if message.expiration_ms is not None:
            ttl = message.expiration_ms if ttl is None else min(ttl, message.expiration_ms)
        return None if ttl is None else now + ttl / 1000

    def put(self, entry: QueuedMessage) -> None:
        """Enqueue at the tail, hand out what consumers can take, then enforce max-length and TTL."""
        self.messages.append(entry)
        self.dispatch()
        if self._limited:
            while self.messages and self._over_limit():
                self._dead(self.messages.popleft(), "maxlen")
        self.expire()

    def requeue(self, entries: list[QueuedMessage]) -> None:
        """Put messages back at their original places (as RabbitMQ does: nack 5, 3, 2, 4 one at a time
        and they come back 2, 3, 4, 5), marked redelivered."""
        messages = self.messages
        front: list[QueuedMessage] = []
        for entry in sorted(entries, key=_arrival):
            entry.redelivered = True
            # Ready messages that arrived before it stay ahead of it (usually none, or a few).
            while messages and messages[0].arrival < entry.arrival:
                front.append(messages.popleft())
            front.append(entry)
        messages.extendleft(reversed(front))
        self.dispatch()
        self.expire()

    def dispatch(self) -> None:
        """Give ready messages to consumers with room, round robin."""
        if self._dispatching:
            return
        self._dispatching = True
        try:
            messages, consumers = self.messages, self.consumers
            while messages and consumers:
                consumer = self._pick()
                if consumer is None:
                    return
                entry = messages.popleft()
                if entry.expires_at is not None and entry.expires_at <= asyncio.get_running_loop().time():
                    self._dead(entry, "expired")
                    continue
                consumer.channel.deliver(consumer, self, entry)
        finally:
            self._dispatching = False

    def _pick(self) -> Consumer | None:
        consumers = self.consumers
        if self.single_active:
            # Only the earliest consumer still registered receives (x-single-active-consumer).
            return consumers[0] if consumers[0].has_room() else None
        count = len(consumers)
        if self.consumer_priorities:
            return self._pick_by_priority(count)
        for step in range(count):
            index = (self._next + step) % count
            consumer = consumers[index]
            if consumer.has_room():
                self._next = (index + 1) % count
                return consumer
        return None

    def _pick_by_priority(self, count: int) -> Consumer | None:
        # The highest-priority consumer with room; round robin among equals, starting after the last.
        best_index, best = -1, None
        for step in range(count):
            index = (self._next + step) % count
            consumer = self.consumers[index]
            if (best is None or consumer.priority > best.priority) and consumer.has_room():
                best_index, best = index, consumer
        if best is not None:
            self._next = (best_index + 1) % count
        return best

    def take(self) -> QueuedMessage | None:
        """The head message for Basic.Get, skipping expired ones."""
        self.expire()
        return self.messages.popleft() if self.messages else None

    def expire(self) -> None:
        """Dead-letter expired messages at the head (as RabbitMQ, expiry is checked at the head only)."""
        messages = self.messages
        if not messages or messages[0].expires_at is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        while messages and messages[0].expires_at is not None and messages[0].expires_at <= now:
            self._dead(messages.popleft(), "expired")
        if messages and messages[0].expires_at is not None:
            at: float = messages[0].expires_at
            if self._timer is None or at < self._timer_at:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer_at = at
                self._timer = loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.expire()

    def _dead(self, entry: QueuedMessage, reason: str) -> None:
        if self.on_dead is not None:
            self.on_dead(self, entry, reason)

    def purge(self) -> int:
        """Drop every ready message; returns how many."""
        count = len(self.messages)
        if self.on_drop is not None:
            for entry in self.messages:
                self.on_drop(entry)
        self.messages.clear()
        return count

    def close(self) -> None:
        """The queue is deleted: stop its timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unused_timer is not None:
            self._unused_timer.cancel()
            self._unused_timer = None

    def touch(self) -> None:
        """The queue was used (declared, consumed from, read by Basic.Get, a consumer left): restart the
        ``x-expires`` clock, which runs only while the queue has no consumers."""
        expires = self.arguments.get("x-expires")
        if not isinstance(expires, int) or self.deleted:
            return
        if self._unused_timer is not None:
            self._unused_timer.cancel()
            self._unused_timer = None
        if not self.consumers:
            self._unused_timer = asyncio.get_running_loop().call_later(expires / 1000, self._expired)

    def _expired(self) -> None:
        self._unused_timer = None
        if not self.consumers and not self.deleted and self.on_unused is not None:
            self.on_unused(self)
