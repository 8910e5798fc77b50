"""Counting flow events: the figures every view shows, folded from the events alone.

The TUI, the headless report and the tests all count with this one class, so a number on screen
is the same number a test asserts on.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    Confirmed,
    ConsumerDown,
    ConsumerUp,
    Delivered,
    FlowEvent,
    Nacked,
    Published,
    PublishFailed,
    Purged,
    QueueDepth,
    Returned,
    Routed,
)
from broker_sim.domain.overtaking import Overtaking
from broker_sim.domain.replies import request_of


@dataclass
class ConsumerFigures:
    """What one consumer has done."""

    queue: str = ""
    group: str = ""
    delivered: int = 0
    acked: int = 0
    nacked: int = 0
    redelivered: int = 0
    in_flight: int = 0
    alive: bool = False
    last_result: str = ""
    last_message: str = ""
    last_work_ms: float = 0.0


@dataclass
class ProducerFigures:
    """What one producer has published, and how many of its publishes awaited an answer at once."""

    published: int = 0
    confirmed: int = 0
    returned: int = 0
    publish_nacked: int = 0
    awaiting: set[str] = field(default_factory=set)
    """Ids of its messages published and not yet answered (confirmed, returned or failed): a
    message published again after a lost connection is still the one message."""
    max_outstanding: int = 0
    unanswered: int = 0
    """RPC requests sent and not refused or returned whose answer has not (yet) come back matched."""

    @property
    def outstanding(self) -> int:
        """Its publishes awaiting the broker's answer now."""
        return len(self.awaiting)

    def sent(self, message_id: str) -> None:
        """A publish went out (or out again)."""
        self.awaiting.add(message_id)
        self.max_outstanding = max(self.max_outstanding, len(self.awaiting))

    def settled(self, message_id: str) -> None:
        """The broker answered a publish (or the connection failed under it)."""
        self.awaiting.discard(message_id)


@dataclass
class Tally:
    """Running totals of a scenario's flow, per producer, queue and consumer."""

    published: int = 0
    republished: int = 0
    confirmed: int = 0
    returned: int = 0
    publish_failed: int = 0
    publish_refused: int = 0
    """Publishes the broker nacked (a full ``reject-publish`` queue): part of ``publish_failed``."""
    delivered: int = 0
    acked: int = 0
    nacked: int = 0
    redelivered: int = 0
    abandoned: int = 0
    lost: int = 0
    purged: int = 0
    """Ready messages a user purged (``queue.purge``): dropped on purpose, not lost."""
    routed: Counter[str] = field(default_factory=Counter)
    routed_inferred: int = 0
    routed_traced: int = 0
    delivered_per_queue: Counter[str] = field(default_factory=Counter)
    acked_per_queue: Counter[str] = field(default_factory=Counter)
    purged_per_queue: Counter[str] = field(default_factory=Counter)
    depth: dict[str, QueueDepth] = field(default_factory=dict)
    consumers: dict[str, ConsumerFigures] = field(default_factory=lambda: defaultdict(ConsumerFigures))
    producers: dict[str, ProducerFigures] = field(default_factory=lambda: defaultdict(ProducerFigures))
    order: Overtaking = field(default_factory=Overtaking)
    awaiting: dict[str, str] = field(default_factory=dict)
    """RPC requests awaiting their answer: request id → producer."""

    @property
    def unanswered(self) -> int:
        """RPC requests still awaiting a matched answer (what a lost reply leaves behind)."""
        return len(self.awaiting)

    def _answered(self, request_id: str) -> None:
        producer = self.awaiting.pop(request_id, None)
        if producer is not None:
            self.producers[producer].unanswered -= 1

    def __call__(self, event: FlowEvent) -> None:
        """Fold one event in (a tally is an event-bus subscriber)."""
        match event:
            case Published(producer=p, republished=again):
                if again:
                    self.republished += 1
                else:
                    self.published += 1
                    self.order.published(event.message_id, event.priority)
                pf = self.producers[p]
                if event.request and event.message_id not in self.awaiting:
                    self.awaiting[event.message_id] = p
                    pf.unanswered += 1
                pf.published += not again
                pf.sent(event.message_id)
            case Confirmed(producer=p):
                self.confirmed += 1
                self.producers[p].confirmed += 1
                self.producers[p].settled(event.message_id)
            case Returned(producer=p):
                self._answered(event.message_id)  # nobody got it: no answer will come
                self.returned += 1
                self.producers[p].returned += 1
                self.producers[p].settled(event.message_id)
            case PublishFailed(producer=p, refused=refused):
                if refused:
                    self._answered(event.message_id)
                self.publish_failed += 1
                self.publish_refused += refused
                self.producers[p].publish_nacked += refused
                self.producers[p].settled(event.message_id)
            case Routed(queues=queues, source=source):
                for q in queues:
                    self.routed[q] += 1
                if source == "trace":
                    self.routed_traced += 1
                else:
                    self.routed_inferred += 1
            case Delivered(queue=q, consumer=c, redelivered=again):
                self.delivered += 1
                self.delivered_per_queue[q] += 1
                fig = self.consumers[c]
                fig.queue, fig.delivered, fig.in_flight = q, fig.delivered + 1, fig.in_flight + 1
                if again:
                    self.redelivered += 1
                    fig.redelivered += 1
                else:
                    self.order.delivered(q, event.message_id)
            case Acked(queue=q, consumer=c):
                if self.awaiting and event.result.startswith("reply to "):
                    self._answered(request_of(event.message_id))
                self.acked += 1
                self.acked_per_queue[q] += 1
                fig = self.consumers[c]
                fig.acked += 1
                fig.in_flight = max(0, fig.in_flight - 1)
                fig.last_result, fig.last_message, fig.last_work_ms = (
                    event.result,
                    event.message_id,
                    event.work_ms,
                )
            case Nacked(consumer=c):
                self.nacked += 1
                fig = self.consumers[c]
                fig.nacked += 1
                fig.in_flight = max(0, fig.in_flight - 1)
            case Abandoned(consumer=c, redelivered=again):
                self.abandoned += 1
                if not again:
                    self.lost += 1
                fig = self.consumers[c]
                fig.in_flight = max(0, fig.in_flight - 1)
            case ConsumerUp(consumer=c, queue=q, group=g):
                fig = self.consumers[c]
                fig.alive, fig.queue, fig.group = True, q, g
            case ConsumerDown(consumer=c):
                self.consumers[c].alive = False
            case QueueDepth(queue=q):
                self.depth[q] = event
            case Purged(queue=q, messages=n):
                self.purged += n
                self.purged_per_queue[q] += n
            case _:
                pass

    def alive_consumers(self, group: str | None = None) -> list[str]:
        """Names of consumers currently up (of one group, or all)."""
        return [n for n, f in self.consumers.items() if f.alive and (group is None or f.group == group)]
