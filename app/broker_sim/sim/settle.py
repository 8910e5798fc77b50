"""The end of a run: producers finish their counts, then the flow drains, so the figures settle.

The headless run and the TUI's replay end the same way, so a story's verdicts on screen are the
ones ``broker-sim run`` would report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from broker_sim.domain.tally import Tally
from broker_sim.sim.engine import Engine

DRAIN_QUIET = 1.0
"""The run has drained when no ack came for this long (scenario seconds) and queues are empty."""
DRAIN_LIMIT = 15.0
"""Seconds a drain (and a count's finishing) may take at most."""
RECONNECT_LIMIT = 60.0
"""Seconds the end of a run waits for a lost connection to come back before it drains."""


async def _finish_counts(engine: Engine) -> None:
    """Let producers with a ``count`` publish all of it, even if paused: a count is a promise.

    A recorded session replays its producers by count, and a replay runs a little slower or
    faster than the original, so the last messages may still be due when the story ends.
    """
    counted = [p for p in engine.producers.values() if p.spec.count is not None and not p.done]
    for producer in counted:
        producer.set_paused(False)
    deadline = time.monotonic() + DRAIN_LIMIT
    while not all(p.done for p in counted) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


def _activity(tally: Tally) -> int:
    return tally.acked + tally.nacked + tally.delivered


async def _drain(engine: Engine, tally: Tally) -> None:
    """Stop publishing and let consumers finish what is in flight, so the figures settle.

    A queue with a TTL and a dead-letter exchange (a retry's wait queue) hands its messages on
    when they expire, in real time whatever the speed: the run waits for it to empty too, polling
    depths itself (one stale depth could show both queues empty while a job moves between them).
    """
    engine.hold(True)
    last_seen, quiet_since = _activity(tally), time.monotonic()
    deadline = time.monotonic() + DRAIN_LIMIT
    watched = {g.spec.queue for g in engine.groups.values() if g.members}
    delaying = {
        q.name for q in engine.scenario.queues if q.message_ttl_ms and q.dead_letter_exchange is not None
    }
    watched |= delaying
    empty_since: float | None = None
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if delaying:
            await engine.refresh_depths()
        if _activity(tally) != last_seen:
            last_seen, quiet_since = _activity(tally), time.monotonic()
        depths = [tally.depth.get(q) for q in watched]
        now = time.monotonic()
        if not all(d is not None and not d.ready and not d.unacked for d in depths):
            empty_since = None
            continue
        empty_since = empty_since or now
        quiet = DRAIN_QUIET / engine.speed
        if now - quiet_since >= quiet and now - empty_since >= quiet:
            break
    await engine.refresh_depths()  # so the report's ready counts are current


async def settle(engine: Engine, tally: Tally) -> None:
    """The end of a story: producers finish their counts, then the flow drains (what a report needs).

    The TUI's replay ends the same way, so its verdicts are the headless run's.
    """
    # a broker restarted near the end may still be coming back: drain on a live connection
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine.ready(), RECONNECT_LIMIT)
    await _finish_counts(engine)
    await _drain(engine, tally)
