"""The one bridge from the engine's events into Textual.

The engine calls its subscribers synchronously on the event loop, up to thousands of times a
second. The bridge only appends to a buffer and, when the buffer was empty, posts a single
:class:`FlowBatch` message; the tab takes the whole buffer when it handles that message. So
however fast events come, at most one message waits in the tab's queue and a burst arrives as
one batch (the per-frame coalescing toolong does with ``can_replace``).
"""

from __future__ import annotations

from textual.message import Message
from textual.message_pump import MessagePump

from broker_sim.domain.events import FlowEvent


class FlowBatch(Message):
    """Events are waiting in the bridge; the handler takes them all with :meth:`EventBridge.take`."""


class EventBridge:
    """An engine-bus subscriber that hands events to one widget in batches."""

    def __init__(self, target: MessagePump) -> None:
        self._target = target
        self._pending: list[FlowEvent] = []
        self._posted = False
        self.received = 0

    def __call__(self, event: FlowEvent) -> None:
        """Buffer one event; post a batch message only if none is waiting already."""
        self._pending.append(event)
        self.received += 1
        if not self._posted:
            self._posted = True
            self._target.post_message(FlowBatch())

    def take(self) -> list[FlowEvent]:
        """Every event buffered since the last take, in order."""
        events, self._pending = self._pending, []
        self._posted = False
        return events
