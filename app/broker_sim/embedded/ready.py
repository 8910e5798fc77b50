"""The ready messages of a priority queue (``x-max-priority``) or of a queue limited in bytes
(``x-max-length-bytes``), with their total body size.

A plain queue keeps its ready messages in a ``deque``; these queues keep them here instead: one FIFO per
priority, the highest served first, so that the queue's code (append at the tail, requeue at the head,
take the head) stays the same. A message's priority is capped at the queue's maximum, as RabbitMQ does; a
message without one has priority 0. A queue with only a byte limit is a priority queue of one level.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker_sim.embedded.queue import QueuedMessage as Entry


class PriorityMessages:
    """Ready messages in priority order (highest first), FIFO within a priority; deque-like."""

    def __init__(self, max_priority: int) -> None:
        self.max_priority = max_priority
        self._levels: list[deque[Entry]] = [deque() for _ in range(max_priority + 1)]
        self._count = 0
        self.bytes = 0  # body bytes of the ready messages (what x-max-length-bytes limits)

    def _level(self, entry: Entry) -> deque[Entry]:
        return self._levels[min(entry.message.priority, self.max_priority)]

    def append(self, entry: Entry) -> None:
        """At the tail of its priority."""
        self._level(entry).append(entry)
        self._count += 1
        self.bytes += len(entry.message.body)

    def appendleft(self, entry: Entry) -> None:
        """At the head of its priority (a requeued message)."""
        self._level(entry).appendleft(entry)
        self._count += 1
        self.bytes += len(entry.message.body)

    def extendleft(self, entries: Iterable[Entry]) -> None:
        """Each at the head of its priority, like ``deque.extendleft`` (the last ends up first)."""
        for entry in entries:
            self.appendleft(entry)

    def popleft(self) -> Entry:
        """The next message to deliver: the oldest of the highest priority."""
        for level in reversed(self._levels):
            if level:
                self._count -= 1
                entry = level.popleft()
                self.bytes -= len(entry.message.body)
                return entry
        raise IndexError("pop from an empty priority queue")

    def __getitem__(self, index: int) -> Entry:
        if index != 0:
            raise IndexError("only the head of a priority queue can be looked at")
        for level in reversed(self._levels):
            if level:
                return level[0]
        raise IndexError("priority queue is empty")

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Entry]:
        for level in reversed(self._levels):
            yield from level

    def clear(self) -> None:
        """Drop every message."""
        for level in self._levels:
            level.clear()
        self._count = self.bytes = 0
