"""Saving what a user did in a tab as a scenario file that replays to the same counts.

Every engine has a :class:`Recorder` from its start. :func:`save_session` holds the producers,
lets the messages in flight settle (a bounded wait, so a stuck broker never traps the user), writes
``<scenario>-recorded-<HHMMSS>.toml`` and lets the producers go again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from broker_sim.domain.recording import Recorder
from broker_sim.domain.scenario_writer import scenario_to_toml
from broker_sim.domain.tally import Tally

if TYPE_CHECKING:
    from broker_sim.sim import Engine

SETTLE_LIMIT = 10.0
"""Seconds a save waits for the messages in flight to settle before it writes anyway."""


def in_flight(tally: Tally, traced: bool) -> int:
    """Publishes not yet confirmed or returned (and, with tracing, not yet seen routed)."""
    unsettled = tally.published - tally.confirmed - tally.returned - tally.publish_failed
    untraced = max(0, tally.published - tally.routed_traced) if traced else 0
    return max(unsettled, untraced, 0)


async def save_session(
    engine: Engine,
    recorder: Recorder,
    tally: Tally,
    folder: Path,
    say: Callable[[str], None],
    *,
    resume: bool = True,
) -> Path:
    """Hold, settle, write the session as a scenario file in ``folder``; returns its path."""
    engine.hold(True)
    try:
        duration = engine.scenario_time()
        deadline = time.monotonic() + SETTLE_LIMIT
        waiting = in_flight(tally, engine.traced)
        if waiting:
            say(
                f"saving: producers held, {waiting} message(s) in flight settling (up to {SETTLE_LIMIT:g} s)…"
            )
        while in_flight(tally, engine.traced) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if left := in_flight(tally, engine.traced):
            say(f"saving anyway: {left} message(s) still unsettled; the replay may differ by that much")
        stamp = datetime.now().strftime("%H%M%S")
        name = f"{engine.scenario.name}-recorded-{stamp}"
        scenario = recorder.to_scenario(duration, name=name)
        comment = (
            f"recorded in broker-sim's {engine.scenario.title} tab at {datetime.now():%Y-%m-%d %H:%M:%S}"
        )
        path = folder / f"{name}.toml"
        await asyncio.to_thread(_write, path, scenario_to_toml(scenario, comment))
        return path
    finally:
        if resume:
            engine.hold(False)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
