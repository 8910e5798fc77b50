"""Following each message to its end: latency, loss and duplicates, in bounded memory.

Where :class:`~broker_sim.domain.tally.Tally` counts events, the ledger joins them by
``message_id``: a message is settled once every queue it was routed to has acked it. Settled
messages leave the ledger. Every ack is remembered as (message id, queue) in a bounded window,
so an ack that comes again to the same queue (a redelivery after a lost ack, a republish after
a broker restart) is a duplicate — while one message acked by several queues (fanout) is not —
and memory stays flat however long the run.

Every confirmed message ends in one of these: acked by every queue it was routed to (settled),
still open (waiting in a queue, or lost: the report tells which from the queues' depths),
``routing_unknown`` (acked somewhere, but the broker's trace that lists its queues never came,
so whether another queue still owed an ack cannot be told), or ``untracked`` (it fell out of
the bounded ledger). A publish the broker refused (Basic.Nack) is ``publish_nacked``.

The broker's trace of a message may arrive after its first ack. With tracing on, a message
waits for it before it settles (at most ``TRACE_WAIT`` of them). A trace cannot come for a
message published before the trace queue was lost (it dies with its connection) or once
tracing is off: such a message, once acked, counts as ``routing_unknown``. With tracing off
there is no routing list to wait for, and a message settles on its first ack (the report says
that routing was inferred).
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
    PublishFailed,
    Purged,
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
and dies with its connection), so beyond this the oldest count as routing unknown."""
OPEN_LIMIT = 200_000
"""Messages followed at once. Messages never acked (dropped by a TTL, sitting in a queue nobody
consumes, refused) would otherwise grow the ledger for ever: beyond this the oldest are let go
and counted in ``untracked``."""


@dataclass(slots=True)
class _Open:
    published_at: float
    mandatory: bool = False
    confirmed: bool = False
    routed: tuple[str, ...] | None = None
    acked: set[str] = field(default_factory=set)
    trace_lost: bool = False
    """Published before the trace queue was lost: its trace will never come."""


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
    purged: Counter[str] = field(default_factory=Counter)
    """Ready messages purged per queue. A purge says how many, not which: they stay open here,
    and the report counts them as gone on purpose, not lost."""
    routing_unknown: int = 0
    """Confirmed messages acked somewhere whose routing list never came."""
    publish_nacked: int = 0
    """Publishes the broker refused (Basic.Nack)."""
    untracked: int = 0
    """Confirmed messages let go unsettled because the ledger was full (``OPEN_LIMIT``)."""
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def __call__(self, event: FlowEvent) -> None:
        """Fold one event in."""
        match event:
            case Published(message_id=mid, mandatory=mandatory):
                if mid not in self.open:
                    self.open[mid] = _Open(self.clock(), mandatory)
                    if len(self.open) > OPEN_LIMIT:
                        self._let_go_oldest()
            case Confirmed(message_id=mid):
                if (entry := self.open.get(mid)) is not None:
                    entry.confirmed = True
            case Returned(message_id=mid):
                self.open.pop(mid, None)
            case PublishFailed(message_id=mid, refused=True):
                # An unknown outcome is published again (same entry); a refusal is final.
                if self.open.pop(mid, None) is not None:
                    self.publish_nacked += 1
                    self.awaiting_trace.pop(mid, None)
            case Routed(message_id=mid, queues=queues, source="trace"):
                if (entry := self.open.get(mid)) is not None:
                    entry.routed = tuple(queues)
                    self._maybe_settle(mid, entry)
            case Acked(message_id=mid, queue=queue):
                self._acked(mid, queue)
            case TracingChanged(traced=traced):
                self.traced = traced
                if not traced:
                    self._traces_lost()
            case ConnectionChanged(state=LinkState.LOST):
                # the trace queue went with the connection: traces not read yet will not come
                self._traces_lost()
            case Purged(queue=queue, messages=n):
                self.purged[queue] += n
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
            if self.traced:
                if entry.trace_lost:  # acked here, but which other queues it reached is lost
                    self._unknown(mid, entry)
                    return
                self.awaiting_trace[mid] = None  # the routing list is on its way: wait, within bounds
                if len(self.awaiting_trace) > TRACE_WAIT:
                    oldest = next(iter(self.awaiting_trace))
                    self._unknown(oldest, self.open[oldest])
                return
            # untraced, the first ack is all that can be known
        elif not set(entry.routed) <= entry.acked:
            return
        self._settle(mid)

    def _unknown(self, mid: str, entry: _Open) -> None:
        if entry.confirmed:
            self.routing_unknown += 1
        self._settle(mid)

    def _settle(self, mid: str) -> None:
        self.open.pop(mid, None)
        self.awaiting_trace.pop(mid, None)

    def _traces_lost(self) -> None:
        for mid in list(self.awaiting_trace):
            self._unknown(mid, self.open[mid])
        for entry in self.open.values():
            if entry.routed is None:
                entry.trace_lost = True

    def _let_go_oldest(self) -> None:
        mid, entry = next(iter(self.open.items()))
        if entry.confirmed:
            self.untracked += 1
        self._settle(mid)

    def unsettled(self, queue: str) -> int:
        """Confirmed messages routed to ``queue`` that it has not acked (yet)."""
        return sum(
            1
            for e in self.open.values()
            if e.confirmed and e.routed is not None and queue in e.routed and queue not in e.acked
        )

    def unaccounted(self, *, mandatory: bool) -> int:
        """Confirmed messages acked nowhere whose routing is unknown (no trace), sent mandatory or not.

        A mandatory one reached a queue (else it was returned): if no queue holds it, it is lost.
        A non-mandatory one may have been dropped unroutable: its routing is unknown.
        """
        return sum(
            1
            for e in self.open.values()
            if e.confirmed and e.routed is None and not e.acked and e.mandatory == mandatory
        )

    def awaiting(self) -> int:
        """Confirmed messages acked somewhere and still waiting for their trace."""
        return sum(1 for mid in self.awaiting_trace if self.open[mid].confirmed)

    def latency_percentile(self, p: float) -> float | None:
        """The p-th percentile (0-100) of publish-to-ack latency in ms, or None with no samples."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[index]
