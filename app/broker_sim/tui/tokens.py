"""Tokens: the moving picture of messages, driven only by reported flow events.

A token is one message (one copy of it, after a fanout) travelling between stations: producer,
exchange, queue, consumer. It only ever moves because an event said so, so every hop drawn is
a hop the broker or the client reported. Time is counted in frames, never read from a clock, so
the same events and the same number of frames always give the same picture.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from broker_sim.domain.events import (
    Abandoned,
    Acked,
    ConnectionChanged,
    Delivered,
    FlowEvent,
    LinkState,
    Nacked,
    Published,
    Purged,
    Returned,
    Routed,
)

StationKind = Literal["p", "x", "q", "c"]
Station = tuple[StationKind, str]
"""Where a token is: ("p", producer), ("x", exchange), ("q", queue) or ("c", consumer)."""

TokenKind = Literal["message", "inferred", "returned", "redelivered"]
Ending = Literal["acked", "nacked", "returned", "lost"]

LEG_FRAMES = 15
"""Frames one hop takes (half a second at 30 fps): slow enough to follow with the eye."""
FLASH_FRAMES = 12
"""Frames a finished token stays visible at its last station (✓ or ✖)."""
MAX_TOKENS = 60
"""Tokens on screen at most: above this, new messages are counted but not drawn."""
MAX_PARKED = 12
"""Tokens drawn waiting in one queue at most; the queue's ready figure says how many really wait."""
TOKENS_PER_SECOND = 25
"""Above this publish rate, only every n-th message gets a token (counters stay exact)."""
EXCHANGE_LINGER = 60
"""Frames (2 s at 30 fps) a token may wait at an exchange for word of where it went. An
exchange holds nothing: a token still there was dropped unroutable (``mandatory = false``: no
return comes) or waits for an inferred hop to a queue nobody consumes. Left there, such tokens
would fill ``MAX_TOKENS`` and stop sampling."""


@dataclass
class Token:
    """One message copy on screen."""

    message_id: str
    producer: str
    at: Station
    kind: TokenKind = "message"
    queue: str | None = None
    leg: tuple[Station, Station] | None = None
    progress: float = 0.0
    pending: deque[Station] = field(default_factory=deque)
    ending: Ending | None = None
    flash: int = 0
    serial: int = 0
    idle: int = 0
    """Frames spent parked at the current station."""

    @property
    def parked(self) -> bool:
        """True while it waits at a station with nowhere to go yet."""
        return self.leg is None and not self.pending and self.ending is None


