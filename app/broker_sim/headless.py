"""Running a scenario without a screen: progress on stderr, a report on stdout, an exit code.

Exit codes: 0 when every expectation held, 1 when one failed, 2 for a scenario file (or an
option) that cannot be used, 3 when there was no broker to run on: nothing answered, the
broker refused the login, the scenario could not be set up on it, or a broker broker-sim was
to start did not start.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

from broker_sim.broker.handle import BrokerHandle
from broker_sim.broker.resolve import resolve_broker
from broker_sim.broker.tracing import may_trace
from broker_sim.domain.events import (
    ConnectionChanged,
    EngineProblem,
    FlowEvent,
    Leftover,
    LinkState,
    StepApplied,
    TracingChanged,
)
from broker_sim.domain.ledger import Ledger
from broker_sim.domain.own_vhost import headless_advice
from broker_sim.domain.report import Report, build_report, format_report
from broker_sim.domain.scenario import Scenario
from broker_sim.domain.scenario_file import ScenarioError, load_scenario
from broker_sim.domain.tally import Tally
from broker_sim.domain.urls import parse_url
from broker_sim.settings import Settings
from broker_sim.sim import Engine
from broker_sim.sim.link import GET_A_BROKER
from broker_sim.sim.player import TimelinePlayer
from broker_sim.sim.settle import settle

EXIT_PASSED = 0
EXIT_FAILED = 1
"""An expectation did not hold."""
EXIT_BAD_INPUT = 2
"""A scenario file or an option that cannot be used."""
EXIT_NO_BROKER = 3
"""No broker to run on: none answered, it refused us, or one broker-sim was to start did not."""

CONNECT_GRACE = 30.0
"""Seconds a headless run waits for a broker that does not answer (it may be starting)."""
REFUSALS_BEFORE_GIVING_UP = 3
"""Refused logins, or failed set-ups on a broker that answered, before a run gives up: neither
a wrong password nor a clash with what the broker already has fixes itself."""
DEFAULT_DURATION = 10.0


class _Console:
    """What a run tells its user on stderr: whole lines, and on a terminal one status line
    rewritten in place (a progress bar, an attempt counter). Piped to a file, only whole lines
    are written: carriage returns would pile every update onto one line there."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.tty = err.isatty()
        self._status = 0  # the length of the status line on screen, 0 when there is none

    def line(self, text: str) -> None:
        """Write a whole line (below the status line, if one shows)."""
        if self._status:
            print(file=self.err)
            self._status = 0
        print(text, file=self.err, flush=True)

    def status(self, text: str) -> None:
        """Show ``text`` in place of the previous status (on a terminal only)."""
        if self.tty:
            print(f"\r{text.ljust(self._status)}", end="", file=self.err, flush=True)
            self._status = len(text)


class _Narrator:
    """Tells the flow of a run in words: link state changes, tracing, problems, timeline steps."""

    def __init__(self, console: _Console, advice: str = "") -> None:
        self.console = console
        self._advice = advice
        """Said once, the first time routing is inferred: why, and how to get it traced."""
        self._link = ""
        self._problem = ""
        self._ran = False

    def __call__(self, event: FlowEvent) -> None:
        if isinstance(event, ConnectionChanged):
            if event.state in (LinkState.CONNECTING, LinkState.RECONNECTING):
                if event.attempt > 1:
                    self.console.status(f"{event.state} to {event.url}: attempt {event.attempt}")
                return
            self._ran = self._ran or event.state == LinkState.CONNECTED
            if event.state == LinkState.CLOSED and not self._ran:
                return  # closing what never ran is no news, and the give-up line stays the last
            # Only a change is news: a broker that refuses us the same way again is not.
            text = f"[{event.state}] {event.detail}"
            if text != self._link:
                self._link = text
                self.console.line(text)
        elif isinstance(event, Leftover):
            self.console.line(
                f"note: {event.queue} already held {event.messages} messages from an earlier run; "
                "they are delivered too"
            )
        elif isinstance(event, TracingChanged):
            self.console.line(f"routing {'traced' if event.traced else 'inferred'}: {event.detail}")
            if not event.traced and self._advice:
                self.console.line(self._advice)
                self._advice = ""
        elif isinstance(event, EngineProblem):
            if event.text != self._problem:  # a set-up that fails the same way on each retry
                self._problem = event.text
                self.console.line(f"problem: {event.text}")
        elif isinstance(event, StepApplied) and event.source == "timeline":
            self.console.line(f"t={event.step.at:g}s {event.step.describe()}")


class _LinkWatch:
    """Follows the engine's attempts to get a scenario running, and says when to stop waiting."""

    def __init__(self) -> None:
        self.failure: ConnectionChanged | None = None
        self.refused = 0
        self.problem = ""
        self.failed_setups = 0
        self.hopeless = asyncio.Event()

    def __call__(self, event: FlowEvent) -> None:
        if isinstance(event, ConnectionChanged) and event.state in (
            LinkState.AUTH_REFUSED,
            LinkState.UNREACHABLE,
        ):
            self.failure = event
            self.refused = self.refused + 1 if event.state == LinkState.AUTH_REFUSED else 0
        elif isinstance(event, EngineProblem):
            # Before the scenario runs, a problem is a set-up that failed on a broker that answered.
            self.problem = event.text
            self.failed_setups += 1
        if max(self.refused, self.failed_setups) >= REFUSALS_BEFORE_GIVING_UP:
            self.hopeless.set()

    def gave_up(self, url: str, waited: float) -> str:
        """One line: which broker, what went wrong, what to do."""
        if self.refused >= REFUSALS_BEFORE_GIVING_UP and self.failure is not None:
            return f"broker-sim: {url} refused us {self.refused} times; gave up: {self.failure.detail}"
        if self.failed_setups >= REFUSALS_BEFORE_GIVING_UP:
            return (
                f"broker-sim: {url} answered, but the scenario could not be set up on it "
                f"({self.failed_setups} tries); gave up: {self.problem}"
            )
        if self.failure is not None:
            return f"broker-sim: no broker after {waited:g} s; gave up: {self.failure.detail}"
        return f"broker-sim: no broker at {url} after {waited:g} s; gave up: {GET_A_BROKER}"


