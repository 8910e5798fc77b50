"""The scenario model: a topology (exchanges, queues, bindings) and its actors.

Plain frozen data with no I/O. Names here are the scenario's own; the engine maps them to broker
names (with a prefix, or server-generated for exclusive queues).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from broker_sim.domain.timeline import Expectation, Step

ExchangeType = Literal["direct", "fanout", "topic", "headers"]
AckMode = Literal["manual", "auto"]
WorkKind = Literal["image", "log", "delay"]
BodyKind = Literal["image-job", "log-line", "text"]
ConfirmMode = Literal["single", "window", "async"]
CONFIRM_MODES: tuple[str, ...] = ("single", "window", "async")
Overflow = Literal["drop-head", "reject-publish", "reject-publish-dlx"]
OVERFLOWS: tuple[str, ...] = ("drop-head", "reject-publish", "reject-publish-dlx")
MAX_PRIORITY = 255
"""The highest priority AMQP 0-9-1 carries (RabbitMQ advises 1-10 for a queue's ``x-max-priority``)."""
HeaderValue = str | int | float | bool

DEFAULT_EXCHANGE = ""
"""The nameless default exchange: a direct exchange that routes by queue name."""
DEFAULT_WINDOW = 100
"""Most messages awaiting their confirm at once unless a scenario says otherwise: pipelining beats
awaiting each (1.4x measured)."""
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
"""The pseudo-queue of direct reply-to: a client consumes it (no-ack) on the channel it publishes
requests on, and the broker hands the answers straight to that channel, with no queue declared."""


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    """An exchange the scenario declares."""

    name: str
    type: ExchangeType
    durable: bool = False
    auto_delete: bool = False
    alternate_exchange: str = ""
    """Where messages that match no binding go (the ``alternate-exchange`` argument); "" for none."""


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue the scenario declares.

    ``server_named`` queues get a broker-generated name (as pub/sub subscribers do); ``name``
    stays the scenario's handle for them. ``dead_letter_exchange`` ("" is the default exchange,
    ``None`` no dead-lettering) receives what is rejected without requeue, expires or overflows
    (``reject-publish-dlx``); ``dead_letter_routing_key`` replaces the message's key when set.
    """

    name: str
    durable: bool = False
    exclusive: bool = False
    auto_delete: bool = False
    server_named: bool = False
    max_length: int | None = None
    message_ttl_ms: int | None = None
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    overflow: Overflow | None = None
    max_priority: int | None = None


@dataclass(frozen=True, slots=True)
class BindingSpec:
    """A binding from an exchange to a queue, by routing key / pattern or by header rule.

    With ``to_exchange`` set the destination is that exchange instead (an exchange-to-exchange
    binding) and ``queue`` is "".
    """

    exchange: str
    queue: str
    routing_key: str = ""
    headers: dict[str, HeaderValue] = field(default_factory=dict)
    match: Literal["all", "any"] | None = None
    to_exchange: str = ""

    @property
    def destination(self) -> str:
        """The queue or exchange the binding leads to."""
        return self.to_exchange or self.queue

    def describe(self) -> str:
        """The binding as a user reads it: its key or pattern, or its header rule."""
        if self.headers or self.match:
            rule = ", ".join(f"{k}={v}" for k, v in self.headers.items())
            return f"{self.match or 'all'}: {rule}"
        return self.routing_key or "(no key)"


@dataclass(frozen=True, slots=True)
class ProducerSpec:
    """A producer: what it publishes, where, how fast, and how.

    Each message picks a routing key (and header set) from the lists, in order or at random
    (seeded). ``count`` stops the producer after that many messages; ``None`` runs forever.
    """

    name: str
    exchange: str
    rate: float = 2.0
    routing_keys: tuple[str, ...] = ("",)
    headers: tuple[dict[str, HeaderValue], ...] = ()
    pick: Literal["cycle", "random"] = "cycle"
    persistent: bool = False
    mandatory: bool = True
    body: BodyKind = "text"
    count: int | None = None
    priority: tuple[int, ...] = ()
    """Each message's priority, picked from these like the routing keys (a repeated value weighs
    more under ``pick = "random"``); empty: none. A queue with ``max_priority`` delivers higher
    ones first."""
    expiration_ms: int | None = None
    """Each message's own TTL; it expires only once it reaches the head of its queue."""
    reply_queue: str = ""
    """RPC: each message is a request whose ``reply_to`` names this scenario queue (its broker
    name, ``amq.gen-…`` for a server-named one) and whose ``correlation_id`` is its id. With
    :data:`DIRECT_REPLY_TO` the producer itself consumes the answers on its publishing channel."""
    confirm: ConfirmMode | None = None
    """How it waits for publisher confirms: ``single`` (each before the next), ``window`` (send
    ``window`` messages, wait for all), ``async`` (keep sending, at most ``window`` unconfirmed).
    ``None``: as ``window`` with the engine's own window, paced per tick."""
    window: int | None = None
    """The window of ``window`` and ``async`` confirms (``None``: the engine's default)."""

    @property
    def direct_reply(self) -> bool:
        """True for an RPC client using direct reply-to instead of a reply queue."""
        return self.reply_queue == DIRECT_REPLY_TO


