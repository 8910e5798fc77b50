"""Following each message to its end: latency, loss and duplicates, in bounded memory.

Where :class:`~broker_sim.domain.tally.Tally` counts events, the ledger joins them by
``message_id``: a message is settled once every queue it was routed to has acked it. Settled
messages leave the ledger. Every ack is remembered as (message id, queue) in a bounded window,
so an ack that comes again to the same queue (a redelivery after a lost ack, a republish after
a broker restart) is a duplicate — while one message acked by several queues (fanout) is not —
and memory stays flat however long the run.

The broker's trace of a message may arrive after its first ack. With tracing on, a message
waits for it before it settles (at most ``TRACE_WAIT`` of them, and not past a lost connection
or tracing turned off); with tracing off there is no routing list to wait for, and a message
settles on its first ack.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    Confirmed,
    ConnectionChanged,
    FlowEvent,
    LinkState,
    Published,
    Returned,
    Routed,
    TracingChanged,
)

DUPLICATE_WINDOW = 50_000
"""Acks (message id, queue) remembered to spot duplicates."""
LATENCY_SAMPLES = 10_000
"""Most recent publish-to-ack latencies kept for percentiles."""
TRACE_WAIT = 10_000
"""Acked messages kept waiting for their trace. A trace can be lost (the trace queue is capped
and dies with its connection), so beyond this the oldest settle as if untraced."""


@dataclass(slots=True)
class _Open:
    published_at: float
    confirmed: bool = False
    routed: tuple[str, ...] | None = None
    acked: set[str] = field(default_factory=set)


@dataclass
class Ledger:
    """Per-message bookkeeping for reports and the durability lab (an event-bus subscriber)."""

    clock: Callable[[], float] = time.monotonic
    open: dict[str, _Open] = field(default_factory=dict)
    acks_seen: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)
    traced: bool = False
    """Whether the broker's trace reports routing (from the engine's TracingChanged events)."""
    awaiting_trace: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """Acked messages whose trace has not come yet, oldest first (at most ``TRACE_WAIT``)."""
    duplicates: Counter[str] = field(default_factory=Counter)
    lost_on_delivery: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def __call__(self, event: FlowEvent) -> None:
        """Fold one event in."""
        match event:
            case Published(message_id=mid):
                self.open.setdefault(mid, _Open(self.clock()))
            case Confirmed(message_id=mid):
                if (entry := self.open.get(mid)) is not None:
                    entry.confirmed = True
            case Returned(message_id=mid):
                self.open.pop(mid, None)
            case Routed(message_id=mid, queues=queues, source="trace"):
                if (entry := self.open.get(mid)) is not None:
                    entry.routed = tuple(queues)
                    self._maybe_settle(mid, entry)
            case Acked(message_id=mid, queue=queue):
                self._acked(mid, queue)
            case TracingChanged(traced=traced):
                self.traced = traced
                if not traced:
                    self._give_up_on_traces()
            case ConnectionChanged(state=LinkState.LOST):
                # the trace queue went with the connection: traces not read yet will not come
                self._give_up_on_traces()
            case Abandoned(message_id=mid, queue=queue, redelivered=False):
                self.lost_on_delivery[queue] += 1
                self._settle(mid)
            case _:
                pass

    def _acked(self, mid: str, queue: str) -> None:
        duplicate = (mid, queue) in self.acks_seen
        if duplicate:
            self.duplicates[queue] += 1
        else:
            self.acks_seen[(mid, queue)] = None
            if len(self.acks_seen) > DUPLICATE_WINDOW:
                self.acks_seen.popitem(last=False)
        entry = self.open.get(mid)
        if entry is None or queue in entry.acked:
            return
        # A republished copy of a message acked before the restart opens a new entry: its ack
        # is a duplicate, and it settles that entry all the same.
        entry.acked.add(queue)
        if not duplicate:
            self.latencies_ms.append((self.clock() - entry.published_at) * 1000)
        self._maybe_settle(mid, entry)

    def _maybe_settle(self, mid: str, entry: _Open) -> None:
        if entry.routed is None:
            if not entry.acked:
                return
            if self.traced:  # the routing list is on its way: wait for it, within bounds
                self.awaiting_trace[mid] = None
                if len(self.awaiting_trace) > TRACE_WAIT:
                    self._settle(next(iter(self.awaiting_trace)))
                return
            # untraced, the first ack is all that can be known
        elif not set(entry.routed) <= entry.acked:
            return
        self._settle(mid)

    def _settle(self, mid: str) -> None:
        self.open.pop(mid, None)
        self.awaiting_trace.pop(mid, None)

    def _give_up_on_traces(self) -> None:
        for mid in list(self.awaiting_trace):
            self._settle(mid)

    def unsettled(self, queue: str) -> int:
        """Confirmed messages routed to ``queue`` that it has not acked (yet)."""
        return sum(
            1
            for e in self.open.values()
            if e.confirmed and e.routed is not None and queue in e.routed and queue not in e.acked
        )

    def unaccounted(self) -> int:
        """Confirmed messages not acked anywhere, whose routing is unknown (routing inferred)."""
        return sum(1 for e in self.open.values() if e.confirmed and e.routed is None and not e.acked)

    def latency_percentile(self, p: float) -> float | None:
        """The p-th percentile (0-100) of publish-to-ack latency in ms, or None with no samples."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]
