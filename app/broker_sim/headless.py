"""Running a scenario without a screen: progress on stderr, a report on stdout, an exit code.

Exit codes: 0 when every expectation held, 1 when one failed (or no broker answered),
2 for a scenario file that cannot be used.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from broker_sim.broker.handle import BrokerHandle
from broker_sim.broker.resolve import resolve_broker
from broker_sim.domain.events import (
    ConnectionChanged,
    EngineProblem,
    FlowEvent,
    LinkState,
    StepApplied,
    TracingChanged,
)
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.report import Report, build_report, format_report
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import ScenarioError, load_scenario
from broker_sim.domain.tally import Tally
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from broker_sim.sim.player import TimelinePlayer

CONNECT_GRACE = 30.0
"""Seconds a headless run waits for a broker before giving up."""
DEFAULT_DURATION = 10.0
DRAIN_QUIET = 1.0
"""The run has drained when no ack came for this long (scenario seconds) and queues are empty."""
DRAIN_LIMIT = 15.0


def _narrator(err: TextIO) -> object:
    def narrate(event: FlowEvent) -> None:
        if isinstance(event, ConnectionChanged) and event.state != LinkState.CONNECTING:
            print(f"\n[{event.state}] {event.detail}", file=err)
        elif isinstance(event, TracingChanged):
            print(f"routing {'traced' if event.traced else 'inferred'}: {event.detail}", file=err)
        elif isinstance(event, EngineProblem):
            print(f"\nproblem: {event.text}", file=err)
        elif isinstance(event, StepApplied) and event.source == "timeline":
            print(f"\nt={event.step.at:g}s {event.step.describe()}", file=err)

    return narrate


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


async def _drain(engine: Engine, tally: Tally, err: TextIO) -> None:
    """Stop publishing and let consumers finish what is in flight, so the figures settle."""
    engine.hold(True)
    last_acks, quiet_since = tally.acked, time.monotonic()
    deadline = time.monotonic() + DRAIN_LIMIT
    consumed = {g.spec.queue for g in engine.groups.values() if g.members}
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if tally.acked != last_acks:
            last_acks, quiet_since = tally.acked, time.monotonic()
        depths = [tally.depth.get(q) for q in consumed]
        empty = all(d is not None and not d.ready and not d.unacked for d in depths)
        if empty and time.monotonic() - quiet_since >= DRAIN_QUIET / engine.speed:
            break
    await engine.refresh_depths()  # so the report's ready counts are current


async def settle(engine: Engine, tally: Tally, err: TextIO | None = None) -> None:
    """The end of a story: producers finish their counts, then the flow drains (what a report needs).

    The TUI's replay ends the same way, so its verdicts are the headless run's.
    """
    await _finish_counts(engine)
    await _drain(engine, tally, err or sys.stderr)


async def run_scenario(
    scenario: Scenario,
    settings: Settings,
    *,
    duration: float | None = None,
    speed: float = 1.0,
    err: TextIO | None = None,
    broker: BrokerHandle | None = None,
) -> Report | None:
    """Run a scenario with its timeline, drain, and report; None when no broker answered."""
    err = err or sys.stderr
    engine = Engine(scenario, settings, broker=broker)
    tally, ledger = Tally(), Ledger()
    for subscriber in (tally, ledger, _narrator(err)):
        engine.bus.subscribe(subscriber)  # type: ignore[arg-type]
    length = duration or scenario.duration or DEFAULT_DURATION
    player = TimelinePlayer(engine, scenario)
    where = f"{engine.broker.kind} at {engine.settings.masked_url}"
    print(f"broker-sim: {scenario.title!r} on {where}, {length:g} s at {speed:g}x", file=err)
    await engine.start()
    try:
        try:
            await asyncio.wait_for(engine.ready(), CONNECT_GRACE)
        except TimeoutError:
            print(f"broker-sim: no broker after {CONNECT_GRACE:.0f} s; gave up", file=err)
            return None
        engine.set_speed(speed)
        play = asyncio.create_task(player.run())
        while (now := engine.scenario_time()) < length:
            done = int(30 * now / length)
            print(
                f"\r[{'#' * done}{'.' * (30 - done)}] {now:5.1f}/{length:g} s  "
                f"published {tally.published}  acked {tally.acked}",
                end="",
                file=err,
                flush=True,
            )
            await asyncio.sleep(0.2)
        await player.cancel(play)
        print(f"\r[{'#' * 30}] {length:g}/{length:g} s, draining…", file=err)
        await settle(engine, tally, err)
        return build_report(scenario, tally, ledger)
    finally:
        await engine.stop()


async def run_headless(
    path: Path,
    settings: Settings,
    *,
    duration: float | None = None,
    speed: float = 1.0,
    json_path: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """``broker-sim run FILE``: 0 when all expectations hold, 1 when one fails, 2 for a bad file."""
    out = out or sys.stdout
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        print(f"broker-sim: {exc}", file=sys.stderr)
        return 2
    if not 0.25 <= speed <= 10:
        print("broker-sim: --speed must be between 0.25 and 10", file=sys.stderr)
        return 2
    try:
        broker = await resolve_broker(settings)
    except (OSError, RuntimeError) as exc:  # a broker broker-sim was asked to start did not start
        print(f"broker-sim: {exc}", file=sys.stderr)
        return 1
    try:
        report = await run_scenario(scenario, settings, duration=duration, speed=speed, broker=broker)
    finally:
        await broker.close()
    if report is None:
        return 1
    print(format_report(scenario.title, report), file=out)
    if json_path is not None:
        await asyncio.to_thread(json_path.write_text, json.dumps(report.as_dict(), indent=2))
    return 0 if report.passed else 1