@dataclass(frozen=True, slots=True)
class WorkSpec:
    """What a consumer does with each message before acking it."""

    kind: WorkKind = "delay"
    seconds: float = 0.0
    operations: tuple[str, ...] = ("thumbnail",)


@dataclass(frozen=True, slots=True)
class RejectSpec:
    """Which jobs a consumer group fails, and what it does with a failed job.

    A job fails by its message id (a stable hash), so the same job fails on every try:
    ``share`` of the jobs fail every time (poison), ``flaky`` more fail on their first try only.
    A failed job is rejected, requeued when ``requeue`` (straight back to the same queue) or else
    dead-lettered by the queue. With ``tries`` > 0 the consumer reads the job's ``x-death``
    header: on its ``tries``-th try it stops rejecting and publishes the job to
    ``park_exchange`` with ``park_key`` (the parking lot), then acks it.
    """

    share: float = 0.0
    flaky: float = 0.0
    requeue: bool = False
    tries: int = 0
    park_exchange: str = ""
    park_key: str = ""


@dataclass(frozen=True, slots=True)
class ConsumerGroupSpec:
    """N identical consumers of one queue. ``prefetch`` 0 means unlimited."""

    name: str
    queue: str
    count: int = 1
    prefetch: int = 1
    ack: AckMode = "manual"
    work: WorkSpec = field(default_factory=WorkSpec)
    label: str = ""
    reject: RejectSpec = field(default_factory=RejectSpec)
    reply: bool = False
    """RPC server: answer each request that has a ``reply_to`` on the default exchange, with its
    ``correlation_id``, before acking it."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A messaging pattern as a runnable story: topology plus actors."""

    name: str
    title: str
    description: str = ""
    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()
    bindings: tuple[BindingSpec, ...] = ()
    producers: tuple[ProducerSpec, ...] = ()
    consumers: tuple[ConsumerGroupSpec, ...] = ()
    seed: int = 0
    help: str = ""
    duration: float = 0.0
    timeline: tuple[Step, ...] = ()
    expectations: tuple[Expectation, ...] = ()

    def exchange(self, name: str) -> ExchangeSpec | None:
        """The exchange spec of that name, or ``None`` (also for the default exchange)."""
        return next((e for e in self.exchanges if e.name == name), None)

    def queue(self, name: str) -> QueueSpec | None:
        """The queue spec of that name, or ``None``."""
        return next((q for q in self.queues if q.name == name), None)

    def group(self, name: str) -> ConsumerGroupSpec | None:
        """The consumer group of that name, or ``None``."""
        return next((g for g in self.consumers if g.name == name), None)

    def bindings_of(self, queue: str) -> tuple[BindingSpec, ...]:
        """The bindings into one queue."""
        return tuple(b for b in self.bindings if b.queue == queue)

    def exchange_type(self, name: str) -> str:
        """The exchange's type as a word, ``direct`` for the default exchange."""
        spec = self.exchange(name)
        return spec.type if spec else "direct"