class TokenField:
    """All tokens of one scenario view, fed with events and advanced frame by frame."""

    def __init__(self) -> None:
        self.tokens: list[Token] = []
        self._by_id: dict[str, list[Token]] = {}
        self.stride = 1
        self._since_sample = 0
        self._serial = 0
        self.exchange_of: dict[str, str] = {}
        """Producer → exchange, learnt from Published events."""

    # -- sampling ---------------------------------------------------------------------------------

    def set_rate(self, published_per_second: float) -> None:
        """Adapt sampling to the publish rate: above ~25 msg/s, one token per n messages."""
        self.stride = max(1, round(published_per_second / TOKENS_PER_SECOND))

    def _sample(self, producer: str) -> bool:
        if len(self.tokens) >= MAX_TOKENS:
            return False
        if producer == "you":  # a message typed by hand is always drawn
            return True
        self._since_sample += 1
        if self._since_sample >= self.stride:
            self._since_sample = 0
            return True
        return False

    # -- events -----------------------------------------------------------------------------------

    def _add(self, token: Token) -> Token:
        self._serial += 1
        token.serial = self._serial
        self.tokens.append(token)
        self._by_id.setdefault(token.message_id, []).append(token)
        return token

    def _remove(self, token: Token) -> None:
        self.tokens.remove(token)
        same = self._by_id.get(token.message_id, [])
        if token in same:
            same.remove(token)
        if not same:
            self._by_id.pop(token.message_id, None)

    def _of(self, message_id: str, queue: str | None) -> Token | None:
        return next((t for t in self._by_id.get(message_id, ()) if t.queue == queue), None)

    def _for_queue(self, message_id: str, queue: str, exchange: str, inferred: bool) -> Token | None:
        """The token of this message's copy in ``queue``: the unrouted one, or a new copy."""
        token = self._of(message_id, queue)
        if token is not None:
            return token
        unrouted = self._of(message_id, None)
        if unrouted is not None and unrouted.ending is None:
            unrouted.queue = queue
            unrouted.pending.append(("q", queue))
        elif message_id in self._by_id:  # another copy of a fanout: it starts at the exchange
            first = self._by_id[message_id][0]
            unrouted = self._add(Token(message_id, first.producer, ("x", exchange), queue=queue))
            unrouted.pending.append(("q", queue))
        else:
            return None
        if inferred:
            unrouted.kind = "inferred"
        return unrouted

    def apply(self, event: FlowEvent) -> None:
        """Move tokens as one event says."""
        match event:
            case Published(message_id=mid, producer=producer, exchange=exchange):
                self.exchange_of[producer] = exchange
                if self._sample(producer):
                    self._add(Token(mid, producer, ("p", producer))).pending.append(("x", exchange))
            case Returned(message_id=mid):
                if (back := self._of(mid, None)) is not None:
                    back.kind = "returned"
                    back.pending.append(("p", back.producer))
                    back.ending = "returned"
            case Routed(message_id=mid, exchange=exchange, queues=queues, source=source):
                for queue in queues:
                    copy = self._for_queue(mid, queue, exchange, source == "inferred")
                    if copy is not None and source == "inferred" and copy.kind == "message":
                        copy.kind = "inferred"
            case Delivered(message_id=mid, queue=queue, consumer=consumer, redelivered=again):
                self._delivered(mid, queue, consumer, again, event.exchange)
            case Acked(message_id=mid, queue=queue):
                if (done := self._of(mid, queue)) is not None:
                    done.ending = "acked"
            case Nacked(message_id=mid, queue=queue, requeue=requeue):
                self._back_or_end(mid, queue, requeue, "nacked")
            case Abandoned(message_id=mid, queue=queue, redelivered=again):
                self._back_or_end(mid, queue, again, "lost")
            case Purged(queue=queue):
                self._purged(queue)
            case ConnectionChanged(state=LinkState.LOST | LinkState.CLOSED):
                self.clear()
            case _:
                pass

    def _back_or_end(self, mid: str, queue: str, back: bool, ending: Ending) -> None:
        token = self._of(mid, queue)
        if token is None:
            return
        if back:  # the broker has it again: the token goes back into the queue, marked
            token.pending.append(("q", queue))
            token.kind = "redelivered"
        else:
            token.ending = ending

    def _purged(self, queue: str) -> None:
        # the broker dropped what waited there: tokens waiting in (or on their way into) that queue
        # go with it; the ones already delivered stay with their consumers
        for token in list(self.tokens):
            final = token.pending[-1] if token.pending else token.leg[1] if token.leg else token.at
            if token.queue == queue and token.ending is None and final == ("q", queue):
                self._remove(token)

    def _delivered(self, mid: str, queue: str, consumer: str, again: bool, exchange: str) -> None:
        token = self._of(mid, queue)
        if token is None and not again:
            token = self._for_queue(mid, queue, exchange, inferred=False)
        if token is None and again and len(self.tokens) < MAX_TOKENS:
            # a redelivery is rare and worth seeing: draw it even if its first trip was not sampled
            token = self._add(Token(mid, "", ("q", queue), kind="redelivered", queue=queue))
        if token is None:
            return
        if again:
            token.kind = "redelivered"
        token.pending.append(("c", consumer))

    def clear(self) -> None:
        """Forget every token (the connection is gone: what the screen showed is stale)."""
        self.tokens.clear()
        self._by_id.clear()

    # -- time -------------------------------------------------------------------------------------

    def step(self, frames: int = 1) -> bool:
        """Advance every token by some frames; True when anything on screen changed."""
        changed = False
        for _ in range(frames):
            changed = self._step_once() or changed
        return changed

    def _step_once(self) -> bool:
        changed = False
        for token in list(self.tokens):
            if token.leg is None and token.pending:
                token.leg = (token.at, token.pending.popleft())
                token.progress = 0.0
            if token.leg is not None:
                # a token with hops queued behind it hurries, so the picture never lags the flow
                token.progress += (1 + len(token.pending)) / LEG_FRAMES
                changed = True
                if token.progress >= 1.0:
                    token.at, token.leg, token.progress, token.idle = token.leg[1], None, 0.0, 0
            elif token.ending is not None:
                token.flash += 1
                changed = True
                if token.flash >= FLASH_FRAMES:
                    self._remove(token)
            else:
                token.idle += 1
        self._trim_parked()
        return changed

    def settle(self) -> None:
        """Jump every token to where its events put it (animation off): no motion, no flash."""
        for token in list(self.tokens):
            if token.leg is not None:
                token.at, token.leg, token.idle = token.leg[1], None, 0
            while token.pending:
                token.at = token.pending.popleft()
            if token.ending is not None:
                self._remove(token)
        self._trim_parked()

    def _trim_parked(self) -> None:
        # A queue nobody consumes fills up: keep drawing the newest few, its depth says the rest.
        # At an exchange, nothing waits for long: a token no event moved on is let go.
        parked: dict[Station, list[Token]] = {}
        for token in list(self.tokens):
            if not token.parked or token.at[0] not in ("q", "x"):
                continue
            if token.at[0] == "x" and token.idle >= EXCHANGE_LINGER:
                self._remove(token)
            else:
                parked.setdefault(token.at, []).append(token)
        for waiting in parked.values():
            for token in waiting[:-MAX_PARKED]:
                self._remove(token)

    def position(self, token: Token) -> tuple[Station, Station | None, float]:
        """Where to draw a token: its station, the station it moves to, and how far along."""
        if token.leg is None:
            return token.at, None, 0.0
        return token.leg[0], token.leg[1], token.progress
