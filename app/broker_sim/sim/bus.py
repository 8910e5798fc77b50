"""The one bridge out of the engine: subscribers receive every flow event, in order."""

from __future__ import annotations

import logging
from collections.abc import Callable

from broker_sim.domain.events import FlowEvent

log = logging.getLogger(__name__)

Subscriber = Callable[[FlowEvent], None]


class EventBus:
    """Fan flow events out to subscribers, synchronously on the event loop.

    Subscribers must be quick (count, append, post a message); a subscriber that raises is
    logged and kept, so one bad reader never stops the flow to the others.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    def emit(self, event: FlowEvent) -> None:
        """Hand one event to every subscriber."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("flow event subscriber %r failed on %r", subscriber, event)
