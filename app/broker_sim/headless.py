"""Running a scenario without a screen: progress on stderr, a report on stdout, an exit code."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TextIO

from broker_sim.domain.events import (
    ConnectionChanged,
    EngineProblem,
    FlowEvent,
    LinkState,
    TracingChanged,
)
from broker_sim.domain.scenario_file import ScenarioError, load_scenario
from broker_sim.domain.tally import Tally
from broker_sim.settings import Settings
from broker_sim.sim import Engine

CONNECT_GRACE = 30.0
"""Seconds a headless run waits for a broker before giving up."""


def format_report(title: str, tally: Tally) -> str:
    """The end-of-run report as plain text."""
    lines = [
        f"{title}: published {tally.published}, confirmed {tally.confirmed}, returned {tally.returned}, "
        f"failed {tally.publish_failed}",
        f"  delivered {tally.delivered}, acked {tally.acked}, nacked {tally.nacked}, "
        f"redelivered {tally.redelivered}, lost {tally.lost}",
        f"  routing: {tally.routed_traced} traced, {tally.routed_inferred} inferred",
    ]
    for queue in sorted(set(tally.routed) | set(tally.delivered_per_queue)):
        depth = tally.depth.get(queue)
        ready = "?" if depth is None or depth.ready is None else depth.ready
        lines.append(
            f"  queue {queue}: routed {tally.routed[queue]}, delivered {tally.delivered_per_queue[queue]}, "
            f"acked {tally.acked_per_queue[queue]}, ready {ready}"
        )
    for name, fig in sorted(tally.consumers.items()):
        lines.append(
            f"  consumer {name} ({fig.queue}): delivered {fig.delivered}, acked {fig.acked}, "
            f"redelivered {fig.redelivered}"
        )
    return "\n".join(lines)


async def run_headless(path: Path, settings: Settings, *, duration: float, out: TextIO | None = None) -> int:
    """Run a scenario file for ``duration`` seconds; 0 when it ran, 1 when it could not, 2 for a bad file."""
    out = out or sys.stdout
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        print(f"broker-sim: {exc}", file=sys.stderr)
        return 2
    engine = Engine(scenario, settings)
    tally = Tally()
    engine.bus.subscribe(tally)

    def narrate(event: FlowEvent) -> None:
        if isinstance(event, ConnectionChanged) and event.state not in (LinkState.CONNECTING,):
            print(f"\r[{event.state}] {event.detail}", file=sys.stderr)
        elif isinstance(event, TracingChanged | EngineProblem):
            print(f"\r{getattr(event, 'detail', '') or getattr(event, 'text', '')}", file=sys.stderr)

    engine.bus.subscribe(narrate)
    print(
        f"broker-sim: running {scenario.title!r} on {settings.masked_url} for {duration:g} s",
        file=sys.stderr,
    )
    await engine.start()
    try:
        await asyncio.wait_for(engine.ready(), CONNECT_GRACE)
    except TimeoutError:
        print(f"broker-sim: no broker after {CONNECT_GRACE:.0f} s; gave up", file=sys.stderr)
        await engine.stop()
        return 1
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration:
        done = int(30 * elapsed / duration)
        bar = "#" * done + "." * (30 - done)
        print(
            f"\r[{bar}] {elapsed:4.1f}/{duration:g} s  published {tally.published} acked {tally.acked}",
            end="",
            file=sys.stderr,
            flush=True,
        )
        await asyncio.sleep(min(0.25, duration - elapsed))
    print(file=sys.stderr)
    engine.pause()
    await engine.stop()
    print(format_report(scenario.title, tally), file=out)
    return 0
