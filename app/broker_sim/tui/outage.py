"""How long the broker has been away: folded from connection and restart events, shown in the header.

The header says *restarting*, *down*, *reconnecting (attempt n, 4.2 s)* and then *back after 5.1 s*
(with *the restart took 1.9 s* only when this outage was a restart broker-sim did);
the elapsed time comes from a clock the caller passes in, so the text keeps moving while nothing
else happens (the header ticks it) and tests can pass a clock of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker_sim.domain.events import (
    BrokerRestarted,
    BrokerRestarting,
    ConnectionChanged,
    FlowEvent,
    LinkState,
)

AWAY = {LinkState.LOST, LinkState.RECONNECTING, LinkState.UNREACHABLE}


@dataclass
class Outage:
    """One engine's view of the broker going away and coming back.

    ``recoveries`` counts the times the link came back, so a waiting dialog can tell "back since I
    opened" from "was already up".
    """

    phase: str = ""
    """"" (nothing to say), "restarting", "down", "reconnecting" or "back"."""
    since: float = 0.0
    attempt: int = 0
    back_after: float = 0.0
    restart_took: float | None = None
    """How long this outage's restart took; None when the outage was no restart (a drop, say)."""
    recoveries: int = 0
    losses: int = 0

    @property
    def active(self) -> bool:
        """True while the broker is away (the header then ticks every quarter second)."""
        return self.phase in ("restarting", "down", "reconnecting")

    def apply(self, events: list[FlowEvent], now: float) -> None:
        """Fold a batch of events in; ``now`` is the clock reading when they arrived."""
        for event in events:
            match event:
                case BrokerRestarting():
                    self.phase, self.since, self.attempt, self.restart_took = "restarting", now, 0, None
                case BrokerRestarted(seconds=seconds):
                    self.restart_took = seconds
                case ConnectionChanged(state=LinkState.LOST):
                    self.losses += 1
                    if self.phase != "restarting":
                        # a new outage that is not a restart (a dropped connection, a broker
                        # restarted elsewhere): an earlier restart's duration is not this one's
                        self.since, self.restart_took = now, None
                    self.phase = "down"
                case ConnectionChanged(state=state, attempt=attempt) if state in AWAY and self.active:
                    self.phase, self.attempt = "reconnecting", max(self.attempt, attempt)
                case ConnectionChanged(state=LinkState.BACK):
                    self.phase, self.back_after = "back", now - self.since
                    self.recoveries += 1
                case ConnectionChanged(state=LinkState.CLOSED):
                    self.phase = ""
                case _:
                    pass

    def text(self, now: float) -> str:
        """The header's words for it, with the elapsed time as of ``now``; "" when there is nothing."""
        elapsed = now - self.since
        match self.phase:
            case "restarting":
                return f"restarting the broker… {elapsed:.1f} s"
            case "down":
                return f"down {elapsed:.1f} s"
            case "reconnecting":
                return f"reconnecting (attempt {self.attempt}, {elapsed:.1f} s)"
            case "back":
                took = (
                    f"; the restart took {self.restart_took:.1f} s" if self.restart_took is not None else ""
                )
                return f"back after {self.back_after:.1f} s{took}"
            case _:
                return ""