async def run_scenario(
    scenario: Scenario,
    settings: Settings,
    *,
    duration: float | None = None,
    speed: float = 1.0,
    err: TextIO | None = None,
    broker: BrokerHandle | None = None,
    connect_grace: float = CONNECT_GRACE,
) -> Report | None:
    """Run a scenario with its timeline, drain, and report; None when there was no broker to run on.

    Gives up on a broker that does not answer after ``connect_grace`` seconds, and on one that
    refuses the login (or the scenario) after :data:`REFUSALS_BEFORE_GIVING_UP` attempts.
    """
    err = err or sys.stderr
    console = _Console(err)
    engine = Engine(scenario, settings, broker=broker)
    tally, ledger, watch = Tally(), Ledger(), _LinkWatch()
    for subscriber in (tally, ledger, _Narrator(console, _own_vhost_advice(engine))):
        engine.bus.subscribe(subscriber)
    unwatch = engine.bus.subscribe(watch)  # only while the scenario gets going
    length = duration or scenario.duration or DEFAULT_DURATION
    player = TimelinePlayer(engine, scenario)
    where = f"{engine.broker.kind} at {engine.settings.masked_url}"
    console.line(f"broker-sim: {scenario.title!r} on {where}, {length:g} s at {speed:g}x")
    await engine.start()
    try:
        if not await _came_up(engine, watch, connect_grace):
            console.line(watch.gave_up(engine.settings.masked_url, connect_grace))
            return None
        unwatch()
        engine.set_speed(speed)
        play = asyncio.create_task(player.run())
        tenths = 0
        while (now := engine.scenario_time()) < length:
            done = int(30 * now / length)
            figures = f"{now:5.1f}/{length:g} s  published {tally.published}  acked {tally.acked}"
            if console.tty:
                console.status(f"[{'#' * done}{'.' * (30 - done)}] {figures}")
            elif (reached := int(10 * now / length)) > tenths:  # a file gets a line every 10 %
                tenths = reached
                console.line(f"{10 * reached:3d}% {figures}")
            await asyncio.sleep(0.2)
        await player.finish(play)
        bar = f"[{'#' * 30}] " if console.tty else "100% "
        console.line(f"{bar}{length:g}/{length:g} s, draining…")
        await settle(engine, tally)
        return build_report(scenario, tally, ledger)
    finally:
        await engine.stop()


def _own_vhost_advice(engine: Engine) -> str:
    """How to get traced routing, when it will be inferred because the vhost is not broker-sim's."""
    settings = engine.settings
    if settings.trace is not None or may_trace(
        settings.url, settings.trace, started_by_us=engine.broker.started_by_us
    ):
        return ""  # the user chose (--trace / --no-trace), or broker-sim may trace here
    address = parse_url(settings.url)
    return headless_advice(address.vhost, settings.own_vhost, address.user)


async def _came_up(engine: Engine, watch: _LinkWatch, grace: float) -> bool:
    """Wait until the scenario runs; False when ``grace`` passed or waiting became pointless."""
    ready = asyncio.create_task(engine.ready())
    hopeless = asyncio.create_task(watch.hopeless.wait())
    try:
        done, _ = await asyncio.wait((ready, hopeless), timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (ready, hopeless):
            task.cancel()
    return ready in done


async def run_headless(
    path: Path,
    settings: Settings,
    *,
    duration: float | None = None,
    speed: float = 1.0,
    json_path: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    connect_grace: float = CONNECT_GRACE,
) -> int:
    """``broker-sim run FILE``: one of the ``EXIT_*`` codes (0 passed, 1 failed, 2 bad file, 3 no broker)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        print(f"broker-sim: {exc}", file=err)
        return EXIT_BAD_INPUT
    if not 0.25 <= speed <= 10:
        print("broker-sim: --speed must be between 0.25 and 10", file=err)
        return EXIT_BAD_INPUT
    try:
        broker = await resolve_broker(settings)
    except (OSError, RuntimeError) as exc:  # a broker broker-sim was asked to start did not start
        print(f"broker-sim: {exc}", file=err)
        return EXIT_NO_BROKER
    try:
        report = await run_scenario(
            scenario,
            settings,
            duration=duration,
            speed=speed,
            err=err,
            broker=broker,
            connect_grace=connect_grace,
        )
    finally:
        await broker.close()
    if report is None:
        return EXIT_NO_BROKER
    print(format_report(scenario.title, report), file=out)
    if json_path is not None:
        await asyncio.to_thread(json_path.write_text, json.dumps(report.as_dict(), indent=2))
    return EXIT_PASSED if report.passed else EXIT_FAILED
