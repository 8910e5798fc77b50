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
    QueueDepth,
    Returned,
    Routed,
)


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
    routed: Counter[str] = field(default_factory=Counter)
    routed_inferred: int = 0
    routed_traced: int = 0
    delivered_per_queue: Counter[str] = field(default_factory=Counter)
    acked_per_queue: Counter[str] = field(default_factory=Counter)
    depth: dict[str, QueueDepth] = field(default_factory=dict)
    consumers: dict[str, ConsumerFigures] = field(default_factory=lambda: defaultdict(ConsumerFigures))

    def __call__(self, event: FlowEvent) -> None:
        """Fold one event in (a tally is an event-bus subscriber)."""
        match event:
            case Published(republished=True):
                self.republished += 1
            case Published():
                self.published += 1
            case Confirmed():
                self.confirmed += 1
            case Returned():
                self.returned += 1
            case PublishFailed(refused=refused):
                self.publish_failed += 1
                self.publish_refused += refused
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
            case Acked(queue=q, consumer=c):
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
            case _:
                pass

    def alive_consumers(self, group: str | None = None) -> list[str]:
        """Names of consumers currently up (of one group, or all)."""
        return [n for n, f in self.consumers.items() if f.alive and (group is None or f.group == group)]
