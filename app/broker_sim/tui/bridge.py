"""The one bridge from the engine's events into Textual.

The engine calls its subscribers synchronously on the event loop, up to thousands of times a
second. The bridge only appends to a buffer; the tab takes the whole buffer once per frame (its
30 fps ticker while it animates, else its 8 Hz figures timer). Measured at 1,000 msg/s
(``benchmarks/tui_frames.py``): posting a Textual message whenever the buffer had been empty
made ~1,900 messages a second, 18 % of the event loop's time, for batches a frame apart anyway.
"""

from __future__ import annotations

from broker_sim.domain.events import FlowEvent


class EventBridge:
    """An engine-bus subscriber that buffers events until the tab takes them."""

    def __init__(self) -> None:
        self._pending: list[FlowEvent] = []
        self.received = 0

    def __call__(self, event: FlowEvent) -> None:
        """Buffer one event."""
        self._pending.append(event)
        self.received += 1

    def take(self) -> list[FlowEvent]:
        """Every event buffered since the last take, in order."""
        events, self._pending = self._pending, []
        return events
