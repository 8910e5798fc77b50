"""Flow events: what the broker or the client reported, as plain frozen data.

The engine emits these; the TUI, the headless reporter and the recorder consume them. Every
event that concerns one message carries its ``message_id`` so all hops of a message can be
joined. Queue names are the scenario's names for queues (not the broker's server-generated
names), so a subscriber never needs to know how the engine named things on the broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from broker_sim.domain.timeline import Step

RoutingSource = Literal["trace", "inferred"]
"""Where a routing decision came from: the broker's firehose trace, or inferred from deliveries."""


@dataclass(frozen=True, slots=True)
class Published:
    """A producer handed a message to the broker (not yet confirmed).

    ``republished`` marks a second try of a message whose confirm never came because the
    connection went away (at-least-once): the broker may hold it twice now.
    """

    message_id: str
    producer: str
    exchange: str
    routing_key: str
    headers: dict[str, str | int | float | bool] = field(default_factory=dict)
    persistent: bool = False
    body_preview: str = ""
    republished: bool = False
    mandatory: bool = False
    """Sent mandatory: confirmed and not returned, it reached at least one queue."""
    priority: int | None = None
    """The message's priority property (``None``: none, which a priority queue reads as 0)."""
    request: bool = False
    """An RPC request (it names a ``reply_to``): its producer expects one answer."""


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The broker confirmed (Basic.Ack) a published message."""

    message_id: str
    producer: str


@dataclass(frozen=True, slots=True)
class PublishFailed:
    """The broker refused (Basic.Nack) a publish, or the connection failed before its confirm."""

    message_id: str
    producer: str
    reason: str
    refused: bool = False
    """True for a Basic.Nack (a full queue with reject-publish, no quorum majority): the broker
    said no. False when the outcome is unknown (the connection failed first)."""


@dataclass(frozen=True, slots=True)
class Returned:
    """The broker sent a mandatory message back: no queue matched it."""

    message_id: str
    producer: str
    exchange: str
    routing_key: str
    reply_text: str


@dataclass(frozen=True, slots=True)
class Routed:
    """The exchange's routing decision for one message.

    ``queues`` holds scenario queue names; a queue the scenario does not know (bound behind the
    engine's back) appears under its broker name. With ``source == "inferred"`` the event was
    derived from a delivery from that queue, so it lists one queue and only the queues that have
    consumers are ever seen.
    """

    message_id: str
    exchange: str
    routing_key: str
    queues: tuple[str, ...]
    source: RoutingSource


@dataclass(frozen=True, slots=True)
class Delivered:
    """A consumer received a message from a queue (it is now unacked at the broker)."""

    message_id: str
    queue: str
    consumer: str
    redelivered: bool
    routing_key: str = ""
    exchange: str = ""


@dataclass(frozen=True, slots=True)
class Acked:
    """A consumer acknowledged a message after doing its work.

    ``result`` says what the work produced in a few words (e.g. ``thumbnail 128x96``);
    ``work_ms`` is how long the work took. With auto-ack the broker considered the message
    acknowledged on delivery, and this event marks the end of the work.
    """

    message_id: str
    queue: str
    consumer: str
    work_ms: float
    result: str = ""
    auto: bool = False


@dataclass(frozen=True, slots=True)
class Nacked:
    """A consumer rejected a message; ``requeue`` says whether the broker will deliver it again."""

    message_id: str
    queue: str
    consumer: str
    requeue: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A consumer died or lost its connection holding this message.

    ``redelivered`` is True when it was unacked, so the broker delivers it again; an auto-ack
    consumer had already acknowledged it on delivery, so the message is lost.
    """

    message_id: str
    queue: str
    consumer: str
    redelivered: bool = True


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many messages a queue holds.

    ``ready`` and ``consumers`` come from the broker (a passive declare); ``unacked`` is the
    client's own count of deliveries not yet acked. ``ready`` is ``None`` when the queue no
    longer exists at the broker.
    """

    queue: str
    ready: int | None
    unacked: int
    consumers: int | None
    ready_source: str = "broker: passive declare"
    unacked_source: str = "client: deliveries - acks"


@dataclass(frozen=True, slots=True)
class Purged:
    """A user purged a queue (``queue.purge``): the broker dropped its ``messages`` ready messages.

    They are gone on purpose, so they count as purged, never as lost; unacked ones stay with
    their consumers.
    """

    queue: str
    messages: int


@dataclass(frozen=True, slots=True)
class ConsumerUp:
    """A consumer started consuming from a queue."""

    consumer: str
    group: str
    queue: str
    prefetch: int
    ack: str


@dataclass(frozen=True, slots=True)
class ConsumerDown:
    """A consumer stopped.

    ``reason``: ``scaled-down``, ``killed``, ``connection lost`` or ``stopped``.
    """

    consumer: str
    group: str
    queue: str
    reason: str


@dataclass(frozen=True, slots=True)
class PrefetchChanged:
    """A consumer group now consumes with a new prefetch (0 means unlimited)."""

    group: str
    prefetch: int


@dataclass(frozen=True, slots=True)
class ProducerState:
    """A producer's rate or pause state changed (``held``: a story holds it, paused or over).

    ``blocked``: the broker's reason for blocking the producers' connection (a memory or disk
    alarm, ``connection.blocked``), or ``""`` when it is not blocked.
    """

    producer: str
    rate: float
    paused: bool
    held: bool = False
    blocked: str = ""


class LinkState(StrEnum):
    """The engine's connection to the broker, as a user would describe it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    AUTH_REFUSED = "auth refused"
    UNREACHABLE = "unreachable"
    LOST = "lost"
    RECONNECTING = "reconnecting"
    BACK = "back"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The link to the broker changed state; ``detail`` says what was tried or what happened."""

    state: LinkState
    url: str
    detail: str = ""
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class TracingChanged:
    """Whether routing is observed from the broker's trace, and how tracing came to be on/off."""

    traced: bool
    detail: str


@dataclass(frozen=True, slots=True)
class BrokerRestarting:
    """broker-sim is restarting the broker (``crash``: killing it hard first)."""

    kind: str
    how: str
    crash: bool = False


@dataclass(frozen=True, slots=True)
class BrokerRestarted:
    """The broker is back up after a restart broker-sim did; ``seconds`` is how long it took."""

    kind: str
    seconds: float


@dataclass(frozen=True, slots=True)
class StepApplied:
    """A control was applied: by the user (``source == "user"``) or by a scenario's timeline."""

    step: Step
    source: str = "user"


@dataclass(frozen=True, slots=True)
class Leftover:
    """A durable queue already held messages when this run first declared it: an earlier run's.

    They are delivered and acked like this run's, so delivered can exceed published; their ids
    do not start with ``run_id``, this run's.
    """

    queue: str
    messages: int
    run_id: str


@dataclass(frozen=True, slots=True)
class EngineProblem:
    """Something went wrong that the user should read (in words, not a traceback)."""

    text: str


FlowEvent = (
    Published
    | Leftover
    | Confirmed
    | PublishFailed
    | Returned
    | Routed
    | Delivered
    | Acked
    | Nacked
    | Abandoned
    | QueueDepth
    | Purged
    | ConsumerUp
    | ConsumerDown
    | PrefetchChanged
    | ProducerState
    | ConnectionChanged
    | TracingChanged
    | StepApplied
    | BrokerRestarting
    | BrokerRestarted
    | EngineProblem
)
"""Every event the engine emits."""
