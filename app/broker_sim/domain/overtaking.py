"""Counting messages that overtook others in a queue: what a priority queue does to a backlog.

A message *overtook* when its queue delivered it before a lower-priority message that was
published before it. A FIFO queue never does that (it delivers in publish order), so the count
is what a scenario can assert to show priorities at work, from what the engine observed alone:
the order of publishes and of first deliveries.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import Counter

REMEMBERED = 50_000
"""Messages (and per queue and priority, delivered messages) remembered: beyond it the oldest are
let go, so memory stays flat however long a run is (a message let go is simply not counted)."""


class Overtaking:
    """Folds publishes and first deliveries into ``overtook`` per queue."""

    def __init__(self) -> None:
        self.overtook: Counter[str] = Counter()
        self._order: dict[str, tuple[int, int]] = {}
        """Message id: (publish order, priority)."""
        self._seq = 0
        self._early: dict[str, dict[int, list[int]]] = {}
        """Per queue and priority, the publish orders of delivered messages not yet known to have
        overtaken anything (sorted)."""

    def published(self, message_id: str, priority: int | None) -> None:
        """A message left its producer (a republish keeps its first place)."""
        if message_id in self._order:
            return
        self._seq += 1
        self._order[message_id] = (self._seq, priority or 0)  # no priority reads as 0 at the broker
        if len(self._order) > REMEMBERED:
            del self._order[next(iter(self._order))]

    def delivered(self, queue: str, message_id: str) -> None:
        """A queue delivered a message for the first time."""
        known = self._order.get(message_id)
        if known is None:
            return
        seq, priority = known
        early = self._early.setdefault(queue, {})
        for higher, seqs in early.items():
            if higher > priority and seqs and seqs[-1] > seq:
                cut = bisect_right(seqs, seq)
                self.overtook[queue] += len(seqs) - cut  # each was published after this one
                del seqs[cut:]
        seqs = early.setdefault(priority, [])
        insort(seqs, seq)
        if len(seqs) > REMEMBERED:
            del seqs[: len(seqs) - REMEMBERED]
